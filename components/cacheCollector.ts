import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { collectorPolicy } from "../lib/policies";
import { registerCacheUser } from "./cacheUser";

export interface CacheCollectorArgs {
    bucket: string;
    /** The MinIO user (access key) that runs the garbage collector. */
    collectorName: string;
}

/** The MinIO user that garbage-collects the cache: lists, reads and deletes, never uploads. */
export class CacheCollector extends pulumi.ComponentResource {
    readonly accessKey: pulumi.Output<string>;
    /** Secret. */
    readonly secretKey: pulumi.Output<string>;

    constructor(name: string, args: CacheCollectorArgs, opts?: pulumi.ComponentResourceOptions) {
        super("nix-cache:index:CacheCollector", name, {}, opts);

        // As the writer's: MinIO's longest secret key, alphanumeric so that no file needs to quote it.
        const secret = new random.RandomPassword(`${name}-secret`, { length: 40, special: false }, { parent: this });
        this.secretKey = pulumi.secret(secret.result);
        this.accessKey = registerCacheUser(
            name,
            {
                userName: args.collectorName,
                secretKey: this.secretKey,
                policyName: `${args.bucket}-collect`,
                policy: collectorPolicy(args.bucket),
            },
            this,
        );
        this.registerOutputs({ accessKey: this.accessKey, secretKey: this.secretKey });
    }
}
