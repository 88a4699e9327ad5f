// The policy pack as `pulumi preview --policy-pack policy` runs it, minus the CLI (which cannot be
// installed here): started the way the engine starts a Node.js pack (Pulumi's run-policy-pack
// resolved from policy/, working directory policy/, the stack's config in PULUMI_CONFIG), then
// spoken to over the analyzer gRPC protocol the engine uses. This proves the directory layout,
// module resolution from the root node_modules, the TypeScript check the runner does, and the
// config opt-out, not only the rules.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { AnalyzerClient } from "@pulumi/pulumi/proto/analyzer_grpc_pb";
import {
    AnalyzeRequest,
    AnalyzerResource,
    AnalyzerResourceOptions,
    AnalyzeStackRequest,
    EnforcementLevel,
    type AnalyzeResponse,
    type AnalyzerInfo,
} from "@pulumi/pulumi/proto/analyzer_pb";
import { NIX_CACHE_POLICIES, RESOURCE_TYPES } from "../policy/rules";
import { buildStack } from "../stack";
import { STACK_CONFIG } from "./accessEvaluation";
import { installMocks, resetRegistrations, settle, type Registered } from "./harness";

const POLICY_DIR = join(__dirname, "..", "policy");
// The runner type-checks the pack with ts-node before serving; the machine may be busy.
const START_TIMEOUT_MS = 180_000;

interface RunningPack {
    process: ChildProcess;
    client: AnalyzerClient;
}

const running: ChildProcess[] = [];

/** Starts the pack as the engine's `pulumi-analyzer-policy` shim does and connects to it. */
async function startPack(stackConfig: Record<string, string>): Promise<RunningPack> {
    const runner = createRequire(join(POLICY_DIR, "package.json")).resolve("@pulumi/pulumi/cmd/run-policy-pack");
    // The first argument is the engine's address; the pack only dials it to log errors.
    const child = spawn(process.execPath, [runner, "127.0.0.1:1", "."], {
        cwd: POLICY_DIR,
        env: { ...process.env, PULUMI_CONFIG: JSON.stringify(stackConfig) },
        stdio: ["ignore", "pipe", "pipe"],
    });
    running.push(child);
    const port = await new Promise<number>((resolve, reject) => {
        let stdout = "";
        let stderr = "";
        const timer = setTimeout(() => reject(new Error(`pack did not start:\n${stderr}`)), START_TIMEOUT_MS);
        child.stderr!.on("data", (chunk) => (stderr += chunk));
        child.stdout!.on("data", (chunk) => {
            stdout += chunk;
            const line = /^(\d+)\n/.exec(stdout);
            if (line) {
                clearTimeout(timer);
                resolve(Number(line[1]));
            }
        });
        child.on("exit", (code) => {
            clearTimeout(timer);
            reject(new Error(`pack exited with ${code}:\n${stdout}\n${stderr}`));
        });
    });
    return { process: child, client: new AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) };
}

const call = <Request, Response>(
    method: (request: Request, callback: (error: grpc.ServiceError | null, response: Response) => void) => unknown,
    request: Request,
): Promise<Response> =>
    new Promise((resolve, reject) => method(request, (error, response) => (error ? reject(error) : resolve(response))));

/** Properties as the engine sends them: a protobuf Struct (undefined values dropped, as in JSON). */
const struct = (props: Record<string, unknown>) => Struct.fromJavaScript(JSON.parse(JSON.stringify(props)));

const options = (resource: Registered) =>
    new AnalyzerResourceOptions().setProtect(resource.protect).setParent(resource.parentUrn);

function analyzeRequest(resource: Registered): AnalyzeRequest {
    return new AnalyzeRequest()
        .setType(resource.type)
        .setName(resource.name)
        .setUrn(resource.urn)
        .setProperties(struct(resource.inputs))
        .setOptions(options(resource));
}

function stackRequest(resources: Registered[]): AnalyzeStackRequest {
    return new AnalyzeStackRequest().setResourcesList(
        resources.map((resource) =>
            new AnalyzerResource()
                .setType(resource.type)
                .setName(resource.name)
                .setUrn(resource.urn)
                .setParent(resource.parentUrn)
                .setProperties(struct(resource.inputs))
                .setOptions(options(resource)),
        ),
    );
}

const diagnosticsOf = (response: AnalyzeResponse) =>
    response.getDiagnosticsList().map((diagnostic) => ({
        policy: diagnostic.getPolicyname(),
        mandatory: diagnostic.getEnforcementlevel() === EnforcementLevel.MANDATORY,
        message: diagnostic.getMessage(),
    }));

async function analyzeAll(pack: RunningPack, resources: Registered[]) {
    const found = [];
    for (const resource of resources) {
        found.push(...diagnosticsOf(await call(pack.client.analyze.bind(pack.client), analyzeRequest(resource))));
    }
    found.push(...diagnosticsOf(await call(pack.client.analyzeStack.bind(pack.client), stackRequest(resources))));
    return found;
}

