// The CrossGuard rules in policy/rules.ts, called directly (constructing the PolicyPack would start
// its server): the resources the program really registers pass every rule, and hand-made
// violations of each rule fail it.
import assert from "node:assert/strict";
import { before, beforeEach, describe, test } from "node:test";
import type {
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationPolicy,
} from "@pulumi/policy";
import { parseSettings } from "../lib/settings";
import {
    bucketAndKeyProtected,
    cacheInfoExists,
    NIX_CACHE_POLICIES,
    noAnonymousWrites,
    noPrincipalInIamPolicies,
    protectionRequired,
    RESOURCE_TYPES,
    iamPoliciesLeastPrivilege,
} from "../policy/rules";
import { buildStack } from "../stack";
import { STACK_CONFIG } from "./accessEvaluation";
import { installMocks, resetRegistrations, setConfig, settle, type Registered } from "./harness";

const BUCKET = "nix-cache";
/** The IAM policies' names on the server, as the program registers them. */
const WRITER_POLICY = "nix-cache-write";
const COLLECTOR_POLICY = "nix-cache-collect";

/** A resource as a policy sees it: type, name, URN, protect flag and properties. */
interface Candidate {
    type: string;
    name: string;
    urn: string;
    protect: boolean;
    props: Record<string, any>;
}

const fromRegistered = ({ type, name, urn, protect, inputs }: Registered): Candidate => ({
    type,
    name,
    urn,
    protect,
    props: inputs,
});

const candidate = (type: string, name: string, props: Record<string, any>, protect = false): Candidate => ({
    type,
    name,
    urn: `urn:pulumi:test::nix-cache::${type}::${name}`,
    protect,
    props,
});

const notForRules = (): never => {
    throw new Error("the rules compare type tokens and take no policy config");
};

function policyView(resource: Candidate) {
    return {
        type: resource.type,
        props: resource.props,
        urn: resource.urn,
        name: resource.name,
        opts: {
            protect: resource.protect,
            ignoreChanges: [],
            aliases: [],
            customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
            additionalSecretOutputs: [],
        },
        isType: notForRules,
        asType: notForRules,
    };
}

function resourceViolations(policy: ResourceValidationPolicy, resources: Candidate[]): string[] {
    const messages: string[] = [];
    for (const resource of resources) {
        const args: ResourceValidationArgs = {
            ...policyView(resource),
            stackTags: new Map(),
            getConfig: notForRules,
            notApplicable: notForRules,
        };
        for (const validate of [policy.validateResource ?? []].flat()) {
            validate(args, (message) => messages.push(message));
        }
    }
    return messages;
}

function stackViolations(policy: StackValidationPolicy, resources: Candidate[]): { message: string; urn?: string }[] {
    const found: { message: string; urn?: string }[] = [];
    const views: PolicyResource[] = resources.map((resource) => ({
        ...policyView(resource),
        dependencies: [],
        propertyDependencies: {},
    }));
    policy.validateStack(
        { resources: views, stackTags: new Map(), getConfig: notForRules, notApplicable: notForRules },
        (message, urn) => found.push({ message, ...(urn === undefined ? {} : { urn }) }),
    );
    return found;
}

function violations(policy: ResourceValidationPolicy | StackValidationPolicy, resources: Candidate[]): string[] {
    return "validateStack" in policy
        ? stackViolations(policy, resources).map(({ message }) => message)
        : resourceViolations(policy, resources);
}

async function registeredStack(config: Record<string, string>): Promise<Candidate[]> {
    resetRegistrations();
    return (await settle(buildStack(config))).map(fromRegistered);
}

/** Whether `resource` is of `type` and, for IAM policies, named `policyName` (the writer's unless told). */
const isPolicyOf = (resource: Candidate, type: string, policyName = WRITER_POLICY): boolean =>
    resource.type === type && (type !== RESOURCE_TYPES.iamPolicy || resource.props.name === policyName);

const ofType = (resources: Candidate[], type: string, policyName?: string): Candidate => {
    const found = resources.filter((resource) => isPolicyOf(resource, type, policyName));
    assert.equal(found.length, 1, `expected one ${type} ${policyName ?? ""}`);
    return found[0]!;
};

