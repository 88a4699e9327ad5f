// The expiry rule's dynamic provider, against a loopback server that checks every request as
// MinIO would (method, path, SigV4 signature, Content-MD5, XML body) and answers as MinIO does.
import assert from "node:assert/strict";
import Module from "node:module";
import { join } from "node:path";
import { afterEach, describe, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { bucketLifecycleProvider as provider, type BucketLifecycleState } from "../providers/bucketLifecycle";
import { FakeMinio, type MinioGeneration } from "./fakeMinio";
import { NEEDS_OPENSSL, withLoopbackCertificate } from "./loopbackCertificate";

const BUCKET = "nix-cache";
const CREDENTIALS = { accessKey: "admin-user", secretKey: "admin-password-0123", region: "us-east-1" };
// `StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n` is 21 + 17 + 13 = 51 bytes.
const THRESHOLD = 51;

/** What the server must have stored for one rule, as its XML parser reads the body. */
const storedRule = (days: number, threshold = THRESHOLD) => ({
    ID: "nix-cache-expiry",
    Status: "Enabled",
    Filter: { ObjectSizeGreaterThan: String(threshold) },
    Expiration: { Days: String(days) },
});

/** The configuration as the provider writes it (and as the SDK parses it back). */
const configuration = (days: number, threshold = THRESHOLD) => ({
    Rule: [
        {
            ID: "nix-cache-expiry",
            Status: "Enabled" as const,
            Filter: { ObjectSizeGreaterThan: threshold },
            Expiration: { Days: days },
        },
    ],
});

const servers: FakeMinio[] = [];
afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.stop()));
});

async function startServer(generation: MinioGeneration = "current", tls?: { key: string; cert: string }): Promise<FakeMinio> {
    const server = new FakeMinio(BUCKET, CREDENTIALS, generation, tls);
    servers.push(server);
    await server.start();
    return server;
}

function stateFor(server: FakeMinio, overrides: Partial<BucketLifecycleState> = {}): BucketLifecycleState {
    return {
        bucket: BUCKET,
        configuration: configuration(30),
        endPoint: "127.0.0.1",
        port: server.port,
        useSSL: false,
        region: CREDENTIALS.region,
        accessKey: CREDENTIALS.accessKey,
        secretKey: CREDENTIALS.secretKey,
        insecure: false,
        ...overrides,
    };
}

const calls = (server: FakeMinio) => server.requests.map(({ method, url, status }) => `${method} ${url} ${status}`);
const LIFECYCLE = `/${BUCKET}?lifecycle`;

