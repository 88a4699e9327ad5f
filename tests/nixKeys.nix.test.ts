// The program's signing keys, checked by real Nix, 2.8 and 2.34 (tests/nixClients.ts): what the
// stack exports is what Nix derives, keys Nix makes pass through the project's parse and format
// functions unchanged, and the keys Nix refuses the project refuses too.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { formatNixPublicKey, formatNixSecretKey, parseNixPublicKey, parseNixSecretKey } from "../lib/nixKeys";
import { NIX_CLIENTS, type NixClient } from "./nixClients";
import { NEEDS_NIX, NixWorkspace, programOutputs } from "./nixSupport";

/**
 * How each Nix version says why it refuses a secret key. An empty name or key: Nix 2.8 throws
 * "secret key is corrupt" (NixOS/nix 2.8 src/libutil/crypto.cc, Key::Key); Nix 2.34 throws "key is
 * corrupt" under the trace "while decoding key named ''" (src/libutil/signature/local-keys.cc,
 * parseColonBase64; Key::Key adds the trace with a name it sets only after parsing succeeds). Both say "secret key is not valid" for a wrong length
 * (SecretKey::SecretKey) and "invalid character in Base64 string" for a character outside the
 * standard alphabet (2.8 src/libutil/util.cc `base64Decode`; today src/libutil/base-n.cc `base64::decode`).
 */
const SECRET_KEY_REFUSALS: Record<string, { corrupt: RegExp; length: RegExp; base64: RegExp }> = {
    "2.8": { corrupt: /^error: secret key is corrupt$/m, length: /^error: secret key is not valid$/m, base64: /^error: invalid character in Base64 string/m },
    "2.34": {
        corrupt: /while decoding key named ''\n\n\s*error: key is corrupt$/m,
        length: /^error: secret key is not valid$/m,
        base64: /while decoding key named ''\n\n\s*error: invalid character in Base64 string/m,
    },
};

// RFC 8032, section 7.1, TEST 2 as a Nix secret key: its standard base64 has '/' in the 2nd group
// and '+' in the 8th.
const RFC8032_TEST2 = `cache-1:${Buffer.from(
    "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb" +
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
    "hex",
).toString("base64")}`;

for (const { version, options, create } of NIX_CLIENTS) {
    describe(`signing keys, as Nix ${version} reads them`, options, () => {
        const refusals = SECRET_KEY_REFUSALS[version]!;
        /** Nix's public key for a secret key; the secret goes through stdin, never to disk. */
        const nixPublicKeyOf = async (nix: NixClient, secretKey: string) =>
            (await nix.ok("nix", ["key", "convert-secret-to-public"], secretKey)).trim();
        const generated = async (nix: NixClient, name: string) =>
            (await nix.ok("nix", ["key", "generate-secret", "--key-name", name])).trim();

        test("the exported secretKey gives exactly the exported publicKey in Nix", async (t) => {
            const program = await programOutputs();
            assert.match(program.secretKey, /^s3\.example\.org-1:/);
            assert.equal(await nixPublicKeyOf(await create(t), program.secretKey), program.publicKey);
        });

        test("a key pair made by nix key generate-secret round-trips through parse and format", async (t) => {
            const nix = await create(t);
            const secretText = await generated(nix, "cache.example.org-7");
            const publicText = await nixPublicKeyOf(nix, secretText);

            const secret = parseNixSecretKey(secretText);
            const pub = parseNixPublicKey(publicText);
            assert.equal(secret.name, "cache.example.org-7");
            assert.deepEqual(secret.publicKey, pub.publicKey, "the public half of Nix's secret key is Nix's public key");
            assert.equal(formatNixSecretKey(secret), secretText);
            assert.equal(formatNixPublicKey(pub), publicText);
            assert.equal(formatNixPublicKey(secret), publicText);
        });

        test("malformed secret keys are refused by Nix and by the project, with a clear error", async (t) => {
            const nix = await create(t);
            const encoded = (await generated(nix, "cache-1")).slice("cache-1:".length);
            const cases: [string, string, RegExp, RegExp][] = [
                ["no name", `:${encoded}`, /key name must not be empty/, refusals.corrupt],
                ["no name and no ':'", encoded, /expected NAME:BASE64, found no ':'/, refusals.corrupt],
                ["wrong length", `cache-1:${Buffer.from(encoded, "base64").subarray(1).toString("base64")}`, /expected 64 bytes, got 63/, refusals.length],
                ["bad base64", `cache-1:*${encoded.slice(1)}`, /not valid base64/, refusals.base64],
            ];
            for (const [what, key, projectMessage, nixMessage] of cases) {
                assert.throws(() => parseNixSecretKey(key), projectMessage, what);
                const result = await nix.run("nix", ["key", "convert-secret-to-public"], key);
                assert.notEqual(result.status, 0, `Nix accepted a secret key with ${what}`);
                assert.match(result.stderr, nixMessage, what);
            }
        });

        describe("a padded key in base64url's alphabet is refused by Nix and by the project", () => {
            // Nix decodes with the standard alphabet only and throws on any other character.
            test("in the standard alphabet, Nix and the project read it", async (t) => {
                assert.equal(await nixPublicKeyOf(await create(t), RFC8032_TEST2), "cache-1:PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=");
                assert.equal(formatNixSecretKey(parseNixSecretKey(RFC8032_TEST2)), RFC8032_TEST2);
            });

            for (const [standardCharacter, urlSafeCharacter] of [["/", "_"], ["+", "-"]]) {
                test(`with '${urlSafeCharacter}' for '${standardCharacter}' in a group other than the last`, async (t) => {
                    const urlSafe = RFC8032_TEST2.replaceAll(standardCharacter!, urlSafeCharacter!);
                    assert.ok(urlSafe.endsWith("==") && urlSafe.slice(0, -4).includes(urlSafeCharacter!), urlSafe);
                    assert.throws(() => parseNixSecretKey(urlSafe), /not valid base64/);
                    const result = await (await create(t)).run("nix", ["key", "convert-secret-to-public"], urlSafe);
                    assert.notEqual(result.status, 0, "Nix accepted a url-safe secret key");
                    assert.match(result.stderr, refusals.base64);
                });
            }
        });
    });
}

describe("malformed public keys are refused by the project, with a clear error", NEEDS_NIX, () => {
    let nix: NixWorkspace;
    let encoded: string;
    before(async () => {
        nix = await NixWorkspace.create();
        const secret = (await nix.ok("nix", ["key", "generate-secret", "--key-name", "cache-1"])).trim();
        encoded = (await nix.ok("nix", ["key", "convert-secret-to-public"], secret)).trim().slice("cache-1:".length);
    });
    after(async () => nix?.remove());
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
