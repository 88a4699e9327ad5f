// Decides requests against the policy documents the program registers, with an independent AWS IAM
// policy evaluator (@cloud-copilot/iam-simulate: AGPL, so a dev dependency used by tests only).
//
// How MinIO's model maps onto AWS's:
// - MinIO applies a bucket policy to anonymous requests only, so anonymous requests are simulated
//   as unsigned requests (the evaluator's `anonymousPrincipal`) against the bucket policy as a
//   resource policy, with no identity policies.
// - MinIO checks a user's requests against the IAM policies attached to the user only, so writer
//   and collector requests are simulated against that user's IAM policy as an identity policy, with
//   no resource policy. One made-up account holds principals and bucket (MinIO has no accounts).
// - MinIO's admin API actions (`admin:*`) are not in the evaluator's AWS action catalogue, so
//   `runSimulation` refuses them as an invalid service; they go through `runUnsafeSimulation`, the
//   same engine without input validation. MinIO ignores Resource for admin actions, so an admin
//   action counts as allowed if the policy allows it on any resource it names, or on `*`.
import { anonymousPrincipal, runSimulation, runUnsafeSimulation, type Simulation } from "@cloud-copilot/iam-simulate";
import { buildStack } from "../stack";
import { installMocks, resetRegistrations, settle } from "./harness";

export type Who = "anonymous" | "writer" | "collector";

/** The policy documents exactly as registered with the engine (the resources' `policy` input). */
export interface RegisteredPolicies {
    bucketPolicy: string;
    writerPolicy: string;
    collectorPolicy: string;
}

/** Which registered document decides each principal's requests. */
export const DOCUMENT_OF: Record<Who, keyof RegisteredPolicies> = {
    anonymous: "bucketPolicy",
    writer: "writerPolicy",
    collector: "collectorPolicy",
};

export const BUCKET_POLICY_TYPE = "minio:index/s3BucketPolicy:S3BucketPolicy";
export const IAM_POLICY_TYPE = "minio:index/iamPolicy:IamPolicy";

/** Provider settings every test stack here starts from (the public URL derives from them). */
export const STACK_CONFIG = { "minio:minioServer": "s3.example.org:9000", "minio:minioSsl": "true" };

const ACCOUNT = "000000000000";
const USER_ARNS: Record<Exclude<Who, "anonymous">, string> = {
    writer: `arn:aws:iam::${ACCOUNT}:user/nixbuilder`,
    collector: `arn:aws:iam::${ACCOUNT}:user/nixcollector`,
};

/** Builds the stack under the mock engine from `config` and returns the registered policy inputs. */
export async function registeredPolicies(config: Record<string, string>): Promise<RegisteredPolicies> {
    await installMocks();
    resetRegistrations();
    const registered = await settle(buildStack(config));
    const typeOf = new Map(registered.map((resource) => [resource.urn, resource.type]));
    /** The one resource of `type` (a child of a component of `parentType`, if given) and its policy. */
    const policyOf = (type: string, parentType?: string): string => {
        const found = registered.filter(
            (resource) => resource.type === type && (parentType === undefined || typeOf.get(resource.parentUrn) === parentType),
        );
        if (found.length !== 1 || typeof found[0]!.inputs.policy !== "string") {
            throw new Error(`expected exactly one ${type} under ${parentType} with a string policy, found ${found.length}`);
        }
        return found[0]!.inputs.policy;
    };
    return {
        bucketPolicy: policyOf(BUCKET_POLICY_TYPE),
        writerPolicy: policyOf(IAM_POLICY_TYPE, "nix-cache:index:CacheWriter"),
        collectorPolicy: policyOf(IAM_POLICY_TYPE, "nix-cache:index:CacheCollector"),
    };
}

/** The registered policies with default access settings and with `allowAnonymousList`. */
export async function policiesWithAndWithoutListing(
    config: Record<string, string>,
): Promise<{ defaults: RegisteredPolicies; withList: RegisteredPolicies }> {
    return {
        defaults: await registeredPolicies(config),
        withList: await registeredPolicies({ ...config, "nix-cache:allowAnonymousList": "true" }),
    };
}

/** The resources a policy document names, for admin actions (where MinIO ignores Resource). */
function namedResources(document: { Statement: { Resource?: string | string[] }[] }): string[] {
    return ["*", ...document.Statement.flatMap((statement) => [statement.Resource ?? []].flat())];
}

/** Whether `who` may perform `action` on `resource` (an ARN, or `*`) under `policies`. */
export async function isAllowed(
    policies: RegisteredPolicies,
    who: Who,
    action: string,
    resource: string,
): Promise<boolean> {
    const document = JSON.parse(policies[DOCUMENT_OF[who]]);
    const simulation = (requested: string): Simulation => ({
        request: {
            principal: who === "anonymous" ? anonymousPrincipal : USER_ARNS[who],
            action,
            resource: { resource: requested, accountId: ACCOUNT },
            contextVariables: {},
        },
        identityPolicies: who === "anonymous" ? [] : [{ name: who, policy: document }],
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        ...(who === "anonymous" ? { resourcePolicy: document } : {}),
    });

    if (action.startsWith("admin:")) {
        return namedResources(document).some(
            (named) => runUnsafeSimulation(simulation(named), { simulationMode: "Strict" }) === "Allowed",
        );
    }
    const result = await runSimulation(simulation(resource), { simulationMode: "Strict" });
    if (result.resultType === "error") {
        // An invalid request or document is a test failure, never a silent "denied".
        throw new Error(`cannot evaluate ${who} ${action} on ${resource}: ${JSON.stringify(result.errors)}`);
    }
    return result.overallResult === "Allowed";
}