describe("the bucket lifecycle provider against a MinIO-like server", () => {
    test("create writes the rule, signed and checksummed, and reads it back", async () => {
        const server = await startServer();
        const inputs = stateFor(server);
        const result = await provider.create(inputs);

        assert.equal(result.id, BUCKET);
        assert.deepEqual(result.outs, inputs);
        assert.deepEqual(server.stored, [storedRule(30)]);
        assert.deepEqual(calls(server), [`PUT ${LIFECYCLE} 200`, `GET ${LIFECYCLE} 200`]);
        assert.deepEqual(server.refusals(), []);
    });

    test("read reports the live rule; drift shows in diff and update restores the rule", async () => {
        const server = await startServer();
        const inputs = stateFor(server);
        await provider.create(inputs);
        assert.deepEqual(await provider.read!(BUCKET, inputs), { id: BUCKET, props: inputs });

        server.stored = [storedRule(7)]; // someone shortened the expiry by hand
        const refreshed = await provider.read!(BUCKET, inputs);
        assert.deepEqual(refreshed.props?.configuration, configuration(7));
        assert.deepEqual(await provider.diff!(BUCKET, refreshed.props!, inputs), {
            changes: true,
            replaces: [],
            deleteBeforeReplace: false,
        });

        assert.deepEqual(await provider.update!(BUCKET, refreshed.props!, inputs), { outs: inputs });
        assert.deepEqual(server.stored, [storedRule(30)]);
        assert.deepEqual(server.refusals(), []);
    });

    test("a server that answers with extra and default elements keeps the rule, and shows no drift", async () => {
        const server = await startServer();
        server.decoratesAnswers = true;
        const inputs = stateFor(server);
        assert.deepEqual(await provider.create(inputs), { id: BUCKET, outs: inputs });
        assert.deepEqual(server.stored, [storedRule(30)]);
        assert.deepEqual(calls(server), [`PUT ${LIFECYCLE} 200`, `GET ${LIFECYCLE} 200`], "no DELETE");

        assert.deepEqual(await provider.read!(BUCKET, inputs), { id: BUCKET, props: inputs });
        // State recorded from such an answer (as the SDK parses it) is no difference either.
        const [rule] = configuration(30).Rule;
        const decorated = { Rule: [{ ...rule, Filter: { Prefix: "", ...rule!.Filter }, NoncurrentVersionExpiration: "" }] };
        assert.equal((await provider.diff!(BUCKET, { ...inputs, configuration: decorated }, inputs)).changes, false);

        server.stored = [storedRule(7)];
        const refreshed = await provider.read!(BUCKET, inputs);
        assert.equal(refreshed.props?.configuration.Rule[0]?.Expiration.Days, 7);
        assert.equal((await provider.diff!(BUCKET, refreshed.props!, inputs)).changes, true);
    });

    test("read of a bucket without a lifecycle configuration reports the resource gone", async () => {
        const server = await startServer();
        assert.deepEqual(await provider.read!(BUCKET, stateFor(server)), {});
        assert.deepEqual(calls(server), [`GET ${LIFECYCLE} 404`]);
    });

    test("diff: nothing, a new bucket (replace), new days or new credentials (update)", async () => {
        const server = await startServer();
        const olds = stateFor(server);
        const none = { changes: false, replaces: [], deleteBeforeReplace: false };
        const update = { changes: true, replaces: [], deleteBeforeReplace: false };
        assert.deepEqual(await provider.diff!(BUCKET, olds, stateFor(server)), none);
        assert.deepEqual(await provider.diff!(BUCKET, olds, stateFor(server, { bucket: "other-cache" })), {
            changes: true,
            replaces: ["bucket"],
            deleteBeforeReplace: false,
        });
        assert.deepEqual(await provider.diff!(BUCKET, olds, stateFor(server, { configuration: configuration(14) })), update);
        assert.deepEqual(await provider.diff!(BUCKET, olds, stateFor(server, { secretKey: "rotated-password-0123" })), update);
        assert.deepEqual(server.requests, [], "diff talks to nobody");
    });

    test("update rewrites the rule with the new days and threshold", async () => {
        const server = await startServer();
        const olds = stateFor(server);
        await provider.create(olds);
        const news = stateFor(server, { configuration: configuration(14, 56) });
        assert.deepEqual(await provider.update!(BUCKET, olds, news), { outs: news });
        assert.deepEqual(server.stored, [storedRule(14, 56)]);
    });

    test("delete removes the configuration, and a second delete finds nothing to do", async () => {
        const server = await startServer();
        const state = stateFor(server);
        await provider.create(state);
        await provider.delete!(BUCKET, state);
        assert.equal(server.stored, undefined);
        assert.deepEqual(await provider.read!(BUCKET, state), {});
        await provider.delete!(BUCKET, state);
        assert.deepEqual(calls(server).slice(2), [
            `DELETE ${LIFECYCLE} 204`,
            `GET ${LIFECYCLE} 404`,
            `DELETE ${LIFECYCLE} 204`,
        ]);
        assert.deepEqual(server.refusals(), []);
    });

    for (const [generation, code] of [
        ["2023-06", "InvalidArgument"],
        ["2021-02", "InvalidRequest"],
    ] as const) {
        test(`a server that refuses the size filter (MinIO ${generation}: ${code}) gets a clear error, and keeps its configuration`, async () => {
            const server = await startServer(generation);
            const foreign = { ID: "keep-me", Status: "Enabled", Filter: { Prefix: "tmp/" }, Expiration: { Days: "1" } };
            server.stored = [foreign];
            await assert.rejects(provider.create(stateFor(server)), (error: Error) => {
                assert.match(error.message, new RegExp(`${code}: unknown XML Tag`));
                assert.match(error.message, /MinIO releases before December 2023/);
                assert.match(error.message, /do not support the lifecycle filter ObjectSizeGreaterThan/);
                assert.match(error.message, /Upgrade MinIO/);
                assert.match(error.message, /nix-cache:expireDays to 0/);
                assert.match(error.message, /Nothing was changed/);
                return true;
            });
            assert.deepEqual(server.stored, [foreign]);
            assert.deepEqual(calls(server), [`PUT ${LIFECYCLE} 400`]);
        });
    }

    test("a server that silently drops the size filter (MinIO before 2021-02) gets the rule removed again", async () => {
        const server = await startServer("2020");
        await assert.rejects(provider.create(stateFor(server)), (error: Error) => {
            assert.match(error.message, /accepted the expiry rule but stored \[\{"ID":"nix-cache-expiry","Status":"Enabled","Filter":\{"Prefix":""\}/);
            assert.match(error.message, /the rule was removed again/);
            assert.match(error.message, /MinIO releases before December 2023/);
            return true;
        });
        assert.equal(server.stored, undefined);
        assert.deepEqual(calls(server), [`PUT ${LIFECYCLE} 200`, `GET ${LIFECYCLE} 200`, `DELETE ${LIFECYCLE} 204`]);
    });

    test("wrong credentials are refused by the server's signature check", async () => {
        const server = await startServer();
        await assert.rejects(provider.create(stateFor(server, { secretKey: "not-the-password" })), /SignatureDoesNotMatch/);
        await assert.rejects(provider.create(stateFor(server, { accessKey: "someone-else" })), /InvalidAccessKeyId/);
        assert.deepEqual(
            server.refusals().map(({ problem }) => problem),
            ["the signature does not verify with the configured secret key", "unknown access key 'someone-else'"],
        );
        assert.equal(server.stored, undefined);
    });

    test("missing credentials stop the provider before it sends anything", async () => {
        const server = await startServer();
        for (const missing of [{ secretKey: "" }, { accessKey: "" }, { endPoint: "" }]) {
            await assert.rejects(provider.create(stateFor(server, missing)), /set minio:minioServer, minio:minioUser and minio:minioPassword/);
        }
        assert.deepEqual(server.requests, []);
    });

    test(
        "over TLS it trusts the server through minio:minioCacertFile or minio:minioInsecure, and not otherwise",
        NEEDS_OPENSSL,
        () =>
            withLoopbackCertificate(async ({ key, cert, certFile }) => {
                const server = await startServer("current", { key, cert });
                await assert.rejects(provider.create(stateFor(server, { useSSL: true })), /self.signed certificate/);
                assert.equal(server.stored, undefined);
                await provider.create(stateFor(server, { useSSL: true, caCertFile: certFile }));
                assert.deepEqual(server.stored, [storedRule(30)]);
                const insecure = stateFor(server, { useSSL: true, insecure: true, configuration: configuration(9) });
                await provider.update!(BUCKET, stateFor(server), insecure);
                assert.deepEqual(server.stored, [storedRule(9)]);
                assert.deepEqual(server.refusals(), []);
            }),
    );

    test("the provider as Pulumi serializes it runs on its own: create, read, delete", async () => {
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

        const state = stateFor(server);
        await standalone.create(state);
        assert.deepEqual(server.stored, [storedRule(30)]);
        assert.deepEqual((await standalone.read!(BUCKET, state)).props?.configuration, configuration(30));
        await standalone.delete!(BUCKET, state);
        assert.equal(server.stored, undefined);
        assert.deepEqual(server.refusals(), []);
    });
});
