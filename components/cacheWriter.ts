import * as minio from "@pulumi/minio";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { renderPolicy, writerPolicy } from "../lib/policies";

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

        const user = new minio.IamUser(
            `${name}-user`,
            { name: args.writerName, secret: this.secretKey },
            { parent: this },
        );
        // Explicit names: without one the provider appends a random suffix.
        const policy = new minio.IamPolicy(
            `${name}-policy`,
            { name: `${args.bucket}-write`, policy: renderPolicy(writerPolicy(args.bucket)) },
            { parent: this },
        );
        new minio.IamUserPolicyAttachment(
            `${name}-policy-attachment`,
            { userName: user.name, policyName: policy.name },
            { parent: this },
        );

        this.accessKey = user.name;
        this.registerOutputs({ accessKey: this.accessKey, secretKey: this.secretKey });
    }
}
