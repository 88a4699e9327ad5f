// What NixOS machines and writers take from the stack: the settings behind it (previous keys of a
// rotation, a private CA, the post-deploy check switch), the pure functions that render it, and
// the stack's outputs under the mock engine, including a key rotation.
import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, beforeEach, describe, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { awsCredentialsProfile, nixosClient } from "../lib/clientConfig";
import { parseSettings } from "../lib/settings";
import { buildStack } from "../stack";
import { generatedKeys, generatedPasswords, installMocks, resetRegistrations, settle, valueOf } from "./harness";
import { problemsFor } from "./settingsSupport";

const SERVER = { "minio:minioServer": "s3.example.org:9000", "minio:minioSsl": "true" };
const PRIVATE_CA = readFileSync(join(__dirname, "fixtures", "private-ca.pem"), "utf8");
/** Well-formed public keys written out by hand: 32 bytes of 1s and 2s. */
const KEY_ONE = `cache.example.org-1:${Buffer.alloc(32, 1).toString("base64")}`;
const KEY_TWO = `cache.example.org-2:${Buffer.alloc(32, 2).toString("base64")}`;

const problemsWithServer = (config: Record<string, string>) => problemsFor({ ...SERVER, ...config });

describe("settings: previousPublicKeys", () => {
    test("a list set with `pulumi config set --path` arrives as JSON text and is parsed", () => {
        const settings = parseSettings({
            ...SERVER,
            "nix-cache:keyName": "cache.example.org-3",
            "nix-cache:previousPublicKeys": `["${KEY_ONE}", " ${KEY_TWO}\\n"]`,
        });
        assert.deepEqual(settings.previousPublicKeys, [KEY_ONE, KEY_TWO]);
    });

    test("defaults to no previous keys", () => {
        assert.deepEqual(parseSettings(SERVER).previousPublicKeys, []);
    });

    const invalid: [string, string, RegExp][] = [
        ["a plain string", KEY_ONE, /^nix-cache:previousPublicKeys: must be a list of Nix public keys; set items with: pulumi config set --path 'nix-cache:previousPublicKeys\[0\]'/],
        ["a list of numbers", "[1, 2]", /^nix-cache:previousPublicKeys: must be a list of Nix public keys/],
        ["an object", `{"key": "${KEY_ONE}"}`, /^nix-cache:previousPublicKeys: must be a list of Nix public keys/],
        ["a key without a name", `["${KEY_ONE}", "${Buffer.alloc(32).toString("base64")}"]`, /^nix-cache:previousPublicKeys: \[1\] is not a Nix public key: Nix public key: expected NAME:BASE64/],
        ["a truncated key", `["old-1:AAAA"]`, /^nix-cache:previousPublicKeys: \[0\] is not a Nix public key: Nix public key: expected 32 bytes, got 3$/],
        // RFC 8032 TEST 1's and TEST 2's public keys in base64url's alphabet, padded, with the url-safe
        // character in a middle group (Nix's base64 decoder refuses '-' and '_' anywhere).
        ["url-safe base64 ('_' in a middle group, padded)", `["old-1:11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo="]`, /^nix-cache:previousPublicKeys: \[0\] is not a Nix public key: Nix public key: not valid base64/],
        ["url-safe base64 ('-' in a middle group, padded)", `["old-1:PUAXw-hDiVqStwqnTRt-vJyYLM8uxJaMwM1V8Sr0Zgw="]`, /^nix-cache:previousPublicKeys: \[0\] is not a Nix public key: Nix public key: not valid base64/],
        ["a secret key", `["old-1:${Buffer.alloc(64, 7).toString("base64")}"]`, /^nix-cache:previousPublicKeys: \[0\] is not a Nix public key: Nix public key: expected 32 bytes, got 64$/],
        ["two keys of one name", `["${KEY_TWO}", "${KEY_ONE}", "${KEY_TWO.replace(/A/g, "B")}"]`, /^nix-cache:previousPublicKeys: \[2\] has the same key name 'cache\.example\.org-2' as \[0\]; Nix keeps only one key per name$/],
    ];
    for (const [what, value, message] of invalid) {
        test(`rejects ${what}`, () => {
            const problems = problemsWithServer({ "nix-cache:keyName": "cache.example.org-9", "nix-cache:previousPublicKeys": value });
            assert.equal(problems.length, 1, JSON.stringify(problems));
            assert.match(problems[0]!, message);
        });
    }

    test("rejects a previous key that has the current key name, and says to bump the generation", () => {
        assert.deepEqual(
            problemsWithServer({ "nix-cache:keyName": "cache.example.org-2", "nix-cache:previousPublicKeys": `["${KEY_ONE}", "${KEY_TWO}"]` }),
            [
                "nix-cache:previousPublicKeys: [1] has the current key name 'cache.example.org-2'; " +
                    "bump the generation in nix-cache:keyName (e.g. -1 to -2) before moving the old public key here",
            ],
        );
    });

    test("the default key name counts as the current name too", () => {
        const [problem] = problemsWithServer({ "nix-cache:previousPublicKeys": `["s3.example.org-1:${Buffer.alloc(32).toString("base64")}"]` });
        assert.match(problem ?? "", /^nix-cache:previousPublicKeys: \[0\] has the current key name 's3\.example\.org-1'/);
    });
});

