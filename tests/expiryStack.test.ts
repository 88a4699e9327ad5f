// Expiry in the whole program, under Pulumi's mock engine: what is registered, with which inputs.
import assert from "node:assert/strict";
import { before, beforeEach, describe, test } from "node:test";
import { NixBinaryCache } from "../components/nixBinaryCache";
import { parseSettings, SettingsError } from "../lib/settings";
import { buildStack } from "../stack";
import { installMocks, registeredSnapshot, resetRegistrations, settle, type Registered } from "./harness";

const DYNAMIC = "pulumi-nodejs:dynamic:Resource";
const CONFIG = {
    "minio:minioServer": "minio-admin.test.internal:9000",
    "minio:minioSsl": "true",
    "minio:minioUser": "admin",
    "minio:minioPassword": "the-admin-password",
    "nix-cache:retention": "expire",
};

/** The rule's inputs as the engine must receive them, without the serialized provider: no connection. */
function lifecycleInputs(days: number, threshold: number) {
    return {
        bucket: "nix-cache",
        rule: {
            ID: "nix-cache-expiry",
            Status: "Enabled",
            Filter: { ObjectSizeGreaterThan: threshold },
            Expiration: { Days: days },
        },
    };
}

function byName(registered: Registered[], name: string): Registered {
    const found = registered.filter((resource) => resource.name === name);
    assert.equal(found.length, 1, `expected exactly one resource named ${name}`);
    return found[0]!;
}

/** Settles the program, and waits for the dynamic resource, whose provider is serialized first. */
async function registeredFor(cache: NixBinaryCache, expectDynamic: boolean): Promise<Registered[]> {
    let registered = await settle({ bucketName: cache.outputs.bucketName, nixConf: cache.outputs.nixConf });
    for (let waited = 0; expectDynamic && !registered.some((r) => r.type === DYNAMIC) && waited < 5000; waited += 50) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        registered = registeredSnapshot();
    }
    return registered;
}

before(installMocks);
beforeEach(resetRegistrations);

describe("expiry under the mock engine", () => {
    test("the default registers the lifecycle rule, after the bucket and nix-cache-info, without the connection", async () => {
        const registered = await registeredFor(new NixBinaryCache("nix-cache", parseSettings(CONFIG, {})), true);
        const expiry = byName(registered, "nix-cache-expiry");
        const lifecycle = byName(registered, "nix-cache-expiry-lifecycle");
        assert.equal(expiry.type, "nix-cache:index:CacheExpiry");
        assert.equal(expiry.parentUrn, byName(registered, "nix-cache").urn);
        assert.equal(lifecycle.type, DYNAMIC);
        assert.equal(lifecycle.parentUrn, expiry.urn);

        const { __provider, ...inputs } = lifecycle.inputs;
        assert.equal(typeof __provider, "string");
        // The provider resolves the connection when it runs (configure), so no copy of it can go stale.
        assert.doesNotMatch(__provider, /the-admin-password|minio-admin\.test\.internal/);
        // "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n" is 51 bytes.
        assert.deepEqual(inputs, lifecycleInputs(30, 51));
        assert.ok(lifecycle.dependencies.includes(byName(registered, "nix-cache-storage-bucket").urn), "depends on the bucket");
        assert.ok(lifecycle.dependencies.includes(byName(registered, "nix-cache-storage-cache-info").urn), "depends on nix-cache-info");
    });

    test("days and threshold follow the settings", async () => {
        const settings = parseSettings(
            {
                "minio:minioServer": "minio.internal",
                "nix-cache:retention": "expire",
                "nix-cache:expireDays": "7",
                "nix-cache:priority": "123456",
                "nix-cache:wantMassQuery": "false",
            },
            { MINIO_USER: "env-user", MINIO_PASSWORD: "env-password", MINIO_ENABLE_HTTPS: "true" },
        );
        const registered = await registeredFor(new NixBinaryCache("nix-cache", settings), true);
        const { __provider, ...inputs } = byName(registered, "nix-cache-expiry-lifecycle").inputs;
        assert.doesNotMatch(__provider, /env-password/);
        // "StoreDir: /nix/store\nWantMassQuery: 0\nPriority: 123456\n": 21 + 17 + 17 bytes.
        assert.deepEqual(inputs, lifecycleInputs(7, 55));
    });

    test("expireDays 1, the shortest expiry, registers the rule", async () => {
        const cache = new NixBinaryCache("nix-cache", parseSettings({ ...CONFIG, "nix-cache:expireDays": "1" }, {}));
        const { __provider, ...inputs } = byName(await registeredFor(cache, true), "nix-cache-expiry-lifecycle").inputs;
        assert.equal(typeof __provider, "string");
        assert.deepEqual(inputs, lifecycleInputs(1, 51));
    });

    test("retention gc and none register no expiry at all", async () => {
        for (const retention of ["gc", "none"]) {
            resetRegistrations();
            const cache = new NixBinaryCache("nix-cache", parseSettings({ ...CONFIG, "nix-cache:retention": retention }, {}));
            const registered = await registeredFor(cache, false);
            assert.ok(registered.some((r) => r.name === "nix-cache-storage-bucket"), "the rest of the stack is there");
            assert.deepEqual(
                registered.filter((r) => r.type === DYNAMIC || r.type === "nix-cache:index:CacheExpiry"),
                [],
            );
        }
    });

    test("an invalid expireDays stops the program before anything is registered", () => {
        assert.throws(
            () => buildStack({ ...CONFIG, "nix-cache:expireDays": "-3" }),
            (error: unknown) =>
                error instanceof SettingsError &&
                error.problems.includes(
                    "nix-cache:expireDays: must be a whole number of days from 1 to 36500, such as 30 (no expiry at all: nix-cache:retention none)",
                ),
        );
        assert.deepEqual(registeredSnapshot(), []);
    });
});
