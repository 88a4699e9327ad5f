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
import {
    ANONYMOUS_LIST_ACTIONS,
    ANONYMOUS_OBJECT_ACTIONS,
    bucketArn,
    cacheInfoArn,
    COLLECTOR_BUCKET_ACTIONS,
    COLLECTOR_DENIED_ACTIONS,
    COLLECTOR_OBJECT_ACTIONS,
    pinsArn,
    WRITER_BUCKET_ACTIONS,
    WRITER_DENIED_CACHE_INFO_ACTIONS,
    WRITER_OBJECT_ACTIONS,
} from "../lib/policies";
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

// Anything but an explicit Deny is checked as a grant: the rules allowlist, so an odd or missing
// Effect must not slip through as "not an Allow".
const isDeny = (statement: Statement): boolean => statement.Effect === "Deny";

const statementLabel = (statement: Statement, index: number): string =>
    typeof statement.Sid === "string" && statement.Sid !== ""
        ? `statement '${statement.Sid}'`
        : `statement #${index + 1}`;

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

/** The only actions a grantee may be given, each only on the bucket itself or on its objects. */
interface Allowlist {
    /** Who is granted, as the problems name them. */
    grantee: string;
    bucketActions: readonly string[];
    objectActions: readonly string[];
}

const WRITER_ALLOWLIST: Allowlist = {
    grantee: "the writer",
    bucketActions: WRITER_BUCKET_ACTIONS,
    objectActions: WRITER_OBJECT_ACTIONS,
};

const COLLECTOR_ALLOWLIST: Allowlist = {
    grantee: "the collector",
    bucketActions: COLLECTOR_BUCKET_ACTIONS,
    objectActions: COLLECTOR_OBJECT_ACTIONS,
};

// MinIO applies bucket policies to anonymous requests only, so every grant in one is a grant to
// anonymous clients, whatever its Principal says.
const ANONYMOUS_ALLOWLIST: Allowlist = {
    grantee: "anonymous clients",
    bucketActions: ANONYMOUS_LIST_ACTIONS,
    objectActions: ANONYMOUS_OBJECT_ACTIONS,
};

const describeAllowlist = ({ bucketActions, objectActions }: Allowlist): string =>
    `${bucketActions.join(", ")} on the bucket; ${objectActions.join(", ")} on its objects`;

// IAM action names are case-insensitive.
const listed = (actions: readonly string[], action: string): boolean =>
    actions.some((allowed) => allowed.toLowerCase() === action.toLowerCase());

const isBucketResource = (resource: string, buckets: string[]): boolean =>
    buckets.some((bucket) => resource === bucketArn(bucket));

const isObjectResource = (resource: string, buckets: string[]): boolean =>
    buckets.some((bucket) => resource.startsWith(`${bucketArn(bucket)}/`));

/**
 * One problem per grant of a statement outside the allowlist. A wildcard action is refused
 * outright: whatever S3 or MinIO add later would match it too, so no pattern can be proven to stay
 * inside the list.
 */
function grantProblems(statement: Statement, where: string, allowlist: Allowlist, buckets: string[]): string[] {
    if (isDeny(statement)) {
        return [];
    }
    const { grantee } = allowlist;
    const problems: string[] = [];
    if (statement.NotAction !== undefined) {
        problems.push(`${where} grants ${grantee} every action but those in NotAction; list the actions in Action`);
    }
    if (statement.NotResource !== undefined) {
        problems.push(`${where} grants ${grantee} every resource but those in NotResource; list them in Resource`);
    }
    const resources = asList(statement.Resource);
    for (const resource of resources) {
        if (!isBucketResource(resource, buckets) && !isObjectResource(resource, buckets)) {
            problems.push(
                `${where} reaches beyond this stack's bucket(s) (${buckets.join(", ") || "none"}): ` +
                    `'${resource}'; name the bucket and its objects exactly, without wildcards in the bucket name`,
            );
        }
    }
    const allowed = `only ${describeAllowlist(allowlist)} may be granted`;
    for (const action of asList(statement.Action)) {
        if (/[*?]/.test(action)) {
            problems.push(`${where} grants ${grantee} the wildcard action '${action}'; name each action (${allowed})`);
            continue;
        }
        const onBucket = listed(allowlist.bucketActions, action);
        const onObjects = listed(allowlist.objectActions, action);
        if (!onBucket && !onObjects) {
            problems.push(`${where} grants ${grantee} '${action}', which is not on the allowlist (${allowed})`);
            continue;
        }
        for (const resource of resources) {
            if (
                (isBucketResource(resource, buckets) && !onBucket) ||
                (isObjectResource(resource, buckets) && !onObjects)
            ) {
                const place = onBucket ? "the bucket itself" : "the bucket's objects";
                problems.push(`${where} grants ${grantee} '${action}' on '${resource}', but only on ${place} (${allowed})`);
            }
        }
    }
    return problems;
}

