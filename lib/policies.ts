// IAM and bucket policy documents, rendered as compact JSON with a fixed key order: MinIO
// re-serialises what it stores, and byte-stable input keeps a second `pulumi up` free of diffs.
import { CACHE_INFO_KEY } from "./cacheInfo";
import { PINS_PREFIX } from "./gc/bucketObjects";

export interface PolicyStatement {
    Sid: string;
    Effect: "Allow" | "Deny";
    Principal?: { AWS: string[] };
    Action: string[];
    Resource: string[];
}

export interface PolicyDocument {
    Version: "2012-10-17";
    Statement: PolicyStatement[];
}

export const bucketArn = (bucket: string): string => `arn:aws:s3:::${bucket}`;
export const objectsArn = (bucket: string): string => `arn:aws:s3:::${bucket}/*`;

/** What the bucket-level statements of the writer may do: find the bucket, see what is there. */
export const WRITER_BUCKET_ACTIONS = ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"];
/** What the writer may do to objects: read and upload (multipart included). Never delete. */
export const WRITER_OBJECT_ACTIONS = [
    "s3:GetObject",
    "s3:PutObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
];
/**
 * What the writer may never do even where WRITER_OBJECT_ACTIONS would allow it: rewrite
 * `nix-cache-info` (a foreign StoreDir makes every client refuse the cache). Nix writes that object
 * only when it is missing (BinaryCacheStore::init), and the stack keeps it present.
 */
export const WRITER_DENIED_CACHE_INFO_ACTIONS = ["s3:PutObject"];
/** What the collector may do on the bucket: find it and list every key, the only index it has. */
export const COLLECTOR_BUCKET_ACTIONS = ["s3:GetBucketLocation", "s3:ListBucket"];
/** What the collector may do to objects: read narinfos and pins, delete what nothing reaches. Never upload. */
export const COLLECTOR_OBJECT_ACTIONS = ["s3:GetObject", "s3:DeleteObject"];
/**
 * What the collector may never do to `nix-cache-info` (every client refuses a cache without it) and
 * to the pins (writers' roots), even where COLLECTOR_OBJECT_ACTIONS would allow it.
 */
export const COLLECTOR_DENIED_ACTIONS = ["s3:DeleteObject"];
/** Anonymous readers only fetch objects by key, which is all a Nix substituter does. */
export const ANONYMOUS_OBJECT_ACTIONS = ["s3:GetObject"];
/** What `mc anonymous set download` adds: lets anyone enumerate every store path. */
export const ANONYMOUS_LIST_ACTIONS = ["s3:GetBucketLocation", "s3:ListBucket"];

export const cacheInfoArn = (bucket: string): string => `arn:aws:s3:::${bucket}/${CACHE_INFO_KEY}`;

/**
 * The pins: objects under `pins/` listing store paths that the collector treats as roots. Writers
 * add them with their upload grant; the collector may read them but never delete them.
 */
export const pinsArn = (bucket: string): string => `arn:aws:s3:::${bucket}/${PINS_PREFIX}*`;

/** One cache user's grants and the Deny that wins over them. */
interface UserPolicyShape {
    /** Prefix of the statement ids. */
    role: string;
    bucketActions: string[];
    objectActions: string[];
    /** The Deny statement's id, after the prefix. */
    denySid: string;
    deniedActions: string[];
    deniedResources: string[];
}

/**
 * A cache user's IAM policy. IAM policies carry no Principal (MinIO drops it silently) and no Id. An
 * explicit Deny wins over any Allow, in AWS's evaluation and MinIO's alike.
 */
function userPolicy(bucket: string, shape: UserPolicyShape): PolicyDocument {
    return {
        Version: "2012-10-17",
        Statement: [
            { Sid: `${shape.role}Bucket`, Effect: "Allow", Action: shape.bucketActions, Resource: [bucketArn(bucket)] },
            { Sid: `${shape.role}Objects`, Effect: "Allow", Action: shape.objectActions, Resource: [objectsArn(bucket)] },
            { Sid: `${shape.role}${shape.denySid}`, Effect: "Deny", Action: shape.deniedActions, Resource: shape.deniedResources },
        ],
    };
}

/** The writer's IAM policy: read, list and upload; never delete, never rewrite nix-cache-info. */
export function writerPolicy(bucket: string): PolicyDocument {
    return userPolicy(bucket, {
        role: "Writer",
        bucketActions: WRITER_BUCKET_ACTIONS,
        objectActions: WRITER_OBJECT_ACTIONS,
        denySid: "KeepsCacheInfo",
        deniedActions: WRITER_DENIED_CACHE_INFO_ACTIONS,
        deniedResources: [cacheInfoArn(bucket)],
    });
}

/** The collector's IAM policy: list, read and delete; never upload, never delete nix-cache-info or pins. */
export function collectorPolicy(bucket: string): PolicyDocument {
    return userPolicy(bucket, {
        role: "Collector",
        bucketActions: COLLECTOR_BUCKET_ACTIONS,
        objectActions: COLLECTOR_OBJECT_ACTIONS,
        denySid: "KeepsCacheInfoAndPins",
        deniedActions: COLLECTOR_DENIED_ACTIONS,
        deniedResources: [cacheInfoArn(bucket), pinsArn(bucket)],
    });
}

/** The bucket policy: anonymous download of objects, and listing only when asked for. */
export function anonymousReadPolicy(bucket: string, allowAnonymousList: boolean): PolicyDocument {
    const everyone = { AWS: ["*"] };
    const statements: PolicyStatement[] = [];
    if (allowAnonymousList) {
        statements.push({
            Sid: "AnonymousList",
            Effect: "Allow",
            Principal: everyone,
            Action: ANONYMOUS_LIST_ACTIONS,
            Resource: [bucketArn(bucket)],
        });
    }
    statements.push({
        Sid: "AnonymousDownload",
        Effect: "Allow",
        Principal: everyone,
        Action: ANONYMOUS_OBJECT_ACTIONS,
        Resource: [objectsArn(bucket)],
    });
    return { Version: "2012-10-17", Statement: statements };
}

/** Compact JSON in a fixed key order, so the same document always renders the same bytes. */
export function renderPolicy(document: PolicyDocument): string {
    return JSON.stringify({
        Version: document.Version,
        Statement: document.Statement.map((statement) => ({
            Sid: statement.Sid,
            Effect: statement.Effect,
            ...(statement.Principal ? { Principal: { AWS: [...statement.Principal.AWS] } } : {}),
            Action: [...statement.Action],
            Resource: [...statement.Resource],
        })),
    });
}