describe("settings: caCertificate and verifyDeployment", () => {
    test("a PEM certificate is accepted and normalised to its certificate blocks", () => {
        const settings = parseSettings({ ...SERVER, "nix-cache:caCertificate": `\n\n${PRIVATE_CA.replace(/\n/g, "\r\n")}  ` });
        assert.equal(settings.caCertificate, PRIVATE_CA);
    });

    test("a bundle keeps every certificate", () => {
        const settings = parseSettings({ ...SERVER, "nix-cache:caCertificate": `${PRIVATE_CA}${PRIVATE_CA}` });
        assert.equal(settings.caCertificate, `${PRIVATE_CA.trim()}\n${PRIVATE_CA}`);
    });

    test("unset means no CA certificate, and the check on", () => {
        const settings = parseSettings(SERVER);
        assert.equal("caCertificate" in settings, false);
        assert.equal(settings.verifyDeployment, true);
    });

    test("verifyDeployment false turns the check off", () => {
        assert.equal(parseSettings({ ...SERVER, "nix-cache:verifyDeployment": "false" }).verifyDeployment, false);
    });

    const body = PRIVATE_CA.split("\n")[1]!;
    const invalid: [string, Record<string, string>, RegExp][] = [
        ["a file name instead of PEM", { "nix-cache:caCertificate": "/etc/ssl/ca.pem" }, /^nix-cache:caCertificate: must be PEM text with at least one -----BEGIN CERTIFICATE----- block$/],
        ["a corrupt certificate", { "nix-cache:caCertificate": PRIVATE_CA.replace(body, body.split("").reverse().join("")) }, /^nix-cache:caCertificate: certificate 1 is not a valid X\.509 certificate/],
        ["a private key next to the certificate", { "nix-cache:caCertificate": `${PRIVATE_CA}-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n` }, /^nix-cache:caCertificate: contains a private key; only the CA's certificate belongs here$/],
        ["a non-boolean verifyDeployment", { "nix-cache:verifyDeployment": "no" }, /^nix-cache:verifyDeployment: must be true or false$/],
    ];
    for (const [what, config, message] of invalid) {
        test(`rejects ${what}`, () => {
            const problems = problemsWithServer(config);
            assert.equal(problems.length, 1, JSON.stringify(problems));
            assert.match(problems[0]!, message);
        });
    }

    test("a private key's text never appears in the error", () => {
        const secret = "MC4CAQAwBQYDK2VwBCIEIHNlY3JldC1zZWVkLW5ldmVyLXRvLWJlLXByaW50ZWQ=";
        const [problem] = problemsWithServer({ "nix-cache:caCertificate": `-----BEGIN PRIVATE KEY-----\n${secret}\n-----END PRIVATE KEY-----\n` });
        assert.ok(problem && !problem.includes(secret));
    });
});

describe("rendering", () => {
    test("the writer's ~/.aws/credentials profile", () => {
        assert.equal(
            awsCredentialsProfile("nixbuilder", "nixbuilder", "s3cr3t"),
            "[nixbuilder]\naws_access_key_id=nixbuilder\naws_secret_access_key=s3cr3t\n",
        );
    });

    test("the NixOS client settings are nix.settings plus the CA, or null without one", () => {
        const settings = { "extra-substituters": ["https://x.org/c"], "extra-trusted-public-keys": [KEY_ONE] };
        assert.deepEqual(nixosClient(settings, undefined), { ...settings, caCertificate: null });
        assert.deepEqual(nixosClient(settings, PRIVATE_CA), { ...settings, caCertificate: PRIVATE_CA });
    });
});

/** `NAME:BASE64(public key)` read from the PEM the mock handed out, with node:crypto only. */
function publicKeyOf(name: string, resourceName: string): string {
    const pem = generatedKeys.get(resourceName);
    assert.ok(pem, `no key was generated for ${resourceName}`);
    const { x } = createPublicKey(pem.publicKeyPem).export({ format: "jwk" });
    return `${name}:${Buffer.from(x!, "base64url").toString("base64")}`;
}

describe("stack outputs for clients and writers", () => {
    before(installMocks);
    beforeEach(resetRegistrations);

    test("awsCredentials is the writer's profile, named after writerName, and a secret", async () => {
        const outputs = buildStack({ ...SERVER, "nix-cache:writerName": "ci_builder" });
        await settle(outputs);
        const secret = generatedPasswords.get("nix-cache-writer-secret");
        assert.match(secret ?? "", /^[A-Za-z0-9]{40}$/);
        assert.equal(
            await valueOf(outputs.awsCredentials),
            `[ci_builder]\naws_access_key_id=ci_builder\naws_secret_access_key=${secret}\n`,
        );
        assert.equal(await pulumi.isSecret(outputs.awsCredentials), true);
    });

    test("nixosClient carries the CA certificate, and is not a secret", async () => {
        const outputs = buildStack({ ...SERVER, "nix-cache:caCertificate": PRIVATE_CA });
        await settle(outputs);
        const publicKey = publicKeyOf("s3.example.org-1", "nix-cache-signing-key-s3.example.org-1");
        assert.deepEqual(await valueOf(outputs.nixosClient), {
            "extra-substituters": ["https://s3.example.org:9000/nix-cache"],
            "extra-trusted-public-keys": [publicKey],
            caCertificate: PRIVATE_CA,
        });
        assert.equal(await pulumi.isSecret(outputs.nixosClient), false);
    });

    test("bumping the key generation makes a new key pair while the old public key stays trusted", async () => {
        const before = buildStack({ ...SERVER, "nix-cache:keyName": "cache.example.org-1" });
        await settle(before);
        const oldKey = publicKeyOf("cache.example.org-1", "nix-cache-signing-key-cache.example.org-1");
        assert.equal(await valueOf(before.publicKey), oldKey);

        resetRegistrations();
        const after = buildStack({
            ...SERVER,
            "nix-cache:keyName": "cache.example.org-2",
            "nix-cache:previousPublicKeys": JSON.stringify([oldKey]),
        });
        const registered = await settle(after);
        assert.deepEqual(
            registered.filter((resource) => resource.type === "tls:index/privateKey:PrivateKey").map((key) => key.name),
            ["nix-cache-signing-key-cache.example.org-2"],
        );
        const newKey = publicKeyOf("cache.example.org-2", "nix-cache-signing-key-cache.example.org-2");
        assert.notEqual(newKey.split(":")[1], oldKey.split(":")[1]);
        assert.equal(await valueOf(after.publicKey), newKey);
        assert.match(await valueOf(after.secretKey), /^cache\.example\.org-2:/);

        const substituter = "https://s3.example.org:9000/nix-cache";
        assert.deepEqual(await valueOf(after.nixSettings), {
            "extra-substituters": [substituter],
            "extra-trusted-public-keys": [newKey, oldKey],
        });
        assert.equal(
            await valueOf(after.nixConf),
            `extra-substituters = ${substituter}\nextra-trusted-public-keys = ${newKey} ${oldKey}\n`,
        );
        assert.deepEqual((await valueOf(after.nixosClient))["extra-trusted-public-keys"], [newKey, oldKey]);
    });
});
