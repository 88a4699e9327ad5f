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

    describe("a padded key in base64url's alphabet is refused by Nix and by the project", () => {
        // RFC 8032, section 7.1, TEST 2 as a Nix secret key: its standard base64 has '/' in the 2nd
        // group and '+' in the 8th. Nix decodes with the standard alphabet only and throws on any
        // other character (NixOS/nix 2.8 src/libutil/util.cc `base64Decode`: "invalid character in
        // Base64 string"; today src/libutil/base-n.cc `base64::decode`).
        const seedAndPublic = Buffer.from(
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb" +
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "hex",
        );
        const standard = `cache-1:${seedAndPublic.toString("base64")}`;

        test("in the standard alphabet, Nix and the project read it", async () => {
            assert.equal(await nixPublicKeyOf(standard), "cache-1:PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=");
            assert.equal(formatNixSecretKey(parseNixSecretKey(standard)), standard);
        });

        for (const [standardCharacter, urlSafeCharacter] of [["/", "_"], ["+", "-"]]) {
            test(`with '${urlSafeCharacter}' for '${standardCharacter}' in a group other than the last`, async () => {
                const urlSafe = standard.replaceAll(standardCharacter!, urlSafeCharacter!);
                assert.ok(urlSafe.endsWith("==") && urlSafe.slice(0, -4).includes(urlSafeCharacter!), urlSafe);
                assert.throws(() => parseNixSecretKey(urlSafe), /not valid base64/);
                const result = await nix.run("nix", ["key", "convert-secret-to-public"], urlSafe);
                assert.notEqual(result.status, 0, "Nix accepted a url-safe secret key");
                assert.match(result.stderr, /invalid character in Base64 string/);
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