let protecting: RunningPack;
let optedOut: RunningPack;
let defaults: Registered[];
let unprotected: Registered[];

before(async () => {
    [protecting, optedOut] = await Promise.all([
        startPack(STACK_CONFIG),
        startPack({ ...STACK_CONFIG, "nix-cache:protect": "false" }),
    ]);
    await installMocks();
    resetRegistrations();
    defaults = await settle(buildStack(STACK_CONFIG));
    resetRegistrations();
    unprotected = await settle(buildStack({ ...STACK_CONFIG, "nix-cache:protect": "false" }));
});

after(() => {
    for (const pack of [protecting, optedOut]) {
        pack?.client.close();
    }
    for (const child of running) {
        child.kill();
    }
});

describe("the policy pack, served by Pulumi's policy runner", () => {
    test("announces every rule as mandatory", async () => {
        const info = await call<Empty, AnalyzerInfo>(protecting.client.getAnalyzerInfo.bind(protecting.client), new Empty());
        assert.equal(info.getName(), "nix-cache");
        assert.deepEqual(
            info
                .getPoliciesList()
                .map((policy) => [policy.getName(), policy.getEnforcementlevel() === EnforcementLevel.MANDATORY])
                .sort(),
            NIX_CACHE_POLICIES.map((policy) => [policy.name, true]).sort(),
        );
    });

    test("finds nothing wrong with the stack the program declares", async () => {
        assert.deepEqual(await analyzeAll(protecting, defaults), []);
    });

    test("blocks unprotected bucket and key unless the stack's config opts out", async () => {
        const found = await analyzeAll(protecting, unprotected);
        assert.deepEqual(
            found.map(({ policy, mandatory }) => [policy, mandatory]),
            [
                ["bucket-and-signing-key-protected", true],
                ["bucket-and-signing-key-protected", true],
            ],
        );
        assert.deepEqual(await analyzeAll(optedOut, unprotected), []);
    });

    test("blocks a bucket policy that lets anonymous clients upload", async () => {
        const widened = defaults.map((resource) => {
            if (resource.type !== RESOURCE_TYPES.bucketPolicy) {
                return resource;
            }
            const document = JSON.parse(resource.inputs.policy);
            document.Statement[0].Action.push("s3:PutObject");
            return { ...resource, inputs: { ...resource.inputs, policy: JSON.stringify(document) } };
        });
        const found = await analyzeAll(protecting, widened);
        assert.deepEqual(
            found.map(({ policy, mandatory }) => [policy, mandatory]),
            [["bucket-policy-no-anonymous-write", true]],
        );
        assert.match(found[0]!.message, /'s3:PutObject'/);
    });

    /** The program's resources with the IAM policy named `name` changed by `change`. */
    const withIamPolicy = (name: string, change: (statements: Record<string, any>[]) => void) =>
        defaults.map((resource) => {
            if (resource.type !== RESOURCE_TYPES.iamPolicy || resource.inputs.name !== name) {
                return resource;
            }
            const document = JSON.parse(resource.inputs.policy);
            change(document.Statement);
            return { ...resource, inputs: { ...resource.inputs, policy: JSON.stringify(document) } };
        });

    test("blocks an IAM policy that both uploads and deletes", async () => {
        const found = await analyzeAll(protecting, withIamPolicy("nix-cache-write", (s) => s[1].Action.push("s3:DeleteObject")));
        assert.deepEqual(
            found.map(({ policy, mandatory }) => [policy, mandatory]),
            [
                ["iam-policy-least-privilege", true],
                ["iam-policy-least-privilege", true],
            ],
        );
        assert.match(found[0]!.message, /together with the collector's s3:DeleteObject: .*split it in two/);
    });

    test("blocks a collector policy without its Deny of deleting nix-cache-info and the pins", async () => {
        const found = await analyzeAll(protecting, withIamPolicy("nix-cache-collect", (s) => s.splice(2, 1)));
        assert.deepEqual(
            found.map(({ policy, message }) => [policy, /without a Deny of s3:DeleteObject on '([^']+)'/.exec(message)?.[1]]),
            [
                ["iam-policy-least-privilege", "arn:aws:s3:::nix-cache/nix-cache-info"],
                ["iam-policy-least-privilege", "arn:aws:s3:::nix-cache/pins/*"],
            ],
        );
    });

    test("blocks a stack without nix-cache-info", async () => {
        const found = await analyzeAll(
            protecting,
            defaults.filter((resource) => resource.inputs.objectName !== "nix-cache-info"),
        );
        assert.deepEqual(
            [...new Set(found.map(({ policy }) => policy))],
            ["nix-cache-info-exists"],
        );
    });
});
