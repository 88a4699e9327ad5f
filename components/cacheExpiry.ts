import * as pulumi from "@pulumi/pulumi";
import { expiryRule } from "../lib/lifecycle";
import { BucketLifecycle } from "../providers/bucketLifecycle";

export interface CacheExpiryArgs {
    bucket: pulumi.Input<string>;
    /** Days after which objects expire (at least 1). */
    expireDays: number;
    /** The rendered `nix-cache-info` text: objects no larger than it never expire. */
    cacheInfo: string;
    /** What holds the bucket and its `nix-cache-info`: the rule is written after both exist. */
    storage: pulumi.Resource;
}

/**
 * Expiry of everything in the cache but `nix-cache-info`, as the stack's rule in the bucket's
 * lifecycle configuration. It connects as the `minio` provider does, resolved when it runs.
 */
export class CacheExpiry extends pulumi.ComponentResource {
    constructor(name: string, args: CacheExpiryArgs, opts?: pulumi.ComponentResourceOptions) {
        super("nix-cache:index:CacheExpiry", name, {}, opts);

        new BucketLifecycle(
            `${name}-lifecycle`,
            { bucket: args.bucket, rule: expiryRule(args.expireDays, args.cacheInfo) },
            { parent: this, dependsOn: [args.storage] },
        );

        this.registerOutputs({});
    }
}
