import * as minio from "@pulumi/minio";
import * as pulumi from "@pulumi/pulumi";
import { CACHE_INFO_CONTENT_TYPE, CACHE_INFO_KEY } from "../lib/cacheInfo";
import { anonymousReadPolicy, renderPolicy } from "../lib/policies";

export interface CacheBucketArgs {
    bucket: string;
    /** The rendered `nix-cache-info` text. */
    cacheInfo: string;
    allowAnonymousList: boolean;
    protect: boolean;
}

/** The bucket, its `nix-cache-info`, and anonymous read access for substituters. */
export class CacheBucket extends pulumi.ComponentResource {
    readonly bucketName: pulumi.Output<string>;
    /** The rendered bucket policy (anonymous access). */
    readonly bucketPolicy: string;

    constructor(name: string, args: CacheBucketArgs, opts?: pulumi.ComponentResourceOptions) {
        super("nix-cache:index:CacheBucket", name, {}, opts);

        // forceDestroy stays off: destroying the stack must never silently delete a full cache.
        const bucket = new minio.S3Bucket(
            `${name}-bucket`,
            { bucket: args.bucket, forceDestroy: false },
            { parent: this, protect: args.protect },
        );
        this.bucketName = bucket.bucket;

        new minio.S3Object(
            `${name}-cache-info`,
            {
                bucketName: bucket.bucket,
                objectName: CACHE_INFO_KEY,
                content: args.cacheInfo,
                contentType: CACHE_INFO_CONTENT_TYPE,
            },
            { parent: this },
        );

        // An explicit policy rather than `acl: "public-read"`, which grants listing of all buckets.
        this.bucketPolicy = renderPolicy(anonymousReadPolicy(args.bucket, args.allowAnonymousList));
        new minio.S3BucketPolicy(
            `${name}-anonymous-read`,
            { bucket: bucket.bucket, policy: this.bucketPolicy },
            { parent: this },
        );

        this.registerOutputs({ bucketName: this.bucketName });
    }
}
