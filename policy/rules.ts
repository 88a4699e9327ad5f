// CrossGuard rules for the nix-cache stack. Constructing a PolicyPack starts the analyzer's gRPC
// server, so the rules live in this module (no side effects) and policy/index.ts only wires them
// up; tests call each validator directly.
import type {
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationPolicy,
} from "@pulumi/policy";
import * as pulumi from "@pulumi/pulumi";
import { CACHE_INFO_KEY } from "../lib/cacheInfo";
import { bucketArn } from "../lib/policies";
import { NAMESPACE } from "../lib/settings";

export const RESOURCE_TYPES = {
    bucket: "minio:index/s3Bucket:S3Bucket",
    bucketPolicy: "minio:index/s3BucketPolicy:S3BucketPolicy",
    iamPolicy: "minio:index/iamPolicy:IamPolicy",
    object: "minio:index/s3Object:S3Object",
    privateKey: "tls:index/privateKey:PrivateKey",
} as const;

interface Statement {
    Sid?: unknown;
    Effect?: unknown;
    Principal?: unknown;
    NotPrincipal?: unknown;
    Action?: unknown;
    NotAction?: unknown;
    Resource?: unknown;
    NotResource?: unknown;
}

/** The statements of a policy document, or why the document cannot be checked. */
function statementsOf(policy: unknown): Statement[] | string {
    if (typeof policy !== "string") {
        return "its policy is not a JSON string";
    }
    let document: unknown;
    try {
        document = JSON.parse(policy);
    } catch {
        return "its policy is not valid JSON";
    }
    const statements = (document as { Statement?: unknown } | null)?.Statement;
    const list = Array.isArray(statements) ? statements : [statements];
    if (list.some((statement) => typeof statement !== "object" || statement === null)) {
        return "its policy has no list of statements";
    }
    return list as Statement[];
}

/** IAM lets Action, Resource and the like be one string or a list of strings. */
const asList = (value: unknown): string[] =>
    Array.isArray(value) ? value.map(String) : value === undefined ? [] : [String(value)];

const isAllow = (statement: Statement): boolean => statement.Effect === "Allow";

const statementLabel = (statement: Statement, index: number): string =>
    typeof statement.Sid === "string" && statement.Sid !== ""
        ? `statement '${statement.Sid}'`
        : `statement #${index + 1}`;

/**
 * Whether an IAM action pattern (wildcards `*` and `?`, case-insensitive) matches at least one
 * action that starts with `prefix`. Whatever follows the prefix can always be chosen to fit the
 * rest of the pattern, so it suffices that the pattern can consume the whole prefix.
 */
export function actionPatternReaches(pattern: string, prefix: string): boolean {
    const p = pattern.toLowerCase();
    const q = prefix.toLowerCase();
    const seen = new Set<string>();
    const reaches = (i: number, j: number): boolean => {
        if (j === q.length) {
            return true;
        }
        if (i === p.length || seen.has(`${i},${j}`)) {
            return false;
        }
        seen.add(`${i},${j}`);
        if (p[i] === "*") {
            return reaches(i + 1, j) || reaches(i, j + 1);
        }
        return (p[i] === "?" || p[i] === q[j]) && reaches(i + 1, j + 1);
    };
    return reaches(0, 0);
}

/** Read-only S3 actions: every S3 action named Get… or List… only reads. */
const READ_ACTION = /^s3:(get|list)/i;

/** Runs `check` on every statement of a policy document; an unreadable document is a problem too. */
function problemsPerStatement(
    what: string,
    policy: unknown,
    check: (statement: Statement, where: string) => string[],
): string[] {
    const statements = statementsOf(policy);
    if (typeof statements === "string") {
        return [`${what} cannot be checked: ${statements}`];
    }
    return statements.flatMap((statement, index) => check(statement, `${what} ${statementLabel(statement, index)}`));
}

/** One problem per way a bucket policy lets anonymous clients change or delete something. */
export function anonymousWriteProblems(policy: unknown): string[] {
    // MinIO applies bucket policies to anonymous requests only, so every Allow statement here is
    // a grant to anonymous clients, whatever its Principal says.
    return problemsPerStatement("bucket policy", policy, (statement, where) => {
        if (!isAllow(statement)) {
            return [];
        }
        if (statement.NotAction !== undefined) {
            return [`${where} allows anonymous clients every action but those in NotAction`];
        }
        return asList(statement.Action)
            .filter((action) => !READ_ACTION.test(action))
            .map(
                (action) =>
                    `${where} allows anonymous clients '${action}', which is not limited to reading ` +
                    "(s3:Get…, s3:List…): anonymous write, delete and policy changes are forbidden",
            );
    });
}

/** Whether a resource pattern stays inside one of the given buckets (the bucket or its objects). */
const insideBuckets = (resource: string, buckets: string[]): boolean =>
    buckets.some((bucket) => resource === bucketArn(bucket) || resource.startsWith(`${bucketArn(bucket)}/`));

