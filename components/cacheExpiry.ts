import * as pulumi from "@pulumi/pulumi";
import { expiryLifecycle } from "../lib/lifecycle";
import type { MinioConnection } from "../lib/minioConnection";
import { BucketLifecycle } from "../providers/bucketLifecycle";

export interface CacheExpiryArgs {
    bucket: pulumi.Input<string>;
    /** Days after which objects expire (at least 1). */
    expireDays: number;
    /** The rendered `nix-cache-info` text: objects no larger than it never expire. */
    cacheInfo: string;
    /** The `minio` provider's connection. */
    connection: MinioConnection;
    /** What holds the bucket and its `nix-cache-info`: the rule is written after both exist. */
    storage: pulumi.Resource;
}

/** Expiry of everything in the cache but `nix-cache-info`, as the bucket's lifecycle rule. */
export class CacheExpiry extends pulumi.ComponentResource {
    constructor(name: string, args: CacheExpiryArgs, opts?: pulumi.ComponentResourceOptions) {
        super("nix-cache:index:CacheExpiry", name, {}, opts);

        const { accessKey, secretKey, ...endpoint } = args.connection;
        new BucketLifecycle(
            `${name}-lifecycle`,
            {
                ...endpoint,
                accessKey: pulumi.secret(accessKey),
                secretKey: pulumi.secret(secretKey),
                bucket: args.bucket,
                configuration: expiryLifecycle(args.expireDays, args.cacheInfo),
            },
            { parent: this, dependsOn: [args.storage] },
        );

        this.registerOutputs({});
    }
}