/** One problem per grant of a bucket policy beyond anonymous download (and listing) of `bucket`. */
function anonymousGrantProblems(policy: unknown, bucket: unknown): string[] {
    return problemsPerStatement("bucket policy", policy, (statement, where) =>
        grantProblems(statement, where, ANONYMOUS_ALLOWLIST, typeof bucket === "string" ? [bucket] : []),
    );
}

/**
 * Whether some key matches both IAM resource patterns (`*`: any run of characters, `?`: any one;
 * case-sensitive, as IAM compares resources).
 */
function patternsOverlap(a: string, b: string): boolean {
    const memo = new Map<string, boolean>();
    const from = (i: number, j: number): boolean => {
        const key = `${i},${j}`;
        let result = memo.get(key);
        if (result === undefined) {
            if (i === a.length || j === b.length) {
                // What is left of the other pattern must be able to match nothing.
                result = /^\**$/.test(a.slice(i)) && /^\**$/.test(b.slice(j));
            } else if (a[i] === "*" || b[j] === "*") {
                // A star matches nothing (skip it), or takes one more character of the other side.
                result =
                    (a[i] === "*" && (from(i + 1, j) || from(i, j + 1))) || (b[j] === "*" && (from(i, j + 1) || from(i + 1, j)));
            } else {
                result = (a[i] === b[j] || a[i] === "?" || b[j] === "?") && from(i + 1, j + 1);
            }
            memo.set(key, result);
        }
        return result;
    };
    return from(0, 0);
}

/** A cache user's allowlist and the Deny it must carry for what it may never touch. */
interface Role {
    allowlist: Allowlist;
    /** Actions granted on the objects that `protectedArns` must each have an explicit Deny for. */
    deniedActions: readonly string[];
    protectedArns: (bucket: string) => string[];
    /** What the role does to the bucket, as the problems say it ("upload to"). */
    doing: string;
    risk: string;
}

const WRITER_ROLE: Role = {
    allowlist: WRITER_ALLOWLIST,
    deniedActions: WRITER_DENIED_CACHE_INFO_ACTIONS,
    protectedArns: (bucket) => [cacheInfoArn(bucket)],
    doing: "upload to",
    risk: "a writer could rewrite nix-cache-info and make every client refuse the cache",
};

const COLLECTOR_ROLE: Role = {
    allowlist: COLLECTOR_ALLOWLIST,
    deniedActions: COLLECTOR_DENIED_ACTIONS,
    protectedArns: (bucket) => [cacheInfoArn(bucket), pinsArn(bucket)],
    doing: "delete in",
    risk: "the collector could delete nix-cache-info (every client then refuses the cache) or the pins that keep paths alive",
};

/**
 * A policy that grants one of the role's denied actions on anything reaching a protected object
 * (`<bucket>/*`, the object itself, a pattern that matches it) must also carry an explicit Deny of
 * those actions naming that object; one problem per protected object without it.
 */
function requiredDenyProblems(statements: Statement[], stackBuckets: string[], role: Role): string[] {
    const names = (statement: Statement, field: "Action" | "Resource") => asList(statement[field]);
    const actions = role.deniedActions.join(", ");
    return stackBuckets.flatMap((bucket) =>
        role.protectedArns(bucket).flatMap((arn) => {
            const reached = statements.some(
                (statement) =>
                    !isDeny(statement) &&
                    names(statement, "Resource").some((resource) => patternsOverlap(resource, arn)) &&
                    names(statement, "Action").some((action) => listed(role.deniedActions, action)),
            );
            const denied = role.deniedActions.every((action) =>
                statements.some(
                    (statement) =>
                        isDeny(statement) &&
                        statement.NotAction === undefined &&
                        statement.NotResource === undefined &&
                        listed(names(statement, "Action"), action) &&
                        names(statement, "Resource").includes(arn),
                ),
            );
            return reached && !denied
                ? [`IAM policy lets ${role.allowlist.grantee} ${role.doing} '${bucket}' without a Deny of ${actions} on '${arn}': ${role.risk}`]
                : [];
        }),
    );
}

