// The whole program under Pulumi's mock engine: what it registers, and what it exports.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createPrivateKey, createPublicKey } from "node:crypto";
import { before, beforeEach, describe, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { NixBinaryCache } from "../components/nixBinaryCache";
import { parseSettings, SettingsError } from "../lib/settings";
import { buildStack } from "../stack";
import {
    ANONYMOUS_DOWNLOAD_POLICY_FOR_NIX_CACHE,
    COLLECTOR_POLICY_FOR_NIX_CACHE,
    WRITER_POLICY_FOR_NIX_CACHE,
} from "./expectedPolicies";
import {
    generatedKeys,
    generatedPasswords,
    installMocks,
    registeredSnapshot,
    resetRegistrations,
    settle,
    valueOf,
    type Registered,
} from "./harness";

const CONFIG = { "minio:minioServer": "s3.example.org:9000", "minio:minioSsl": "true" };

const CACHE = "nix-cache:index:NixBinaryCache";
const STORAGE = "nix-cache:index:CacheBucket";
const WRITER = "nix-cache:index:CacheWriter";
const COLLECTOR = "nix-cache:index:CacheCollector";
const KEY = "nix-cache:index:SigningKey";

/** A secret input arrives at the engine wrapped; this returns the value inside. */
function unwrapSecret(value: any): unknown {
    return value && typeof value === "object" && "value" in value ? value.value : value;
}

function byName(registered: Registered[], name: string): Registered {
    const found = registered.filter((resource) => resource.name === name);
    assert.equal(found.length, 1, `expected exactly one resource named ${name}`);
    return found[0]!;
}

/** Raw key bytes read from the PEMs the mock handed out, with node:crypto only. */
function rawKeyOf(resourceName: string): { seed: Buffer; publicKey: Buffer } {
    const pem = generatedKeys.get(resourceName);
    assert.ok(pem, `no key was generated for ${resourceName}`);
    const seed = createPrivateKey(pem.privateKeyPem).export({ format: "der", type: "pkcs8" }).subarray(-32);
    const publicKey = createPublicKey(pem.publicKeyPem).export({ format: "der", type: "spki" }).subarray(-32);
    return { seed, publicKey };
}

before(installMocks);
beforeEach(resetRegistrations);

describe("a stack with default settings", () => {
    test("registers exactly the expected resources, parents and protect flags", async () => {
        const registered = await settle(buildStack(CONFIG));
        const nameOfUrn = new Map(registered.map((resource) => [resource.urn, resource.name]));
        const summary = registered
            .map(({ type, name, parentUrn, protect }) => ({ type, name, parent: nameOfUrn.get(parentUrn), protect }))
            .sort((a, b) => a.name.localeCompare(b.name));
        const resource = (type: string, name: string, parent: string | undefined, protect = false) => ({
            type,
            name,
            parent,
            protect,
        });
        assert.deepEqual(summary, [
            resource(CACHE, "nix-cache", undefined),
            resource(COLLECTOR, "nix-cache-collector", "nix-cache"),
            resource("minio:index/iamPolicy:IamPolicy", "nix-cache-collector-policy", "nix-cache-collector"),
            resource(
                "minio:index/iamUserPolicyAttachment:IamUserPolicyAttachment",
                "nix-cache-collector-policy-attachment",
                "nix-cache-collector",
            ),
            resource("random:index/randomPassword:RandomPassword", "nix-cache-collector-secret", "nix-cache-collector"),
            resource("minio:index/iamUser:IamUser", "nix-cache-collector-user", "nix-cache-collector"),
            resource("nix-cache:index:DeploymentCheck", "nix-cache-deployment-check", "nix-cache"),
            resource("command:local:Command", "nix-cache-deployment-check-anonymous-access", "nix-cache-deployment-check"),
            resource(KEY, "nix-cache-signing-key", "nix-cache"),
            resource("tls:index/privateKey:PrivateKey", "nix-cache-signing-key-s3.example.org-1", "nix-cache-signing-key", true),
            resource(STORAGE, "nix-cache-storage", "nix-cache"),
            resource("minio:index/s3BucketPolicy:S3BucketPolicy", "nix-cache-storage-anonymous-read", "nix-cache-storage"),
            resource("minio:index/s3Bucket:S3Bucket", "nix-cache-storage-bucket", "nix-cache-storage", true),
            resource("minio:index/s3Object:S3Object", "nix-cache-storage-cache-info", "nix-cache-storage"),
            resource(WRITER, "nix-cache-writer", "nix-cache"),
            resource("minio:index/iamPolicy:IamPolicy", "nix-cache-writer-policy", "nix-cache-writer"),
            resource("minio:index/iamUserPolicyAttachment:IamUserPolicyAttachment", "nix-cache-writer-policy-attachment", "nix-cache-writer"),
            resource("random:index/randomPassword:RandomPassword", "nix-cache-writer-secret", "nix-cache-writer"),
            resource("minio:index/iamUser:IamUser", "nix-cache-writer-user", "nix-cache-writer"),
        ]);
    });

    test("registers the expected inputs", async () => {
        const registered = await settle(buildStack(CONFIG));
        assert.deepEqual(byName(registered, "nix-cache-storage-bucket").inputs, { bucket: "nix-cache", forceDestroy: false });
        assert.deepEqual(byName(registered, "nix-cache-storage-cache-info").inputs, {
            bucketName: "nix-cache",
            objectName: "nix-cache-info",
            content: "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n",
            contentType: "text/x-nix-cache-info",
        });
        const bucketPolicy = byName(registered, "nix-cache-storage-anonymous-read").inputs;
        assert.equal(bucketPolicy.bucket, "nix-cache");
        assert.equal(bucketPolicy.policy, ANONYMOUS_DOWNLOAD_POLICY_FOR_NIX_CACHE);
        const writerPolicy = byName(registered, "nix-cache-writer-policy").inputs;
        assert.equal(writerPolicy.name, "nix-cache-write");
        assert.equal(writerPolicy.policy, WRITER_POLICY_FOR_NIX_CACHE);
        assert.deepEqual(byName(registered, "nix-cache-writer-secret").inputs, { length: 40, special: false });
        const user = byName(registered, "nix-cache-writer-user").inputs;
        assert.equal(user.name, "nixbuilder");
        assert.equal(unwrapSecret(user.secret), generatedPasswords.get("nix-cache-writer-secret"));
        assert.deepEqual(byName(registered, "nix-cache-writer-policy-attachment").inputs, {
            userName: "nixbuilder",
            policyName: "nix-cache-write",
        });
        assert.deepEqual(byName(registered, "nix-cache-signing-key-s3.example.org-1").inputs, { algorithm: "ED25519" });
        const collectorPolicy = byName(registered, "nix-cache-collector-policy").inputs;
        assert.equal(collectorPolicy.name, "nix-cache-collect");
        assert.equal(collectorPolicy.policy, COLLECTOR_POLICY_FOR_NIX_CACHE);
        assert.deepEqual(byName(registered, "nix-cache-collector-secret").inputs, { length: 40, special: false });
        const collector = byName(registered, "nix-cache-collector-user").inputs;
        assert.equal(collector.name, "nixcollector");
        // A secret input reaches the engine wrapped: @pulumi/pulumi runtime/rpc.ts, specialSigKey and specialSecretSig.
        assert.deepEqual(collector.secret, {
            "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
            value: generatedPasswords.get("nix-cache-collector-secret"),
        });
        assert.notEqual(unwrapSecret(collector.secret), unwrapSecret(user.secret), "a secret of its own");
        assert.deepEqual(byName(registered, "nix-cache-collector-policy-attachment").inputs, {
            userName: "nixcollector",
            policyName: "nix-cache-collect",
        });
    });

    test("exports the exact values, computed independently from the generated key", async () => {
        const outputs = buildStack(CONFIG);
        await settle(outputs);
        const { seed, publicKey } = rawKeyOf("nix-cache-signing-key-s3.example.org-1");
        const nixPublicKey = `s3.example.org-1:${publicKey.toString("base64")}`;
        const values = Object.fromEntries(
            await Promise.all(Object.entries(outputs).map(async ([name, output]) => [name, await valueOf<unknown>(output)])),
        );
        assert.deepEqual(values, {
            substituterUrl: "https://s3.example.org:9000/nix-cache",
            publicKey: nixPublicKey,
            secretKey: `s3.example.org-1:${Buffer.concat([seed, publicKey]).toString("base64")}`,
            bucketName: "nix-cache",
            writerAccessKey: "nixbuilder",
            writerSecretKey: generatedPasswords.get("nix-cache-writer-secret"),
            uploadUrl:
                "s3://nix-cache?endpoint=https://s3.example.org:9000&region=us-east-1&profile=nixbuilder&compression=zstd&compression-level=9",
            nixSettings: {
                "extra-substituters": ["https://s3.example.org:9000/nix-cache"],
                "extra-trusted-public-keys": [nixPublicKey],
            },
            nixConf:
                "extra-substituters = https://s3.example.org:9000/nix-cache\n" +
                `extra-trusted-public-keys = ${nixPublicKey}\n`,
            nixosClient: {
                "extra-substituters": ["https://s3.example.org:9000/nix-cache"],
                "extra-trusted-public-keys": [nixPublicKey],
                caCertificate: null,
            },
            awsCredentials:
                "[nixbuilder]\naws_access_key_id=nixbuilder\n" +
                `aws_secret_access_key=${generatedPasswords.get("nix-cache-writer-secret")}\n`,
            builderNixConf: "post-build-hook = /usr/local/bin/nix-cache-enqueue\n",
            builderDrainEnv:
                'NIX_CACHE_UPLOAD_URL="s3://nix-cache?endpoint=https://s3.example.org:9000&region=us-east-1&profile=nixbuilder&compression=zstd&compression-level=9"\n' +
                'NIX_CACHE_SECRET_KEY_FILE="/etc/nix/nix-cache-secret-key"\n' +
                'AWS_SHARED_CREDENTIALS_FILE="/etc/nix/nix-cache-credentials"\n',
            collectorAccessKey: "nixcollector",
            collectorSecretKey: generatedPasswords.get("nix-cache-collector-secret"),
            collectorEnv:
                'NIX_CACHE_GC_ENDPOINT="https://s3.example.org:9000"\n' +
                'NIX_CACHE_GC_BUCKET="nix-cache"\n' +
                'NIX_CACHE_GC_REGION="us-east-1"\n' +
                'NIX_CACHE_GC_KEEP_DAYS="30"\n' +
                'NIX_CACHE_GC_GRACE_HOURS="24"\n' +
                'AWS_ACCESS_KEY_ID="nixcollector"\n' +
                `AWS_SECRET_ACCESS_KEY="${generatedPasswords.get("nix-cache-collector-secret")}"\n`,
        });
        assert.match(String(values.writerSecretKey), /^[A-Za-z0-9]{40}$/);
        assert.match(String(values.collectorSecretKey), /^[A-Za-z0-9]{40}$/);
    });

    test("secret outputs are Pulumi secrets, the rest are not", async () => {
        const outputs = buildStack(CONFIG);
        await settle(outputs);
        const secret = new Set(["secretKey", "writerSecretKey", "awsCredentials", "collectorSecretKey", "collectorEnv"]);
        for (const [name, output] of Object.entries(outputs)) {
            assert.equal(await pulumi.isSecret(output as pulumi.Output<unknown>), secret.has(name), `isSecret(${name})`);
        }
    });
});

describe("settings shape the stack", () => {
    test("a writer secret from config is used as is, stays secret, and no password is generated", async () => {
        const writerSecret = "an-own-secret-of-32-characters.~";
        const outputs = buildStack({ ...CONFIG, "nix-cache:writerSecret": writerSecret });
        const registered = await settle(outputs);
        assert.deepEqual(
            registered.filter((resource) => resource.type === "random:index/randomPassword:RandomPassword").map((r) => r.name),
            ["nix-cache-collector-secret"],
        );
        assert.equal(unwrapSecret(byName(registered, "nix-cache-writer-user").inputs.secret), writerSecret);
        assert.equal(await valueOf(outputs.writerSecretKey), writerSecret);
        assert.equal(await pulumi.isSecret(outputs.writerSecretKey), true);
    });

    test("protect=false leaves the bucket and key unprotected, and still never force-destroys a full bucket", async () => {
        const registered = await settle(buildStack({ ...CONFIG, "nix-cache:protect": "false" }));
        assert.deepEqual(registered.filter((resource) => resource.protect), []);
        assert.deepEqual(byName(registered, "nix-cache-storage-bucket").inputs, { bucket: "nix-cache", forceDestroy: false });
    });

    test("uploads are signed for the minio provider's region unless nix-cache:region says otherwise", async () => {
        const regional = buildStack({ ...CONFIG, "minio:minioRegion": "eu-central-1" });
        await settle(regional);
        assert.match(await valueOf<string>(regional.uploadUrl), /&region=eu-central-1&/);
        assert.match(await valueOf<string>(regional.builderDrainEnv), /&region=eu-central-1&/);
        resetRegistrations();
        const explicit = buildStack({ ...CONFIG, "minio:minioRegion": "eu-central-1", "nix-cache:region": "homelab" });
        await settle(explicit);
        assert.match(await valueOf<string>(explicit.uploadUrl), /&region=homelab&/);
    });

    test("allowAnonymousList adds the listing statement to the registered bucket policy", async () => {
        const registered = await settle(buildStack({ ...CONFIG, "nix-cache:allowAnonymousList": "true" }));
        const policy = JSON.parse(byName(registered, "nix-cache-storage-anonymous-read").inputs.policy);
        assert.deepEqual(
            policy.Statement.map((statement: { Action: string[] }) => statement.Action),
            [["s3:GetBucketLocation", "s3:ListBucket"], ["s3:GetObject"]],
        );
    });

    test("a new key generation is a new key pair, not the old one renamed", async () => {
        const first = buildStack({ ...CONFIG, "nix-cache:keyName": "cache.example.org-1" });
        await settle(first);
        const second = buildStack({ ...CONFIG, "nix-cache:keyName": "cache.example.org-2" });
        const registered = await settle(second);
        const keys = registered.filter((resource) => resource.type === "tls:index/privateKey:PrivateKey");
        assert.deepEqual(
            keys.map((key) => key.name),
            ["nix-cache-signing-key-cache.example.org-1", "nix-cache-signing-key-cache.example.org-2"],
        );
        const [oldKey, newKey] = [await valueOf(first.publicKey), await valueOf(second.publicKey)];
        assert.match(oldKey, /^cache\.example\.org-1:/);
        assert.match(newKey, /^cache\.example\.org-2:/);
        assert.notEqual(oldKey.split(":")[1], newKey.split(":")[1]);
    });

    test("two caches in one stack register without name collisions", async () => {
        const a = new NixBinaryCache("main", parseSettings(CONFIG));
        const b = new NixBinaryCache(
            "staging",
            parseSettings({
                ...CONFIG,
                "nix-cache:bucket": "nix-cache-staging",
                "nix-cache:writerName": "stagingbuilder",
                "nix-cache:collectorName": "stagingcollector",
            }),
        );
        const registered = await settle({
            a: a.outputs.publicKey,
            b: b.outputs.publicKey,
            c: a.outputs.writerSecretKey,
            d: b.outputs.writerSecretKey,
            e: a.outputs.collectorEnv!,
            f: b.outputs.collectorEnv!,
        });
        assert.equal(registered.length, 38);
        assert.equal(new Set(registered.map((resource) => resource.name)).size, 38);
        assert.ok(registered.every((resource) => /^(main|staging)/.test(resource.name)));
        const policyNames = registered
            .filter((resource) => resource.type === "minio:index/iamPolicy:IamPolicy")
            .map((resource) => resource.inputs.name)
            .sort();
        assert.deepEqual(policyNames, ["nix-cache-collect", "nix-cache-staging-collect", "nix-cache-staging-write", "nix-cache-write"]);
        const userNames = registered
            .filter((resource) => resource.type === "minio:index/iamUser:IamUser")
            .map((resource) => resource.inputs.name)
            .sort();
        assert.deepEqual(userNames, ["nixbuilder", "nixcollector", "stagingbuilder", "stagingcollector"]);
    });

    test("invalid settings stop the program before any resource is registered", async () => {
        assert.throws(
            () => buildStack({ ...CONFIG, "nix-cache:bucket": "Bad_Bucket", "nix-cache:compression": "lz4" }),
            (error: unknown) =>
                error instanceof SettingsError &&
                error.problems.length === 2 &&
                /nix-cache:bucket/.test(error.message) &&
                /nix-cache:compression/.test(error.message),
        );
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.deepEqual(registeredSnapshot(), []);
    });

    test("a compression level outside its compression's range stops the program before any resource is registered", async () => {
        assert.throws(
            () => buildStack({ ...CONFIG, "nix-cache:compression": "xz", "nix-cache:compressionLevel": "12" }),
            (error: unknown) => error instanceof SettingsError && error.problems.length === 1 && /^nix-cache:compressionLevel: /.test(error.problems[0]!),
        );
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.deepEqual(registeredSnapshot(), []);
    });

    test("the upload URL carries the compression level, and none when the compression gets Nix's default", async () => {
        const uploadUrlWith = async (config: Record<string, string>) => {
            resetRegistrations();
            const outputs = buildStack({ ...CONFIG, ...config });
            await settle(outputs);
            return [await valueOf(outputs.uploadUrl), await valueOf(outputs.builderDrainEnv)] as const;
        };
        const base = "s3://nix-cache?endpoint=https://s3.example.org:9000&region=us-east-1&profile=nixbuilder";
        for (const [config, query] of [
            [{ "nix-cache:compressionLevel": "3" }, "compression=zstd&compression-level=3"],
            [{ "nix-cache:compression": "xz", "nix-cache:compressionLevel": "9" }, "compression=xz&compression-level=9"],
            [{ "nix-cache:compression": "xz" }, "compression=xz"],
            [{ "nix-cache:compression": "none" }, "compression=none"],
        ] as const) {
            const [upload, drainEnv] = await uploadUrlWith(config);
            assert.equal(upload, `${base}&${query}`);
            assert.match(drainEnv, new RegExp(`^NIX_CACHE_UPLOAD_URL="${(base + "&" + query).replace(/[?.]/g, "\\$&")}"$`, "m"));
        }
    });
});

describe("retention shapes the stack", () => {
    const COLLECTOR_OUTPUTS = ["collectorAccessKey", "collectorSecretKey", "collectorEnv"];
    /** The names of what sheds paths: the collector's component, the expiry's. */
    const kinds = (registered: Registered[]) =>
        registered.filter((r) => [COLLECTOR, "nix-cache:index:CacheExpiry"].includes(r.type)).map((r) => r.name);

    test("gc: the collector's outputs follow gcKeepDays, gcGraceHours, the upload region and the public URL", async () => {
        const outputs = buildStack({
            ...CONFIG,
            "nix-cache:publicUrl": "https://cache.example.org",
            "nix-cache:region": "homelab",
            "nix-cache:bucket": "builds",
            "nix-cache:collectorName": "gc.builds",
            "nix-cache:gcKeepDays": "90",
            "nix-cache:gcGraceHours": "6",
        });
        const registered = await settle(outputs);
        assert.deepEqual(kinds(registered), ["nix-cache-collector"]);
        assert.equal(byName(registered, "nix-cache-collector-policy").inputs.name, "builds-collect");
        assert.equal(await valueOf(outputs.collectorAccessKey!), "gc.builds");
        assert.equal(
            await valueOf(outputs.collectorEnv!),
            'NIX_CACHE_GC_ENDPOINT="https://cache.example.org"\n' +
                'NIX_CACHE_GC_BUCKET="builds"\n' +
                'NIX_CACHE_GC_REGION="homelab"\n' +
                'NIX_CACHE_GC_KEEP_DAYS="90"\n' +
                'NIX_CACHE_GC_GRACE_HOURS="6"\n' +
                'AWS_ACCESS_KEY_ID="gc.builds"\n' +
                `AWS_SECRET_ACCESS_KEY="${generatedPasswords.get("nix-cache-collector-secret")}"\n`,
        );
    });

    test("expire: the lifecycle rule and no collector; the collector's outputs are absent", async () => {
        const outputs = buildStack({ ...CONFIG, "nix-cache:retention": "expire" });
        const registered = await settle(outputs);
        assert.deepEqual(kinds(registered), ["nix-cache-expiry"]);
        assert.ok(!registered.some((r) => r.type === "minio:index/iamUser:IamUser" && r.inputs.name === "nixcollector"));
        assert.deepEqual(COLLECTOR_OUTPUTS.filter((name) => name in outputs), []);
    });

    test("none: neither the rule nor the collector; the collector's outputs are absent", async () => {
        const outputs = buildStack({ ...CONFIG, "nix-cache:retention": "none" });
        const registered = await settle(outputs);
        assert.deepEqual(kinds(registered), []);
        assert.ok(!registered.some((r) => r.type === "pulumi-nodejs:dynamic:Resource"));
        assert.deepEqual(
            registered.filter((r) => r.type === "minio:index/iamUser:IamUser").map((r) => r.inputs.name),
            ["nixbuilder"],
        );
        assert.deepEqual(COLLECTOR_OUTPUTS.filter((name) => name in outputs), []);
    });
});

describe("the dependency tree", () => {
    test("holds a single copy of @pulumi/pulumi (two copies break the mock engine)", () => {
        const listing = execFileSync("npm", ["ls", "@pulumi/pulumi", "--all", "--parseable"], { encoding: "utf8" });
        const copies = new Set(listing.split("\n").filter((line) => line.endsWith("node_modules/@pulumi/pulumi")));
        assert.equal(copies.size, 1, [...copies].join("\n"));
    });
});