/** The stack's resources with the policy document of one resource replaced. */
function withPolicy(resources: Candidate[], type: string, document: unknown, policyName?: string): Candidate[] {
    return resources.map((resource) =>
        isPolicyOf(resource, type, policyName) ? { ...resource, props: { ...resource.props, policy: JSON.stringify(document) } } : resource,
    );
}

const parsedPolicy = (resources: Candidate[], type: string, policyName?: string) =>
    JSON.parse(ofType(resources, type, policyName).props.policy);

let defaults: Candidate[];
let withList: Candidate[];
let unprotected: Candidate[];

before(async () => {
    await installMocks();
    defaults = await registeredStack(STACK_CONFIG);
    withList = await registeredStack({ ...STACK_CONFIG, "nix-cache:allowAnonymousList": "true" });
    unprotected = await registeredStack({ ...STACK_CONFIG, "nix-cache:protect": "false" });
});

beforeEach(() => setConfig(STACK_CONFIG));

describe("the program's own resources", () => {
    test("pass every rule, with default settings and with anonymous listing", () => {
        for (const policy of NIX_CACHE_POLICIES) {
            assert.deepEqual(violations(policy, defaults), [], policy.name);
            assert.deepEqual(violations(policy, withList), [], policy.name);
        }
    });

    test("with retention expire or none (no collector) pass every rule", async () => {
        for (const retention of ["expire", "none"]) {
            const resources = await registeredStack({ ...STACK_CONFIG, "nix-cache:retention": retention });
            assert.deepEqual(
                resources.filter((resource) => resource.type === RESOURCE_TYPES.iamPolicy).map((resource) => resource.props.name),
                [WRITER_POLICY],
            );
            for (const policy of NIX_CACHE_POLICIES) {
                assert.deepEqual(violations(policy, resources), [], `${policy.name} with retention ${retention}`);
            }
        }
    });

    test("with protect=false pass every rule when the stack's config opts out", () => {
        setConfig({ ...STACK_CONFIG, "nix-cache:protect": "false" });
        for (const policy of NIX_CACHE_POLICIES) {
            assert.deepEqual(violations(policy, unprotected), [], policy.name);
        }
    });

    test("every rule is mandatory and named uniquely", () => {
        assert.equal(new Set(NIX_CACHE_POLICIES.map((policy) => policy.name)).size, NIX_CACHE_POLICIES.length);
        assert.ok(NIX_CACHE_POLICIES.every((policy) => policy.enforcementLevel === "mandatory"));
    });
});

