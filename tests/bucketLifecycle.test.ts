// The expiry rule's dynamic provider, against a loopback server that checks every request as MinIO
// would (method, path, SigV4 signature, Content-MD5, XML body) and answers as MinIO does.
// tests/bucketLifecycle.rgw.test.ts runs create, read, diff, update and delete against a real S3
// server (Ceph RGW 16.2), with other tools' rules, no configuration, no bucket, wrong credentials,
// the connection from config or environment, and TLS; those tests moved there. This stand-in
// (tests/fakeMinio.ts) is kept for what RGW cannot show:
// - a server that honours ObjectSizeGreaterThan (MinIO from RELEASE.2023-12-02T10-51-33Z): RGW 16.2
//   drops the filter, so only here is the rule created, updated, replaced under its ID, read back
//   without drift (also from answers with extra or default elements), written after a password
//   rotation, with minio:minioCacertFile beside Node's default CAs, and by the provider as Pulumi
//   serializes it;
// - MinIO's own error documents: MinIO 2021-02 to 2023-11 refusing the filter (InvalidRequest, then
//   InvalidArgument "unknown XML Tag"), and MinIO before 2021-02 dropping it into a <Filter><Prefix>
//   (RGW drops it too, into a rule-level <Prefix>: the RGW test shows that one);
// - the log of every request and its checks (which calls in which order, Content-MD5, the signature),
//   which a real server does not give: the request sequences and refusals asserted here.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import Module from "node:module";
import { join } from "node:path";
import { afterEach, describe, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
// The class Pulumi's Node.js dynamic provider host hands to `configure` (cmd/dynamic-provider/index.ts, getProvider).
import { Config } from "@pulumi/pulumi/cmd/dynamic-provider/config";
import { minioConnection, MINIO_CONFIG_KEYS } from "../lib/minioConnection";
import { bucketLifecycleProvider as provider, type BucketLifecycleState } from "../providers/bucketLifecycle";
import { FakeMinio, type MinioGeneration, type StoredRule } from "./fakeMinio";
import { NEEDS_OPENSSL, withLoopbackCertificate } from "./loopbackCertificate";

const BUCKET = "nix-cache";
const CREDENTIALS = { accessKey: "admin-user", secretKey: "admin-password-0123", region: "us-east-1" };
// `StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n` is 21 + 17 + 13 = 51 bytes.
const THRESHOLD = 51;

/** What the server must have stored for the stack's rule, as its XML parser reads the body. */
const storedRule = (days: number, threshold = THRESHOLD) => ({
    ID: "nix-cache-expiry",
    Status: "Enabled",
    Filter: { ObjectSizeGreaterThan: String(threshold) },
    Expiration: { Days: String(days) },
});

/** The rule as the provider's inputs carry it. */
const rule = (days: number, threshold = THRESHOLD) => ({
    ID: "nix-cache-expiry",
    Status: "Enabled" as const,
    Filter: { ObjectSizeGreaterThan: threshold },
    Expiration: { Days: days },
});

/** Rules someone else added: an upload cleanup, and an expiry whose values look like numbers but are text. */
const ABORT_UPLOADS: StoredRule = {
    ID: "abort-incomplete-uploads",
    Status: "Enabled",
    Filter: { Prefix: "" },
    AbortIncompleteMultipartUpload: { DaysAfterInitiation: "7" },
};
const TAGGED_LOGS: StoredRule = {
    ID: "007",
    Status: "Disabled",
    Filter: { And: { Prefix: "log/0123", Tag: { Key: "keep", Value: "007" } } },
    Expiration: { Days: "90" },
};

const servers: FakeMinio[] = [];
afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.stop()));
});

async function startServer(generation: MinioGeneration = "current", tls?: { key: string; cert: string }): Promise<FakeMinio> {
    const server = new FakeMinio(BUCKET, { ...CREDENTIALS }, generation, tls);
    servers.push(server);
    await server.start();
    return server;
}

