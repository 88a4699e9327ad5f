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
    actionPatternReaches,
    bucketAndKeyProtected,
    cacheInfoExists,
    NIX_CACHE_POLICIES,
    noAnonymousWrites,
    noPrincipalInIamPolicies,
    protectionRequired,
    RESOURCE_TYPES,
    writerPoliciesLeastPrivilege,
} from "../policy/rules";
import { buildStack } from "../stack";
import { STACK_CONFIG } from "./accessEvaluation";
import { installMocks, resetRegistrations, setConfig, settle, type Registered } from "./harness";

const BUCKET = "nix-cache";

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

const ofType = (resources: Candidate[], type: string): Candidate => {
    const found = resources.filter((resource) => resource.type === type);
    assert.equal(found.length, 1, `expected one ${type}`);
    return found[0]!;
};

/** The stack's resources with the policy document of one resource type replaced. */
function withPolicy(resources: Candidate[], type: string, document: unknown): Candidate[] {
    return resources.map((resource) =>
        resource.type === type ? { ...resource, props: { ...resource.props, policy: JSON.stringify(document) } } : resource,
    );
}

const parsedPolicy = (resources: Candidate[], type: string) => JSON.parse(ofType(resources, type).props.policy);

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
    const widened = (change: (statement: Record<string, unknown>) => void) => {
        const document = parsedPolicy(defaults, RESOURCE_TYPES.bucketPolicy);
        change(document.Statement[0]);
        return violations(noAnonymousWrites, withPolicy(defaults, RESOURCE_TYPES.bucketPolicy, document));
    };

    const writes = ["s3:PutObject", "s3:DeleteObject", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:*", "*", "s3:*Object"];
    for (const action of writes) {
        test(`fails when anonymous clients get ${action}`, () => {
            const found = widened((statement) => (statement.Action as string[]).push(action));
            assert.equal(found.length, 1);
            assert.ok(found[0]!.includes(`'${action}'`), found[0]);
            assert.match(found[0]!, /anonymous write, delete and policy changes are forbidden/);
        });
    }

    test("fails on NotAction, which grants everything else", () => {
        const found = widened((statement) => {
            statement.NotAction = ["s3:DeleteObject"];
            delete statement.Action;
        });
        assert.match(found.join("\n"), /every action but those in NotAction/);
    });

    test("fails whatever the Principal says: MinIO applies bucket policies to anonymous requests", () => {
        const found = widened((statement) => {
            statement.Principal = { AWS: ["arn:aws:iam::000000000000:user/someone"] };
            statement.Action = ["s3:PutObject"];
        });
        assert.equal(found.length, 1);
    });

    test("fails on a document it cannot read", () => {
        const resources = defaults.map((resource) =>
            resource.type === RESOURCE_TYPES.bucketPolicy
                ? { ...resource, props: { ...resource.props, policy: "{" } }
                : resource,
        );
        assert.match(violations(noAnonymousWrites, resources).join("\n"), /cannot be checked: its policy is not valid JSON/);
    });

    test("passes reads and explicit denials", () => {
        const found = widened((statement) => (statement.Action as string[]).push("s3:GetObjectVersion", "s3:ListBucket"));
        assert.deepEqual(found, []);
        const document = parsedPolicy(defaults, RESOURCE_TYPES.bucketPolicy);
        document.Statement.push({ Effect: "Deny", Principal: { AWS: ["*"] }, Action: ["s3:*"], Resource: ["*"] });
        assert.deepEqual(violations(noAnonymousWrites, withPolicy(defaults, RESOURCE_TYPES.bucketPolicy, document)), []);
    });
});

describe("writer-policy-least-privilege", () => {
    const widened = (change: (statements: Record<string, any>[]) => void) => {
        const document = parsedPolicy(defaults, RESOURCE_TYPES.iamPolicy);
        change(document.Statement);
        return stackViolations(writerPoliciesLeastPrivilege, withPolicy(defaults, RESOURCE_TYPES.iamPolicy, document));
    };

    test("reports violations against the IAM policy's URN", () => {
        const found = widened((statements) => statements[1]!.Action.push("s3:DeleteObject"));
        assert.deepEqual(
            found.map(({ urn }) => urn),
            [ofType(defaults, RESOURCE_TYPES.iamPolicy).urn],
        );
        assert.match(found[0]!.message, /grants deletion: 's3:DeleteObject'/);
    });

    const cases: { name: string; change: (statements: Record<string, any>[]) => void; expected: RegExp }[] = [
        { name: "s3:DeleteBucket", change: (s) => s[0]!.Action.push("s3:DeleteBucket"), expected: /grants deletion/ },
        { name: "s3:*", change: (s) => (s[1]!.Action = ["s3:*"]), expected: /grants deletion: 's3:\*'/ },
        { name: "s3:*Object", change: (s) => s[1]!.Action.push("s3:*Object"), expected: /grants deletion/ },
        { name: "admin:*", change: (s) => s[0]!.Action.push("admin:*"), expected: /grants MinIO admin actions: 'admin:\*'/ },
        { name: "admin:ServerInfo", change: (s) => s[0]!.Action.push("admin:ServerInfo"), expected: /MinIO admin/ },
        { name: "action *", change: (s) => (s[0]!.Action = ["*"]), expected: /grants MinIO admin actions: '\*'/ },
        { name: "NotAction", change: (s) => (s[0]!.NotAction = ["s3:GetObject"]), expected: /every action but/ },
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
            writerPoliciesLeastPrivilege,
            defaults.filter((resource) => resource.type !== RESOURCE_TYPES.bucket),
        );
        assert.match(found[0]!.message, /beyond this stack's bucket\(s\) \(none\)/);
    });

    test("passes denials and the bucket's own resources", () => {
        assert.deepEqual(
            widened((statements) =>
                statements.push({ Effect: "Deny", Action: ["s3:Delete*", "admin:*"], Resource: ["*"] }),
            ),
            [],
        );
    });

    test("an action pattern reaches a prefix exactly when some action with that prefix matches it", () => {
        const cases: [string, string, boolean][] = [
            ["s3:DeleteObject", "s3:Delete", true],
            ["s3:Delete*", "s3:Delete", true],
            ["s3:*Object", "s3:Delete", true],
            ["s3:D?lete*", "s3:Delete", true],
            ["S3:DELETEOBJECT", "s3:Delete", true],
            ["*", "admin:", true],
            ["a*", "admin:", true],
            ["ADMIN:ServerInfo", "admin:", true],
            ["s3:PutObject", "s3:Delete", false],
            ["s3:Get*", "s3:Delete", false],
            ["s3:Del", "s3:Delete", false],
            ["s3:*", "admin:", false],
            ["s3:List*", "admin:", false],
        ];
        for (const [pattern, prefix, expected] of cases) {
            assert.equal(actionPatternReaches(pattern, prefix), expected, `${pattern} vs ${prefix}`);
        }
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
