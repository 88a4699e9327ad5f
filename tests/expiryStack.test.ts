// Expiry in the whole program, under Pulumi's mock engine: what is registered, with which inputs.
import assert from "node:assert/strict";
import { before, beforeEach, describe, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { NixBinaryCache } from "../components/nixBinaryCache";
import { expiryLifecycle } from "../lib/lifecycle";
import { parseSettings, SettingsError } from "../lib/settings";
import { BucketLifecycle } from "../providers/bucketLifecycle";
import { buildStack } from "../stack";
import { installMocks, registeredSnapshot, resetRegistrations, settle, valueOf, type Registered } from "./harness";

const DYNAMIC = "pulumi-nodejs:dynamic:Resource";
const CONFIG = {
    "minio:minioServer": "s3.example.org:9000",
    "minio:minioSsl": "true",
    "minio:minioUser": "admin",
    "minio:minioPassword": "the-admin-password",
};

// How the engine receives a secret input: a marker key next to the value.
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_MARKER = "1b47061264138c4ac30d75fd1eb44270";
const secret = (value: string) => ({ [SECRET_SIG]: SECRET_MARKER, value });

/** The rule's inputs as the engine must receive them, without the serialized provider. */
function lifecycleInputs(days: number, threshold: number, connection: Record<string, unknown>) {
    return {
        bucket: "nix-cache",
        configuration: {
            Rule: [
                {
                    ID: "nix-cache-expiry",
                    Status: "Enabled",
                    Filter: { ObjectSizeGreaterThan: threshold },
                    Expiration: { Days: days },
                },
            ],
        },
        region: "us-east-1",
        insecure: false,
        ...connection,
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
    test("the default registers the lifecycle rule, after the bucket and nix-cache-info, with secret credentials", async () => {
        const registered = await registeredFor(new NixBinaryCache("nix-cache", parseSettings(CONFIG, {})), true);
        const expiry = byName(registered, "nix-cache-expiry");
        const lifecycle = byName(registered, "nix-cache-expiry-lifecycle");
        assert.equal(expiry.type, "nix-cache:index:CacheExpiry");
        assert.equal(expiry.parentUrn, byName(registered, "nix-cache").urn);
        assert.equal(lifecycle.type, DYNAMIC);
        assert.equal(lifecycle.parentUrn, expiry.urn);

        const { __provider, ...inputs } = lifecycle.inputs;
        assert.equal(typeof __provider, "string");
        assert.doesNotMatch(__provider, /the-admin-password/);
        // "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n" is 51 bytes.
        assert.deepEqual(
            inputs,
            lifecycleInputs(30, 51, {
                endPoint: "s3.example.org",
                port: 9000,
                useSSL: true,
                accessKey: secret("admin"),
                secretKey: secret("the-admin-password"),
            }),
        );
        assert.ok(lifecycle.dependencies.includes(byName(registered, "nix-cache-storage-bucket").urn), "depends on the bucket");
        assert.ok(lifecycle.dependencies.includes(byName(registered, "nix-cache-storage-cache-info").urn), "depends on nix-cache-info");
    });

    test("days, threshold and credentials follow the settings and the provider's environment", async () => {
        const settings = parseSettings(
            {
                "minio:minioServer": "minio.internal",
                "nix-cache:expireDays": "7",
                "nix-cache:priority": "123456",
                "nix-cache:wantMassQuery": "false",
            },
            { MINIO_USER: "env-user", MINIO_PASSWORD: "env-password", MINIO_ENABLE_HTTPS: "true", MINIO_CACERT_FILE: "/ca.pem" },
        );
        const registered = await registeredFor(new NixBinaryCache("nix-cache", settings), true);
        const { __provider, ...inputs } = byName(registered, "nix-cache-expiry-lifecycle").inputs;
        // "StoreDir: /nix/store\nWantMassQuery: 0\nPriority: 123456\n": 21 + 17 + 17 bytes.
        assert.deepEqual(
            inputs,
            lifecycleInputs(7, 55, {
                endPoint: "minio.internal",
                useSSL: true,
                accessKey: secret("env-user"),
                secretKey: secret("env-password"),
                caCertFile: "/ca.pem",
            }),
        );
    });

    test("expireDays 0 registers no expiry at all", async () => {
        const cache = new NixBinaryCache("nix-cache", parseSettings({ ...CONFIG, "nix-cache:expireDays": "0" }, {}));
        const registered = await registeredFor(cache, false);
        assert.ok(registered.some((r) => r.name === "nix-cache-storage-bucket"), "the rest of the stack is there");
        assert.deepEqual(
            registered.filter((r) => r.type === DYNAMIC || r.type === "nix-cache:index:CacheExpiry"),
            [],
        );
    });

    test("an invalid expireDays stops the program before anything is registered", () => {
        assert.throws(
            () => buildStack({ ...CONFIG, "nix-cache:expireDays": "-3" }),
            (error: unknown) =>
                error instanceof SettingsError &&
                error.problems.includes(
                    "nix-cache:expireDays: must be a whole number of days from 0 (no expiry) to 36500, such as 30",
                ),
        );
        assert.deepEqual(registeredSnapshot(), []);
    });
});

describe("the BucketLifecycle resource's options", () => {
    test("the caller's additionalSecretOutputs are kept next to the credentials", async () => {
        // Mocks ignore additionalSecretOutputs, so read the options the resource was constructed with.
        let constructedWith: string[] | undefined;
        const resource = new BucketLifecycle(
            "options-check",
            {
                bucket: "nix-cache",
                configuration: expiryLifecycle(30, "StoreDir: /nix/store\n"),
                endPoint: "s3.example.org",
                useSSL: true,
                region: "us-east-1",
                accessKey: pulumi.secret("admin"),
                secretKey: pulumi.secret("the-admin-password"),
                insecure: false,
            },
            {
                additionalSecretOutputs: ["configuration"],
                transformations: [
                    ({ opts }) => {
                        constructedWith = (opts as pulumi.CustomResourceOptions).additionalSecretOutputs;
                        return undefined;
                    },
                ],
            },
        );
        assert.deepEqual(constructedWith, ["configuration", "accessKey", "secretKey"]);
        await valueOf(resource.urn); // registered before the next test counts registrations
    });
});
