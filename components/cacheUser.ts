import * as minio from "@pulumi/minio";
import * as pulumi from "@pulumi/pulumi";
import { renderPolicy, type PolicyDocument } from "../lib/policies";

export interface CacheUserArgs {
    /** The MinIO user (access key). */
    userName: string;
    /** Secret. */
    secretKey: pulumi.Input<string>;
    /** The IAM policy's name on the server. */
    policyName: string;
    policy: PolicyDocument;
}

/**
 * A MinIO user of the cache with its own IAM policy attached, as children of `parent` named after
 * `name`. Returns the user's access key.
 */
export function registerCacheUser(name: string, args: CacheUserArgs, parent: pulumi.Resource): pulumi.Output<string> {
    const user = new minio.IamUser(`${name}-user`, { name: args.userName, secret: args.secretKey }, { parent });
    // Explicit names: without one the provider appends a random suffix.
    const policy = new minio.IamPolicy(
        `${name}-policy`,
        { name: args.policyName, policy: renderPolicy(args.policy) },
        { parent },
    );
    new minio.IamUserPolicyAttachment(
        `${name}-policy-attachment`,
        { userName: user.name, policyName: policy.name },
        { parent },
    );
    return user.name;
}