/** One problem per way a writer's IAM policy grants deletion, MinIO admin actions, or other buckets. */
export function writerPolicyProblems(policy: unknown, stackBuckets: string[]): string[] {
    return problemsPerStatement("IAM policy", policy, (statement, where) => {
        if (!isAllow(statement)) {
            return [];
        }
        const problems: string[] = [];
        if (statement.NotAction !== undefined) {
            problems.push(`${where} allows every action but those in NotAction`);
        }
        if (statement.NotResource !== undefined) {
            problems.push(`${where} allows every resource but those in NotResource`);
        }
        for (const action of asList(statement.Action)) {
            if (actionPatternReaches(action, "s3:Delete")) {
                problems.push(`${where} grants deletion: '${action}' matches s3:Delete… actions`);
            }
            if (actionPatternReaches(action, "admin:")) {
                problems.push(`${where} grants MinIO admin actions: '${action}' matches admin:…`);
            }
        }
        for (const resource of asList(statement.Resource)) {
            if (!insideBuckets(resource, stackBuckets)) {
                problems.push(
                    `${where} reaches beyond this stack's bucket(s) (${stackBuckets.join(", ") || "none"}): ` +
                        `'${resource}'; name the bucket and its objects exactly, without wildcards in the bucket name`,
                );
            }
        }
        return problems;
    });
}

/** One problem per statement of an IAM policy that carries a Principal (MinIO drops it silently). */
export function iamPrincipalProblems(policy: unknown): string[] {
    return problemsPerStatement("IAM policy", policy, (statement, where) =>
        statement.Principal !== undefined || statement.NotPrincipal !== undefined
            ? [
                  `${where} carries a Principal: IAM policies apply to whoever they are attached to, ` +
                      "and MinIO drops the field silently; remove it",
              ]
            : [],
    );
}

/**
 * Whether the stack wants its bucket and signing key protected. The engine hands a policy pack the
 * stack's config (PULUMI_CONFIG), so the pack reads the program's own `nix-cache:protect` setting;
 * unset means protected, as in lib/settings.ts (a test checks that the two agree). Only this one
 * setting is read, so that unrelated config problems stay the program's to report.
 */
export const protectionRequired = (): boolean => new pulumi.Config(NAMESPACE).getBoolean("protect") ?? true;

const byType = (resources: PolicyResource[], type: string): PolicyResource[] =>
    resources.filter((resource) => resource.type === type);

const resourceRule = (
    policy: Omit<ResourceValidationPolicy, "validateResource" | "enforcementLevel">,
    types: string[],
    check: (args: ResourceValidationArgs) => string[],
): ResourceValidationPolicy => ({
    ...policy,
    enforcementLevel: "mandatory",
    validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) => {
        if (types.includes(args.type)) {
            check(args).forEach((problem) => reportViolation(problem));
        }
    },
});

export const noAnonymousWrites = resourceRule(
    {
        name: "bucket-policy-no-anonymous-write",
        description: "The bucket policy never lets anonymous clients write, delete or change policies: reading only.",
    },
    [RESOURCE_TYPES.bucketPolicy],
    (args) => anonymousWriteProblems(args.props.policy),
);

export const noPrincipalInIamPolicies = resourceRule(
    {
        name: "iam-policy-no-principal",
        description: "IAM policies carry no Principal: MinIO drops it silently, so it can only mislead readers.",
    },
    [RESOURCE_TYPES.iamPolicy],
    (args) => iamPrincipalProblems(args.props.policy),
);

export const bucketAndKeyProtected = resourceRule(
    {
        name: "bucket-and-signing-key-protected",
        description:
            "The cache bucket and the signing key are protected from deletion unless the stack opts out " +
            `(pulumi config set ${NAMESPACE}:protect false).`,
    },
    [RESOURCE_TYPES.bucket, RESOURCE_TYPES.privateKey],
    (args) =>
        args.opts.protect || !protectionRequired()
            ? []
            : [
                  `${args.name} (${args.type}) is not protected: deleting it loses the cache or forces every client ` +
                      `to trust a new key. Protect it, or opt out for a throwaway stack with ` +
                      `'pulumi config set ${NAMESPACE}:protect false'`,
              ],
);

export const writerPoliciesLeastPrivilege: StackValidationPolicy = {
    name: "writer-policy-least-privilege",
    description: "Writer (IAM) policies never grant deletion, MinIO admin actions, or buckets outside this stack.",
    enforcementLevel: "mandatory",
    validateStack: (args, reportViolation) => {
        const buckets = byType(args.resources, RESOURCE_TYPES.bucket).map((bucket) => String(bucket.props.bucket));
        for (const policy of byType(args.resources, RESOURCE_TYPES.iamPolicy)) {
            for (const problem of writerPolicyProblems(policy.props.policy, buckets)) {
                reportViolation(problem, policy.urn);
            }
        }
    },
};

export const cacheInfoExists: StackValidationPolicy = {
    name: "nix-cache-info-exists",
    description: `Every cache bucket holds a '${CACHE_INFO_KEY}' object: Nix refuses a binary cache without it.`,
    enforcementLevel: "mandatory",
    validateStack: (args, reportViolation) => {
        const cacheInfos = byType(args.resources, RESOURCE_TYPES.object).filter(
            (object) => object.props.objectName === CACHE_INFO_KEY,
        );
        if (cacheInfos.length === 0) {
            reportViolation(`the stack declares no '${CACHE_INFO_KEY}' object (${RESOURCE_TYPES.object})`);
        }
        for (const bucket of byType(args.resources, RESOURCE_TYPES.bucket)) {
            if (!cacheInfos.some((object) => object.props.bucketName === bucket.props.bucket)) {
                reportViolation(`bucket '${bucket.props.bucket}' has no '${CACHE_INFO_KEY}' object`, bucket.urn);
            }
        }
    },
};

export const NIX_CACHE_POLICIES = [
    noAnonymousWrites,
    writerPoliciesLeastPrivilege,
    noPrincipalInIamPolicies,
    bucketAndKeyProtected,
    cacheInfoExists,
];
