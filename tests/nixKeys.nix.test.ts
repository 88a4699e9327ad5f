// The program's signing keys, checked by a real Nix: what the stack exports is what Nix derives, and
// keys Nix makes pass through the project's parse and format functions unchanged.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { formatNixPublicKey, formatNixSecretKey, parseNixPublicKey, parseNixSecretKey } from "../lib/nixKeys";
import { NEEDS_NIX, NixWorkspace, programOutputs } from "./nixSupport";

describe("signing keys, as Nix reads them", NEEDS_NIX, () => {
    let nix: NixWorkspace;
    before(async () => {
        nix = await NixWorkspace.create();
    });
    after(async () => nix?.remove());

    /** Nix's public key for a secret key; the secret goes through stdin, never to disk. */
    const nixPublicKeyOf = async (secretKey: string) =>
        (await nix.ok("nix", ["key", "convert-secret-to-public"], secretKey)).trim();

    test("the exported secretKey gives exactly the exported publicKey in Nix", async () => {
        const program = await programOutputs();
        assert.match(program.secretKey, /^s3\.example\.org-1:/);
        assert.equal(await nixPublicKeyOf(program.secretKey), program.publicKey);
    });

    test("a key pair made by nix key generate-secret round-trips through parse and format", async () => {
        const secretText = (await nix.ok("nix", ["key", "generate-secret", "--key-name", "cache.example.org-7"])).trim();
        const publicText = await nixPublicKeyOf(secretText);

        const secret = parseNixSecretKey(secretText);
        const pub = parseNixPublicKey(publicText);
        assert.equal(secret.name, "cache.example.org-7");
        assert.deepEqual(secret.publicKey, pub.publicKey, "the public half of Nix's secret key is Nix's public key");
        assert.equal(formatNixSecretKey(secret), secretText);
        assert.equal(formatNixPublicKey(pub), publicText);
        assert.equal(formatNixPublicKey(secret), publicText);
    });

    describe("malformed secret keys are refused by Nix and by the project, with a clear error", () => {
        let encoded: string;
        before(async () => {
            const generated = (await nix.ok("nix", ["key", "generate-secret", "--key-name", "cache-1"])).trim();
            encoded = generated.slice("cache-1:".length);
        });
        const cases: [string, () => string, RegExp][] = [
            ["no name", () => `:${encoded}`, /key name must not be empty/],
            ["no name and no ':'", () => encoded, /expected NAME:BASE64, found no ':'/],
            ["wrong length", () => `cache-1:${Buffer.from(encoded, "base64").subarray(1).toString("base64")}`, /expected 64 bytes, got 63/],
            ["bad base64", () => `cache-1:*${encoded.slice(1)}`, /not valid base64/],
        ];
        for (const [what, key, message] of cases) {
            test(what, async () => {
                assert.throws(() => parseNixSecretKey(key()), message);
                const result = await nix.run("nix", ["key", "convert-secret-to-public"], key());
                assert.notEqual(result.status, 0, `Nix accepted a secret key with ${what}`);
                assert.match(result.stderr, /secret key is (corrupt|not valid)|invalid character in Base64/);
            });
        }
    });

    describe("malformed public keys are refused by the project, with a clear error", () => {
        let encoded: string;
        before(async () => {
            const secret = (await nix.ok("nix", ["key", "generate-secret", "--key-name", "cache-1"])).trim();
            encoded = (await nixPublicKeyOf(secret)).slice("cache-1:".length);
        });
        const cases: [string, () => string, RegExp][] = [
            ["no name", () => `:${encoded}`, /key name must not be empty/],
            ["wrong length", () => `cache-1:${Buffer.from(encoded, "base64").subarray(1).toString("base64")}`, /expected 32 bytes, got 31/],
            ["bad base64", () => `cache-1:*${encoded.slice(1)}`, /not valid base64/],
        ];
        for (const [what, key, message] of cases) {
            test(what, () => {
                assert.throws(() => parseNixPublicKey(key()), message);
            });
        }
    });
});
