import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { writerPolicy } from "../lib/policies";
import { registerCacheUser } from "./cacheUser";

export interface CacheWriterArgs {
    bucket: string;
    /** The MinIO user (access key) that uploads to the cache. */
    writerName: string;
    /** The user's secret key; generated and kept in state when absent. */
    writerSecret?: string;
}

/** The MinIO user that pushes to the cache, allowed to read and upload but never to delete. */
export class CacheWriter extends pulumi.ComponentResource {
    readonly accessKey: pulumi.Output<string>;
    /** Secret. */
    readonly secretKey: pulumi.Output<string>;

    constructor(name: string, args: CacheWriterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("nix-cache:index:CacheWriter", name, {}, opts);

        // 40 alphanumeric characters (about 238 bits) is MinIO's maximum secret key length, and
        // needs no quoting in ~/.aws/credentials.
        const secret =
            args.writerSecret !== undefined
                ? pulumi.secret(args.writerSecret)
                : new random.RandomPassword(`${name}-secret`, { length: 40, special: false }, { parent: this }).result;
        this.secretKey = pulumi.secret(secret);

        this.accessKey = registerCacheUser(
            name,
            {
                userName: args.writerName,
                secretKey: this.secretKey,
                policyName: `${args.bucket}-write`,
                policy: writerPolicy(args.bucket),
            },
            this,
        );
        this.registerOutputs({ accessKey: this.accessKey, secretKey: this.secretKey });
    }
}