/** The stack configuration Pulumi passes for a server on loopback (namespaced keys, as the engine sends them). */
function stackConfig(server: FakeMinio, overrides: Record<string, string> = {}): Record<string, string> {
    return {
        "minio:minioServer": `127.0.0.1:${server.port}`,
        "minio:minioUser": CREDENTIALS.accessKey,
        "minio:minioPassword": CREDENTIALS.secretKey,
        "nix-cache:bucket": BUCKET, // the stack's own settings come along; the provider ignores them
        ...overrides,
    };
}

/** Configures the provider as the dynamic provider host does at the start of a run. */
async function configure(target: typeof provider, config: Record<string, string>): Promise<void> {
    await target.configure!({ config: new Config(config, "nix-cache") });
}

function stateFor(overrides: Partial<BucketLifecycleState> = {}): BucketLifecycleState {
    return { bucket: BUCKET, rule: rule(30), ...overrides };
}

const calls = (server: FakeMinio) => server.requests.map(({ method, url, status }) => `${method} ${url} ${status}`);
const LIFECYCLE = `/${BUCKET}?lifecycle`;

describe("the bucket lifecycle provider against a MinIO-like server", () => {
    test("create reads the configuration, writes the rule, signed and checksummed, and reads it back", async () => {
        const server = await startServer();
        await configure(provider, stackConfig(server));
        const inputs = stateFor();
        const result = await provider.create(inputs);

        assert.equal(result.id, BUCKET);
        assert.deepEqual(result.outs, inputs);
        assert.deepEqual(server.stored, [storedRule(30)]);
        assert.deepEqual(calls(server), [`GET ${LIFECYCLE} 404`, `PUT ${LIFECYCLE} 200`, `GET ${LIFECYCLE} 200`]);
        assert.deepEqual(server.refusals(), []);
    });

    test("other rules survive create, update and delete unchanged (issue 11, item 7)", async () => {
        // S3 has one call that replaces the whole configuration (PutBucketLifecycleConfiguration); MinIO's
        // `mc ilm rule add` reads it, adds the rule and writes all back, and so must the provider.
        const server = await startServer();
        server.stored = [ABORT_UPLOADS, TAGGED_LOGS];
        await configure(provider, stackConfig(server));

        await provider.create(stateFor());
        assert.deepEqual(server.stored, [ABORT_UPLOADS, TAGGED_LOGS, storedRule(30)]);
        await provider.update!(BUCKET, stateFor(), stateFor({ rule: rule(14, 56) }));
        assert.deepEqual(server.stored, [ABORT_UPLOADS, TAGGED_LOGS, storedRule(14, 56)]);
        await provider.delete!(BUCKET, stateFor({ rule: rule(14, 56) }));
        assert.deepEqual(server.stored, [ABORT_UPLOADS, TAGGED_LOGS]);
        assert.ok(!calls(server).some((call) => call.startsWith("DELETE")), "the configuration is never deleted");
        assert.deepEqual(server.refusals(), []);
    });

    test("a rule with the stack's ID that is already there is replaced, not added twice", async () => {
        const server = await startServer(); // refuses two rules with one ID, as MinIO does
        server.stored = [storedRule(7, 99), ABORT_UPLOADS];
        await configure(provider, stackConfig(server));
        await provider.create(stateFor());
        assert.deepEqual(server.stored, [ABORT_UPLOADS, storedRule(30)]);
        assert.deepEqual(server.refusals(), []);
    });

    test("delete removes the whole configuration only when the stack's rule was the last one", async () => {
        const server = await startServer();
        await configure(provider, stackConfig(server));
        await provider.create(stateFor());
        await provider.delete!(BUCKET, stateFor());
        assert.equal(server.stored, undefined);
        assert.deepEqual(calls(server).slice(3), [`GET ${LIFECYCLE} 200`, `DELETE ${LIFECYCLE} 204`]);
        await provider.delete!(BUCKET, stateFor());
        assert.deepEqual(calls(server).slice(5), [`GET ${LIFECYCLE} 404`], "nothing left to delete");
    });

    test("read reports the live rule; drift shows in diff and update restores the rule", async () => {
        const server = await startServer();
        server.stored = [ABORT_UPLOADS];
        await configure(provider, stackConfig(server));
        const inputs = stateFor();
        await provider.create(inputs);
        assert.deepEqual(await provider.read!(BUCKET, inputs), { id: BUCKET, props: inputs });

        server.stored = [storedRule(7), ABORT_UPLOADS]; // someone shortened the expiry by hand
        const refreshed = await provider.read!(BUCKET, inputs);
        assert.deepEqual(refreshed.props?.rule, storedRule(7));
        assert.deepEqual(await provider.diff!(BUCKET, refreshed.props!, inputs), {
            changes: true,
            replaces: [],
            deleteBeforeReplace: false,
        });

        assert.deepEqual(await provider.update!(BUCKET, refreshed.props!, inputs), { outs: inputs });
        assert.deepEqual(server.stored, [ABORT_UPLOADS, storedRule(30)]);
        assert.deepEqual(server.refusals(), []);
    });

    test("read and diff look at the stack's rule only: other rules changing is no drift", async () => {
        const server = await startServer();
        await configure(provider, stackConfig(server));
        const inputs = stateFor();
        await provider.create(inputs);
        server.stored = [TAGGED_LOGS, ...server.stored!, ABORT_UPLOADS];
        assert.deepEqual(await provider.read!(BUCKET, inputs), { id: BUCKET, props: inputs });
        server.stored = [TAGGED_LOGS]; // the stack's rule removed by hand, another one kept
        assert.deepEqual(await provider.read!(BUCKET, inputs), {}, "gone: the next `pulumi up` writes it again");
    });

    test("a server that answers with extra and default elements keeps the rule, and shows no drift", async () => {
        const server = await startServer();
        server.decoratesAnswers = true;
        await configure(provider, stackConfig(server));
        const inputs = stateFor();
        assert.deepEqual(await provider.create(inputs), { id: BUCKET, outs: inputs });
        assert.deepEqual(server.stored, [storedRule(30)]);
        assert.deepEqual(calls(server), [`GET ${LIFECYCLE} 404`, `PUT ${LIFECYCLE} 200`, `GET ${LIFECYCLE} 200`], "no DELETE");

        assert.deepEqual(await provider.read!(BUCKET, inputs), { id: BUCKET, props: inputs });
        // State recorded from such an answer (as parsed from the XML) is no difference either.
        const decorated = { ...storedRule(30), Filter: { Prefix: "", ObjectSizeGreaterThan: "51" }, NoncurrentVersionExpiration: "" };
        assert.equal((await provider.diff!(BUCKET, stateFor({ rule: decorated as never }), inputs)).changes, false);

        server.stored = [storedRule(7)];
        const refreshed = await provider.read!(BUCKET, inputs);
        assert.equal((refreshed.props?.rule.Expiration as { Days: unknown }).Days, "7");
        assert.equal((await provider.diff!(BUCKET, refreshed.props!, inputs)).changes, true);
    });

    test("diff: nothing, a new bucket (replace), new days or threshold (update); it talks to nobody", async () => {
        const server = await startServer();
        await configure(provider, stackConfig(server));
        const olds = stateFor();
        const none = { changes: false, replaces: [], deleteBeforeReplace: false };
        const update = { changes: true, replaces: [], deleteBeforeReplace: false };
        assert.deepEqual(await provider.diff!(BUCKET, olds, stateFor()), none);
        assert.deepEqual(await provider.diff!(BUCKET, olds, stateFor({ bucket: "other-cache" })), {
            changes: true,
            replaces: ["bucket"],
            deleteBeforeReplace: false,
        });
        assert.deepEqual(await provider.diff!(BUCKET, olds, stateFor({ rule: rule(14) })), update);
        assert.deepEqual(await provider.diff!(BUCKET, olds, stateFor({ rule: rule(30, 56) })), update);
        // State written by the previous version (whole configuration and credentials): the next `up` rewrites the rule.
        const previousVersion = { bucket: BUCKET, configuration: { Rule: [rule(30)] }, accessKey: "a", secretKey: "b" };
        assert.deepEqual(await provider.diff!(BUCKET, previousVersion as never, olds), update);
        assert.deepEqual(server.requests, []);
    });

    for (const [generation, code] of [
        ["2023-06", "InvalidArgument"],
        ["2021-02", "InvalidRequest"],
    ] as const) {
        test(`a server that refuses the size filter (MinIO ${generation}: ${code}) gets a clear error, and keeps its configuration`, async () => {
            const server = await startServer(generation);
            const foreign = { ID: "keep-me", Status: "Enabled", Filter: { Prefix: "tmp/" }, Expiration: { Days: "1" } };
            server.stored = [foreign];
            await configure(provider, stackConfig(server));
            await assert.rejects(provider.create(stateFor()), (error: Error) => {
                assert.match(error.message, new RegExp(`${code}: unknown XML Tag`));
                assert.match(error.message, /MinIO releases before December 2023/);
                assert.match(error.message, /do not support the lifecycle filter ObjectSizeGreaterThan/);
                assert.match(error.message, /Upgrade MinIO/);
                assert.match(error.message, /set nix-cache:retention gc/);
                assert.match(error.message, /Nothing was changed/);
                return true;
            });
            assert.deepEqual(server.stored, [foreign]);
            assert.deepEqual(calls(server), [`GET ${LIFECYCLE} 200`, `PUT ${LIFECYCLE} 400`]);
        });
    }

    test("a server that silently drops the size filter (MinIO before 2021-02) gets the rule removed again", async () => {
        const server = await startServer("2020");
        await configure(provider, stackConfig(server));
        await assert.rejects(provider.create(stateFor()), (error: Error) => {
            assert.match(error.message, /accepted the expiry rule but stored \{"ID":"nix-cache-expiry","Status":"Enabled","Filter":\{"Prefix":""\}/);
            assert.match(error.message, /the rule was removed again/);
            assert.match(error.message, /MinIO releases before December 2023/);
            return true;
        });
        assert.equal(server.stored, undefined);
        assert.deepEqual(calls(server), [`GET ${LIFECYCLE} 404`, `PUT ${LIFECYCLE} 200`, `GET ${LIFECYCLE} 200`, `DELETE ${LIFECYCLE} 204`]);

        server.stored = [ABORT_UPLOADS];
        await assert.rejects(provider.create(stateFor()), /the rule was removed again/);
        assert.deepEqual(server.stored, [ABORT_UPLOADS], "the other rules are put back as they were");
    });

    test("missing credentials stop the provider before it sends anything", async () => {
        const server = await startServer();
        for (const missing of ["minio:minioPassword", "minio:minioUser", "minio:minioServer"]) {
            const { [missing]: _left, ...config } = stackConfig(server);
            await configure(provider, config);
            await assert.rejects(provider.create(stateFor()), /set minio:minioServer, minio:minioUser and minio:minioPassword/);
        }
        assert.deepEqual(server.requests, []);
    });

    test("after the admin password changes, refresh and destroy use the new one: no connection in state (issue 11, item 11)", async () => {
        const server = await startServer();
        await configure(provider, stackConfig(server));
        const { outs } = await provider.create(stateFor());
        assert.deepEqual(Object.keys(outs).sort(), ["bucket", "rule"], "nothing of the connection is recorded");
        assert.doesNotMatch(JSON.stringify(outs), /admin-password|admin-user|127\.0\.0\.1/);

        // The administrator rotates the password, and the stack's config follows (`pulumi config set --secret`).
        server.credentials = { ...CREDENTIALS, secretKey: "rotated-password-4567" };
        await configure(provider, stackConfig(server, { "minio:minioPassword": "rotated-password-4567" }));
        assert.deepEqual((await provider.read!(BUCKET, outs)).props, outs);
        await provider.delete!(BUCKET, outs);
        assert.equal(server.stored, undefined);
        assert.deepEqual(server.refusals(), []);
    });

    test("the provider looks up every minio:* key the connection is made of", () => {
        const everyKey = {
            "minio:minioServer": "[::1]:9443",
            "minio:minioSsl": "true",
            "minio:minioRegion": "eu-central-1",
            "minio:minioUser": "u",
            "minio:minioPassword": "p",
            "minio:minioCacertFile": "/ca.pem",
            "minio:minioInsecure": "true",
        };
        const lookedUp = Object.fromEntries(MINIO_CONFIG_KEYS.map((key) => [key, everyKey[key]]));
        assert.deepEqual(minioConnection(lookedUp, {}), minioConnection(everyKey, {}));
        assert.deepEqual(minioConnection(everyKey, {}).connection, {
            endPoint: "::1",
            port: 9443,
            useSSL: true,
            region: "eu-central-1",
            accessKey: "u",
            secretKey: "p",
            caCertFile: "/ca.pem",
            insecure: true,
        });
    });

    test(
        "with minio:minioCacertFile set, the CAs Node trusts by default stay trusted",
        NEEDS_OPENSSL,
        () =>
            // terraform-provider-minio adds the file to the system pool (minio/new_client.go,
            // configureCACert: x509.SystemCertPool, AppendCertsFromPEM), so a server with a publicly
            // trusted certificate still works. Here a CA the process trusts through Node's own
            // NODE_EXTRA_CA_CERTS stands for the public ones, and an unrelated CA is the file.
            withLoopbackCertificate((trustedCa) =>
                withLoopbackCertificate(async (privateCa) => {
                    const server = await startServer("current", { key: trustedCa.key, cert: trustedCa.cert });
                    const config = stackConfig(server, { "minio:minioSsl": "true", "minio:minioCacertFile": privateCa.certFile });
                    const createIn = (env: NodeJS.ProcessEnv) => createInOwnProcess(config, env);
                    assert.match((await createIn({})).stderr, /self.signed certificate/, "the server is not trusted without it");
                    const trusted = await createIn({ NODE_EXTRA_CA_CERTS: trustedCa.certFile });
                    assert.equal(trusted.status, 0, trusted.stderr);
                    assert.deepEqual(server.stored, [storedRule(30)]);
                }),
            ),
    );

    test("the provider as Pulumi serializes it runs on its own: configure, create, read, delete", async () => {
        const server = await startServer();
        const serialized = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: false });
        assert.equal(serialized.containsSecrets, false);
        // Load the text the way Pulumi's dynamic provider host does, resolving packages from the project.
        const filename = join(__dirname, "..", "serialized-provider.js");
        const loaded = new Module(filename) as Module & { _compile(code: string, filename: string): void };
        loaded.filename = filename;
        loaded.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(join(__dirname, ".."));
        loaded._compile(serialized.text, filename);
        const standalone = (loaded.exports as { handler: () => typeof provider }).handler();

        await configure(standalone, stackConfig(server));
        const state = stateFor();
        await standalone.create(state);
        assert.deepEqual(server.stored, [storedRule(30)]);
        assert.deepEqual((await standalone.read!(BUCKET, state)).props, state);
        await standalone.delete!(BUCKET, state);
        assert.equal(server.stored, undefined);
        assert.deepEqual(server.refusals(), []);
    });
});

/**
 * Configures the provider and creates the rule in a process of its own, whose environment Node
 * reads at start (NODE_EXTRA_CA_CERTS), against the server this process runs.
 */
function createInOwnProcess(config: Record<string, string>, env: NodeJS.ProcessEnv): Promise<{ status: number; stderr: string }> {
    const script = `
        const { Config } = require("@pulumi/pulumi/cmd/dynamic-provider/config");
        const { bucketLifecycleProvider: provider } = require("./providers/bucketLifecycle.ts");
        provider.configure({ config: new Config(JSON.parse(process.env.STACK_CONFIG), "nix-cache") })
            .then(() => provider.create({ bucket: ${JSON.stringify(BUCKET)}, rule: ${JSON.stringify(rule(30))} }))
            .catch((error) => { console.error(String(error)); process.exit(1); });`;
    const options = { cwd: join(__dirname, ".."), env: { PATH: process.env.PATH, STACK_CONFIG: JSON.stringify(config), ...env }, timeout: 30_000 };
    return new Promise((done) =>
        execFile(process.execPath, ["--import", "tsx", "--eval", script], options, (error, _stdout, stderr) =>
            done({ status: error === null ? 0 : Number(error.code ?? 1), stderr }),
        ),
    );
}