describe("bucket-policy-no-anonymous-write", () => {
    const widened = (change: (statements: Record<string, any>[]) => void) => {
        const document = parsedPolicy(defaults, RESOURCE_TYPES.bucketPolicy);
        change(document.Statement);
        return violations(noAnonymousWrites, withPolicy(defaults, RESOURCE_TYPES.bucketPolicy, document));
    };
    /** A further grant to everyone, as `mc anonymous set` would add it. */
    const anonymousGrant = (action: string, resource: string) => ({
        Effect: "Allow",
        Principal: { AWS: ["*"] },
        Action: [action],
        Resource: [resource],
    });

    // Object actions beyond download, granted on the objects the policy already covers.
    const objectActions = ["s3:PutObject", "s3:DeleteObject", "s3:PutObjectAcl", "s3:DeleteObjectVersion", "s3:GetObjectVersion", "s3:GetObjectAcl"];
    for (const action of objectActions) {
        test(`fails when anonymous clients get ${action} on objects`, () => {
            const found = widened((statements) => statements[0]!.Action.push(action));
            assert.equal(found.length, 1, found.join("\n"));
            assert.ok(found[0]!.includes(`grants anonymous clients '${action}', which is not on the allowlist`), found[0]);
        });
    }

    // Bucket actions beyond listing, granted on the bucket.
    const bucketActions = [
        "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy",
        "s3:GetBucketPolicy",
        "s3:PutLifecycleConfiguration",
        "s3:ForceDeleteBucket",
        "s3:ListBucketMultipartUploads",
        "s3:ListAllMyBuckets",
    ];
    for (const action of bucketActions) {
        test(`fails when anonymous clients get ${action} on the bucket`, () => {
            const found = widened((statements) => statements.push(anonymousGrant(action, `arn:aws:s3:::${BUCKET}`)));
            assert.equal(found.length, 1, found.join("\n"));
            assert.ok(found[0]!.includes(`grants anonymous clients '${action}', which is not on the allowlist`), found[0]);
        });
    }

    for (const action of ["s3:*", "*", "s3:Put*", "s3:*Object", "s3:Get*", "s3:List*", "s3:GetObjec?"]) {
        test(`fails on the wildcard action ${action}`, () => {
            const found = widened((statements) => statements[0]!.Action.push(action));
            assert.equal(found.length, 1, found.join("\n"));
            assert.ok(found[0]!.includes(`grants anonymous clients the wildcard action '${action}'`), found[0]);
        });
    }

    test("fails on listing granted on objects and on download granted on the bucket", () => {
        const found = widened((statements) => {
            statements[0]!.Action.push("s3:ListBucket");
            statements.push(anonymousGrant("s3:GetObject", `arn:aws:s3:::${BUCKET}`));
        });
        assert.equal(found.length, 2, found.join("\n"));
        assert.match(found[0]!, /'s3:ListBucket' on 'arn:aws:s3:::nix-cache\/\*', but only on the bucket itself/);
        assert.match(found[1]!, /'s3:GetObject' on 'arn:aws:s3:::nix-cache', but only on the bucket's objects/);
    });

    test("fails on a resource outside the policy's bucket", () => {
        const found = widened((statements) => statements.push(anonymousGrant("s3:GetObject", "arn:aws:s3:::other/*")));
        assert.equal(found.length, 1, found.join("\n"));
        assert.match(found[0]!, /reaches beyond this stack's bucket\(s\) \(nix-cache\): 'arn:aws:s3:::other\/\*'/);
    });

    test("fails on NotAction and NotResource, which grant everything else", () => {
        const found = widened((statements) => {
            statements[0]!.NotAction = ["s3:DeleteObject"];
            statements[0]!.NotResource = ["arn:aws:s3:::other/*"];
            delete statements[0]!.Action;
            delete statements[0]!.Resource;
        });
        assert.equal(found.length, 2, found.join("\n"));
        assert.match(found[0]!, /every action but those in NotAction/);
        assert.match(found[1]!, /every resource but those in NotResource/);
    });

    test("fails whatever the Principal or a non-Deny Effect says: MinIO applies bucket policies to anonymous requests", () => {
        const found = widened((statements) => {
            statements[0]!.Principal = { AWS: ["arn:aws:iam::000000000000:user/someone"] };
            statements[0]!.Effect = "allow";
            statements[0]!.Action = ["s3:PutObject"];
        });
        assert.equal(found.length, 1, found.join("\n"));
    });

    test("fails on a document it cannot read", () => {
        const resources = defaults.map((resource) =>
            resource.type === RESOURCE_TYPES.bucketPolicy
                ? { ...resource, props: { ...resource.props, policy: "{" } }
                : resource,
        );
        assert.match(violations(noAnonymousWrites, resources).join("\n"), /cannot be checked: its policy is not valid JSON/);
    });

    test("passes explicit denials, listing on the bucket and download of part of the bucket", () => {
        const found = widened((statements) => {
            statements.push({ Effect: "Deny", Principal: { AWS: ["*"] }, Action: ["s3:*"], Resource: ["*"] });
            statements.push(anonymousGrant("S3:LISTBUCKET", `arn:aws:s3:::${BUCKET}`));
            statements.push(anonymousGrant("s3:GetObject", `arn:aws:s3:::${BUCKET}/nar/*`));
        });
        assert.deepEqual(found, []);
    });
});

describe("iam-policy-least-privilege: the writer's policy", () => {
    const widened = (change: (statements: Record<string, any>[]) => void) => {
        const document = parsedPolicy(defaults, RESOURCE_TYPES.iamPolicy);
        change(document.Statement);
        return stackViolations(iamPoliciesLeastPrivilege, withPolicy(defaults, RESOURCE_TYPES.iamPolicy, document));
    };

    test("reports violations against the IAM policy's URN; uploads and deletions together are a problem of their own", () => {
        const found = widened((statements) => statements[1]!.Action.push("s3:DeleteObject"));
        const urn = ofType(defaults, RESOURCE_TYPES.iamPolicy).urn;
        assert.deepEqual(
            found.map(({ urn }) => urn),
            [urn, urn],
        );
        assert.equal(
            found[0]!.message,
            "IAM policy grants the writer's s3:ListBucketMultipartUploads, s3:PutObject, s3:AbortMultipartUpload, " +
                "s3:ListMultipartUploadParts together with the collector's s3:DeleteObject: a policy is either the writer's " +
                "(uploads, never deletes) or the collector's (deletes, never uploads); split it in two",
        );
        assert.match(found[1]!.message, /statement 'WriterObjects' grants the writer 's3:DeleteObject', which is not on the allowlist/);
    });

    // Action names here hold no regular-expression syntax but the wildcards, escaped below.
    const notListed = (action: string) => new RegExp(`grants the writer '${action}', which is not on the allowlist`);
    const wildcard = (action: string) => new RegExp(`grants the writer the wildcard action '${action.replace(/[*?]/g, "\\$&")}'`);
    const cases: { name: string; change: (statements: Record<string, any>[]) => void; expected: RegExp }[] = [
        // Actions that are neither deletion nor admin, yet let the writer destroy or open the cache.
        {
            name: "s3:PutLifecycleConfiguration (an expiry rule deletes everything)",
            change: (s) => s[0]!.Action.push("s3:PutLifecycleConfiguration"),
            expected: notListed("s3:PutLifecycleConfiguration"),
        },
        {
            name: "s3:PutBucketPolicy (makes the bucket world-writable)",
            change: (s) => s[0]!.Action.push("s3:PutBucketPolicy"),
            expected: notListed("s3:PutBucketPolicy"),
        },
        { name: "s3:ForceDeleteBucket", change: (s) => s[0]!.Action.push("s3:ForceDeleteBucket"), expected: notListed("s3:ForceDeleteBucket") },
        { name: "s3:Put*", change: (s) => s[1]!.Action.push("s3:Put*"), expected: wildcard("s3:Put*") },
        { name: "s3:PutObjec? (a wildcard matching only allowed actions)", change: (s) => s[1]!.Action.push("s3:PutObjec?"), expected: wildcard("s3:PutObjec?") },
        { name: "s3:PutObjectAcl", change: (s) => s[1]!.Action.push("s3:PutObjectAcl"), expected: notListed("s3:PutObjectAcl") },
        { name: "s3:DeleteBucket", change: (s) => s[0]!.Action.push("s3:DeleteBucket"), expected: notListed("s3:DeleteBucket") },
        { name: "s3:*", change: (s) => (s[1]!.Action = ["s3:*"]), expected: wildcard("s3:*") },
        { name: "s3:*Object", change: (s) => s[1]!.Action.push("s3:*Object"), expected: wildcard("s3:*Object") },
        { name: "admin:*", change: (s) => s[0]!.Action.push("admin:*"), expected: wildcard("admin:*") },
        { name: "admin:ServerInfo", change: (s) => s[0]!.Action.push("admin:ServerInfo"), expected: notListed("admin:ServerInfo") },
        { name: "action *", change: (s) => (s[0]!.Action = ["*"]), expected: wildcard("*") },
        { name: "NotAction", change: (s) => (s[0]!.NotAction = ["s3:GetObject"]), expected: /every action but/ },
        {
            name: "an object action on the bucket",
            change: (s) => s[0]!.Action.push("s3:PutObject"),
            expected: /'s3:PutObject' on 'arn:aws:s3:::nix-cache', but only on the bucket's objects/,
        },
        {
            name: "a bucket action on the objects",
            change: (s) => s[1]!.Action.push("s3:ListBucket"),
            expected: /'s3:ListBucket' on 'arn:aws:s3:::nix-cache\/\*', but only on the bucket itself/,
        },
        {
            name: "a statement whose Effect is not Deny",
            change: (s) => s.push({ Effect: "allow", Action: ["s3:DeleteObject"], Resource: [`arn:aws:s3:::${BUCKET}/*`] }),
            expected: /statement #4 grants the writer 's3:DeleteObject'/,
        },
        {
            name: "a writer policy without the Deny that keeps nix-cache-info",
            change: (s) => s.splice(2, 1),
            expected: /lets the writer upload to 'nix-cache' without a Deny of s3:PutObject on 'arn:aws:s3:::nix-cache\/nix-cache-info'/,
        },
        {
            name: "a Deny that keeps another object than nix-cache-info",
            change: (s) => (s[2]!.Resource = ["arn:aws:s3:::nix-cache/nix-cache-info.narinfo"]),
            expected: /without a Deny of s3:PutObject/,
        },
        {
            name: "a Deny of nix-cache-info turned into an Allow",
            change: (s) => (s[2]!.Effect = "Allow"),
            expected: /without a Deny of s3:PutObject/,
        },
        {
            name: "a Deny of nix-cache-info written with NotResource (RGW ignores such Denies)",
            change: (s) => {
                delete s[2]!.Resource;
                s[2]!.NotResource = ["arn:aws:s3:::nix-cache/nar/*"];
            },
            expected: /without a Deny of s3:PutObject/,
        },
        {
            name: "an upload grant naming nix-cache-info itself, without the Deny",
            change: (s) => {
                s[1]!.Resource = [`arn:aws:s3:::${BUCKET}/nix-cache-info`];
                s.splice(2, 1);
            },
            expected: /lets the writer upload to 'nix-cache' without a Deny of s3:PutObject on 'arn:aws:s3:::nix-cache\/nix-cache-info'/,
        },
        {
            name: "an upload grant on a pattern that matches nix-cache-info (nix-cache-*), without the Deny",
            change: (s) => {
                s.push({ Effect: "Allow", Action: ["s3:PutObject"], Resource: [`arn:aws:s3:::${BUCKET}/nix-cache-*`] });
                s.splice(2, 1);
            },
            expected: /lets the writer upload to 'nix-cache' without a Deny of s3:PutObject/,
        },
        {
            name: "a bucket-name prefix wildcard",
            change: (s) => (s[1]!.Resource = [`arn:aws:s3:::${BUCKET}*`]),
            expected: /reaches beyond this stack's bucket\(s\) \(nix-cache\): 'arn:aws:s3:::nix-cache\*'/,
        },
        {
            name: "a bucket whose name starts with this one",
            change: (s) => s[1]!.Resource.push(`arn:aws:s3:::${BUCKET}x/*`),
            expected: /reaches beyond/,
        },
        { name: "another bucket", change: (s) => (s[0]!.Resource = ["arn:aws:s3:::other"]), expected: /reaches beyond/ },
        { name: "every bucket", change: (s) => (s[1]!.Resource = ["arn:aws:s3:::*"]), expected: /reaches beyond/ },
        { name: "Resource *", change: (s) => (s[1]!.Resource = "*"), expected: /reaches beyond .*'\*'/ },
        { name: "NotResource", change: (s) => (s[1]!.NotResource = ["arn:aws:s3:::other"]), expected: /every resource but/ },
    ];
    for (const { name, change, expected } of cases) {
        test(`fails on ${name}`, () => {
            assert.match(widened(change).map(({ message }) => message).join("\n"), expected);
        });
    }

    test("fails when the stack declares no bucket at all", () => {
        const found = stackViolations(
            iamPoliciesLeastPrivilege,
            defaults.filter((resource) => resource.type !== RESOURCE_TYPES.bucket),
        );
        assert.match(found[0]!.message, /beyond this stack's bucket\(s\) \(none\)/);
    });

    test("passes denials, action names in any case, and objects under a prefix of the bucket", () => {
        assert.deepEqual(
            widened((statements) => {
                statements.push({ Effect: "Deny", Action: ["s3:Delete*", "admin:*"], Resource: ["*"] });
                statements.push({ Effect: "Allow", Action: ["S3:PUTOBJECT"], Resource: [`arn:aws:s3:::${BUCKET}/nar/*`] });
            }),
            [],
        );
    });

    test("passes an upload grant that reaches nothing the Deny keeps, without the Deny", () => {
        assert.deepEqual(
            widened((statements) => {
                statements[1]!.Resource = [`arn:aws:s3:::${BUCKET}/nar/*`, `arn:aws:s3:::${BUCKET}/?????.narinfo`];
                statements.splice(2, 1);
            }),
            [],
        );
    });
});

describe("iam-policy-least-privilege: the collector's policy", () => {
    const widened = (change: (statements: Record<string, any>[]) => void) => {
        const document = parsedPolicy(defaults, RESOURCE_TYPES.iamPolicy, COLLECTOR_POLICY);
        change(document.Statement);
        return stackViolations(iamPoliciesLeastPrivilege, withPolicy(defaults, RESOURCE_TYPES.iamPolicy, document, COLLECTOR_POLICY));
    };
    const notListed = (action: string) => new RegExp(`grants the collector '${action}', which is not on the allowlist`);
    const noDeny = (key: string) =>
        `IAM policy lets the collector delete in 'nix-cache' without a Deny of s3:DeleteObject on 'arn:aws:s3:::nix-cache/${key}': ` +
        "the collector could delete nix-cache-info (every client then refuses the cache) or the pins that keep paths alive";
    const MIX_UPLOAD =
        "IAM policy grants the writer's s3:PutObject together with the collector's s3:DeleteObject: a policy is either the " +
        "writer's (uploads, never deletes) or the collector's (deletes, never uploads); split it in two";
    const messages = (found: { message: string }[]) => found.map(({ message }) => message);

    test("reports violations against the collector policy's URN", () => {
        const found = widened((statements) => statements[1]!.Action.push("s3:PutObject"));
        const urn = ofType(defaults, RESOURCE_TYPES.iamPolicy, COLLECTOR_POLICY).urn;
        assert.deepEqual(
            found.map(({ urn }) => urn),
            [urn, urn],
        );
        assert.equal(found[0]!.message, MIX_UPLOAD);
        assert.match(found[1]!.message, /statement 'CollectorObjects' grants the collector 's3:PutObject', which is not on the allowlist/);
    });

    test("fails on an upload grant of pins only (a collector that could write its own roots)", () => {
        const found = widened((s) => s.push({ Effect: "Allow", Action: ["s3:PutObject"], Resource: [`arn:aws:s3:::${BUCKET}/pins/*`] }));
        // Then one problem of the closer fit (here a tie: writer and collector would each lose one grant).
        assert.equal(found.length, 2, messages(found).join("\n"));
        assert.equal(messages(found)[0], MIX_UPLOAD);
    });

    test("fails without the Deny, once for nix-cache-info and once for the pins", () => {
        assert.deepEqual(messages(widened((s) => s.splice(2, 1))), [noDeny("nix-cache-info"), noDeny("pins/*")]);
    });

    test("fails on a Deny that keeps nix-cache-info but not the pins", () => {
        assert.deepEqual(messages(widened((s) => (s[2]!.Resource = [`arn:aws:s3:::${BUCKET}/nix-cache-info`]))), [noDeny("pins/*")]);
    });

    test("fails on a Deny that names one pin instead of every pin", () => {
        const found = widened((s) => (s[2]!.Resource = [`arn:aws:s3:::${BUCKET}/nix-cache-info`, `arn:aws:s3:::${BUCKET}/pins/release`]));
        assert.deepEqual(messages(found), [noDeny("pins/*")]);
    });

    test("fails on a Deny turned into an Allow, or written with NotResource (RGW ignores such Denies)", () => {
        assert.deepEqual(messages(widened((s) => (s[2]!.Effect = "Allow"))), [noDeny("nix-cache-info"), noDeny("pins/*")]);
        const notResource = widened((s) => {
            delete s[2]!.Resource;
            s[2]!.NotResource = [`arn:aws:s3:::${BUCKET}/nar/*`];
        });
        assert.deepEqual(messages(notResource), [noDeny("nix-cache-info"), noDeny("pins/*")]);
    });

    test("a deletion grant that reaches only some protected objects needs the Deny for those only", () => {
        const onlyPins = widened((s) => {
            s[1]!.Resource = [`arn:aws:s3:::${BUCKET}/pin?/*`];
            s.splice(2, 1);
        });
        assert.deepEqual(messages(onlyPins), [noDeny("pins/*")]);
        const onlyCacheInfo = widened((s) => {
            s[1]!.Resource = [`arn:aws:s3:::${BUCKET}/nix-cache-*`];
            s.splice(2, 1);
        });
        assert.deepEqual(messages(onlyCacheInfo), [noDeny("nix-cache-info")]);
        // `*.narinfo` would reach pins/x.narinfo: only patterns that cannot name a pin pass.
        const neither = widened((s) => {
            s[1]!.Resource = [`arn:aws:s3:::${BUCKET}/nar/*`, `arn:aws:s3:::${BUCKET}/0c8n2p6z3v1q9x8f7d5b4a3s2w1e0r9t.narinfo`];
            s.splice(2, 1);
        });
        assert.deepEqual(messages(neither), []);
        const narinfos = widened((s) => {
            s[1]!.Resource = [`arn:aws:s3:::${BUCKET}/*.narinfo`];
            s.splice(2, 1);
        });
        assert.deepEqual(messages(narinfos), [noDeny("pins/*")]);
    });

    const cases: { name: string; change: (statements: Record<string, any>[]) => void; expected: RegExp }[] = [
        { name: "s3:DeleteObjectVersion", change: (s) => s[1]!.Action.push("s3:DeleteObjectVersion"), expected: notListed("s3:DeleteObjectVersion") },
        { name: "s3:PutObjectAcl", change: (s) => s[1]!.Action.push("s3:PutObjectAcl"), expected: notListed("s3:PutObjectAcl") },
        {
            name: "s3:PutLifecycleConfiguration (an expiry rule deletes everything)",
            change: (s) => s[0]!.Action.push("s3:PutLifecycleConfiguration"),
            expected: notListed("s3:PutLifecycleConfiguration"),
        },
        { name: "s3:DeleteBucket", change: (s) => s[0]!.Action.push("s3:DeleteBucket"), expected: notListed("s3:DeleteBucket") },
        {
            name: "s3:Delete*",
            change: (s) => s[1]!.Action.push("s3:Delete*"),
            expected: /grants the collector the wildcard action 's3:Delete\*'/,
        },
        {
            name: "the writer's multipart listing (a grant only the writer may have)",
            change: (s) => s[0]!.Action.push("s3:ListBucketMultipartUploads"),
            expected: /grants the writer's s3:ListBucketMultipartUploads together with the collector's s3:DeleteObject/,
        },
        {
            name: "a deletion on the bucket itself",
            change: (s) => s[0]!.Action.push("s3:DeleteObject"),
            expected: /'s3:DeleteObject' on 'arn:aws:s3:::nix-cache', but only on the bucket's objects/,
        },
        {
            name: "a bucket-name prefix wildcard",
            change: (s) => (s[1]!.Resource = [`arn:aws:s3:::${BUCKET}*/*`]),
            expected: /reaches beyond this stack's bucket\(s\) \(nix-cache\): 'arn:aws:s3:::nix-cache\*\/\*'/,
        },
        { name: "every bucket", change: (s) => (s[1]!.Resource = ["arn:aws:s3:::*"]), expected: /reaches beyond/ },
        { name: "admin:*", change: (s) => s[0]!.Action.push("admin:*"), expected: /grants the collector the wildcard action 'admin:\*'/ },
        { name: "NotAction", change: (s) => (s[1]!.NotAction = ["s3:PutObject"]), expected: /every action but/ },
    ];
    for (const { name, change, expected } of cases) {
        test(`fails on ${name}`, () => {
            assert.match(messages(widened(change)).join("\n"), expected);
        });
    }

    test("passes the registered collector policy and further denials", () => {
        assert.deepEqual(messages(widened(() => undefined)), []);
        assert.deepEqual(
            messages(widened((s) => s.push({ Effect: "Deny", Action: ["s3:PutObject", "admin:*"], Resource: ["*"] }))),
            [],
        );
    });
});

describe("iam-policy-no-principal", () => {
    const withStatementChange = (change: (statement: Record<string, unknown>) => void) => {
        const document = parsedPolicy(defaults, RESOURCE_TYPES.iamPolicy);
        change(document.Statement[1]);
        return violations(noPrincipalInIamPolicies, withPolicy(defaults, RESOURCE_TYPES.iamPolicy, document));
    };

    test("fails on a Principal, as in the how-to's nix-cache-write.json", () => {
        const found = withStatementChange((statement) => (statement.Principal = { AWS: ["*"] }));
        assert.equal(found.length, 1);
        assert.match(found[0]!, /statement 'WriterObjects' carries a Principal/);
    });

    test("fails on a NotPrincipal", () => {
        assert.equal(withStatementChange((statement) => (statement.NotPrincipal = "*")).length, 1);
    });

    test("passes the registered writer policy, and does not apply to bucket policies", () => {
        assert.deepEqual(withStatementChange(() => undefined), []);
        assert.ok(parsedPolicy(defaults, RESOURCE_TYPES.bucketPolicy).Statement[0].Principal);
    });
});

describe("bucket-and-signing-key-protected", () => {
    const bucket = (protect: boolean) => candidate(RESOURCE_TYPES.bucket, "cache", { bucket: BUCKET }, protect);
    const key = (protect: boolean) => candidate(RESOURCE_TYPES.privateKey, "key", { algorithm: "ED25519" }, protect);

    test("fails on an unprotected bucket and an unprotected key while protection is on (the default)", () => {
        const found = violations(bucketAndKeyProtected, [bucket(false), key(false)]);
        assert.equal(found.length, 2);
        assert.match(found[0]!, /cache \(minio:index\/s3Bucket:S3Bucket\) is not protected/);
        assert.match(found[1]!, /key \(tls:index\/privateKey:PrivateKey\) is not protected.*nix-cache:protect false/);
    });

    test("fails on the program's unprotected resources when the config does not opt out", () => {
        setConfig({ ...STACK_CONFIG, "nix-cache:protect": "true" });
        assert.equal(violations(bucketAndKeyProtected, unprotected).length, 2);
    });

    test("passes unprotected resources once the stack opts out, and protected ones always", () => {
        setConfig({ ...STACK_CONFIG, "nix-cache:protect": "false" });
        assert.deepEqual(violations(bucketAndKeyProtected, [bucket(false), key(false)]), []);
        setConfig(STACK_CONFIG);
        assert.deepEqual(violations(bucketAndKeyProtected, [bucket(true), key(true)]), []);
    });

    test("ignores other resource types", () => {
        const object = candidate(RESOURCE_TYPES.object, "info", { objectName: "nix-cache-info" });
        assert.deepEqual(violations(bucketAndKeyProtected, [object]), []);
    });

    test("reads nix-cache:protect as the program's settings do", () => {
        for (const value of [undefined, "true", "false"]) {
            const config = value === undefined ? STACK_CONFIG : { ...STACK_CONFIG, "nix-cache:protect": value };
            setConfig(config);
            assert.equal(protectionRequired(), parseSettings(config).protect, `protect=${value}`);
        }
    });
});

describe("nix-cache-info-exists", () => {
    const cacheInfo = (resources: Candidate[]) => {
        const found = resources.filter(
            (resource) => resource.type === RESOURCE_TYPES.object && resource.props.objectName === "nix-cache-info",
        );
        assert.equal(found.length, 1);
        return found[0]!;
    };
    /** The program's resources with nix-cache-info's properties changed, or without it (undefined). */
    const replaceCacheInfo = (props: Record<string, any> | undefined) =>
        defaults.flatMap((resource) => {
            if (resource !== cacheInfo(defaults)) {
                return [resource];
            }
            return props ? [{ ...resource, props: { ...resource.props, ...props } }] : [];
        });

    test("fails when the object is missing, for the stack and for the bucket", () => {
        const found = stackViolations(cacheInfoExists, replaceCacheInfo(undefined));
        assert.deepEqual(
            found.map(({ urn }) => urn),
            [undefined, ofType(defaults, RESOURCE_TYPES.bucket).urn],
        );
        assert.match(found[0]!.message, /declares no 'nix-cache-info' object/);
        assert.match(found[1]!.message, /bucket 'nix-cache' has no 'nix-cache-info' object/);
    });

    test("fails when the object has another key", () => {
        assert.equal(stackViolations(cacheInfoExists, replaceCacheInfo({ objectName: "nix-cache-info.txt" })).length, 2);
    });

    test("fails when the object is in another bucket", () => {
        const found = stackViolations(cacheInfoExists, replaceCacheInfo({ bucketName: "other" }));
        assert.equal(found.length, 1);
        assert.match(found[0]!.message, /bucket 'nix-cache' has no/);
    });

    test("passes the program's object in the program's bucket", () => {
        assert.equal(cacheInfo(defaults).props.bucketName, BUCKET);
        assert.deepEqual(stackViolations(cacheInfoExists, defaults), []);
    });
});