/** Everything wrong with an IAM policy taken as the role's policy. */
function roleProblems(policy: unknown, statements: Statement[], stackBuckets: string[], role: Role): string[] {
    const grants = problemsPerStatement("IAM policy", policy, (statement, where) =>
        grantProblems(statement, where, role.allowlist, stackBuckets),
    );
    return [...grants, ...requiredDenyProblems(statements, stackBuckets, role)];
}

/** The actions only one of two allowlists names. */
const onlyIn = (list: Allowlist, other: Allowlist): string[] =>
    [...list.bucketActions, ...list.objectActions].filter(
        (action) => !listed([...other.bucketActions, ...other.objectActions], action),
    );

/**
 * An IAM policy must be wholly the writer's or wholly the collector's: no problems as one of the
 * two. Otherwise it is judged as the collector's if it grants an action only the collector may have
 * (deletion), as the writer's if it grants one only the writer may have (uploads), else as the one it
 * comes closer to; a policy that grants both kinds gets a problem of its own first.
 */
function iamPolicyProblems(policy: unknown, stackBuckets: string[]): string[] {
    const statements = statementsOf(policy);
    if (typeof statements === "string") {
        return [`IAM policy cannot be checked: ${statements}`];
    }
    const asWriter = roleProblems(policy, statements, stackBuckets, WRITER_ROLE);
    const asCollector = roleProblems(policy, statements, stackBuckets, COLLECTOR_ROLE);
    if (asWriter.length === 0 || asCollector.length === 0) {
        return [];
    }
    const granted = statements.filter((statement) => !isDeny(statement)).flatMap((statement) => asList(statement.Action));
    const grantedOf = (actions: string[]) => actions.filter((action) => listed(granted, action));
    const writerOnly = grantedOf(onlyIn(WRITER_ALLOWLIST, COLLECTOR_ALLOWLIST));
    const collectorOnly = grantedOf(onlyIn(COLLECTOR_ALLOWLIST, WRITER_ALLOWLIST));
    const closer = asCollector.length < asWriter.length ? asCollector : asWriter;
    if (writerOnly.length > 0 && collectorOnly.length > 0) {
        return [
            `IAM policy grants the writer's ${writerOnly.join(", ")} together with the collector's ${collectorOnly.join(", ")}: ` +
                "a policy is either the writer's (uploads, never deletes) or the collector's (deletes, never uploads); split it in two",
            ...closer,
        ];
    }
    return collectorOnly.length > 0 ? asCollector : writerOnly.length > 0 ? asWriter : closer;
}

/** One problem per statement of an IAM policy that carries a Principal (MinIO drops it silently). */
function iamPrincipalProblems(policy: unknown): string[] {
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
        description:
            "The bucket policy grants anonymous clients only named read actions: " +
            `${describeAllowlist(ANONYMOUS_ALLOWLIST)}. No wildcards, NotAction or NotResource.`,
    },
    [RESOURCE_TYPES.bucketPolicy],
    (args) => anonymousGrantProblems(args.props.policy, args.props.bucket),
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

export const iamPoliciesLeastPrivilege: StackValidationPolicy = {
    name: "iam-policy-least-privilege",
    description:
        "Every IAM policy is wholly the writer's or wholly the collector's, with only named actions on this " +
        `stack's bucket(s). The writer's: ${describeAllowlist(WRITER_ALLOWLIST)}, uploads with a Deny of ` +
        `${WRITER_DENIED_CACHE_INFO_ACTIONS.join(", ")} on the bucket's ${CACHE_INFO_KEY}. The collector's: ` +
        `${describeAllowlist(COLLECTOR_ALLOWLIST)}, deletions with a Deny of ${COLLECTOR_DENIED_ACTIONS.join(", ")} ` +
        `on ${CACHE_INFO_KEY} and pins/*. No wildcards, NotAction or NotResource.`,
    enforcementLevel: "mandatory",
    validateStack: (args, reportViolation) => {
        const buckets = byType(args.resources, RESOURCE_TYPES.bucket).map((bucket) => String(bucket.props.bucket));
        for (const policy of byType(args.resources, RESOURCE_TYPES.iamPolicy)) {
            for (const problem of iamPolicyProblems(policy.props.policy, buckets)) {
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
    iamPoliciesLeastPrivilege,
    noPrincipalInIamPolicies,
    bucketAndKeyProtected,
    cacheInfoExists,
];
