// IAM and bucket policy documents, rendered as compact JSON with a fixed key order: MinIO
// re-serialises what it stores, and byte-stable input keeps a second `pulumi up` free of diffs.
import { CACHE_INFO_KEY } from "./cacheInfo";

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
/** Anonymous readers only fetch objects by key, which is all a Nix substituter does. */
export const ANONYMOUS_OBJECT_ACTIONS = ["s3:GetObject"];
/** What `mc anonymous set download` adds: lets anyone enumerate every store path. */
export const ANONYMOUS_LIST_ACTIONS = ["s3:GetBucketLocation", "s3:ListBucket"];

export const cacheInfoArn = (bucket: string): string => `arn:aws:s3:::${bucket}/${CACHE_INFO_KEY}`;

/**
 * The writer's IAM policy. IAM policies carry no Principal (MinIO drops it silently) and no Id. An
 * explicit Deny wins over any Allow, in AWS's evaluation and MinIO's alike.
 */
export function writerPolicy(bucket: string): PolicyDocument {
    return {
        Version: "2012-10-17",
        Statement: [
            { Sid: "WriterBucket", Effect: "Allow", Action: WRITER_BUCKET_ACTIONS, Resource: [bucketArn(bucket)] },
            { Sid: "WriterObjects", Effect: "Allow", Action: WRITER_OBJECT_ACTIONS, Resource: [objectsArn(bucket)] },
            {
                Sid: "WriterKeepsCacheInfo",
                Effect: "Deny",
                Action: WRITER_DENIED_CACHE_INFO_ACTIONS,
                Resource: [cacheInfoArn(bucket)],
            },
        ],
    };
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
