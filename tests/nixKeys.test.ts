import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { describe, test } from "node:test";
import {
    decodeStrictBase64,
    formatNixPublicKey,
    formatNixSecretKey,
    keyNameProblem,
    nixKeyPairFromPem,
    parseNixPublicKey,
    parseNixSecretKey,
    publicKeyFromSeed,
} from "../lib/nixKeys";

// RFC 8032, section 7.1, TEST 1: a known answer that does not come from the code under test.
const RFC_SEED = Buffer.from("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "hex");
const RFC_PUBLIC = Buffer.from("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "hex");
const RFC_SECRET_TEXT = `cache.example.org-1:${Buffer.concat([RFC_SEED, RFC_PUBLIC]).toString("base64")}`;
const RFC_PUBLIC_TEXT = `cache.example.org-1:${RFC_PUBLIC.toString("base64")}`;
// RFC 8032, section 7.1, TEST 2: its standard base64 has '/' and '+' in groups other than the last.
const RFC_TEST2_SEED = Buffer.from("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", "hex");
const RFC_TEST2_PUBLIC = Buffer.from("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "hex");

/**
 * The bytes in base64url's alphabet (RFC 4648, section 5) but padded, with '-' or '_' in a group
 * other than the last: Node's "base64" decoder reads this as the same bytes, while Nix's decoder
 * throws "invalid character in Base64 string" (NixOS/nix src/libutil/util.cc `base64Decode` in 2.8,
 * src/libutil/base-n.cc `base64::decode` today). Only the alphabet is wrong, so only a check of the
 * alphabet in every group can refuse it.
 */
function paddedUrlSafe(bytes: Buffer, urlSafeCharacter: "-" | "_"): string {
    const standard = bytes.toString("base64");
    const text = standard.replace(urlSafeCharacter === "-" ? /\+/g : /\//g, urlSafeCharacter);
    const lastGroupStart = text.length - 4;
    assert.ok(text.endsWith("="), `${text} should be padded`);
    assert.ok(text.indexOf(urlSafeCharacter) >= 0 && text.indexOf(urlSafeCharacter) < lastGroupStart, `${text} should have '${urlSafeCharacter}' before its last group`);
    assert.equal(text.slice(lastGroupStart), standard.slice(lastGroupStart), "the last group should be valid standard base64");
    return text;
}

describe("Nix key formats", () => {
    test("derives the RFC 8032 public key from its seed", () => {
        assert.deepEqual(Buffer.from(publicKeyFromSeed(RFC_SEED)), RFC_PUBLIC);
    });

    test("formats NAME:BASE64(seed || public) and NAME:BASE64(public)", () => {
        const key = { name: "cache.example.org-1", seed: RFC_SEED, publicKey: RFC_PUBLIC };
        assert.equal(formatNixSecretKey(key), RFC_SECRET_TEXT);
        assert.equal(formatNixPublicKey(key), RFC_PUBLIC_TEXT);
    });

    test("parses what it formats, and trims a trailing newline as in a key file", () => {
        const secret = parseNixSecretKey(`${RFC_SECRET_TEXT}\n`);
        assert.equal(secret.name, "cache.example.org-1");
        assert.deepEqual(Buffer.from(secret.seed), RFC_SEED);
        assert.deepEqual(Buffer.from(secret.publicKey), RFC_PUBLIC);
        const pub = parseNixPublicKey(RFC_PUBLIC_TEXT);
        assert.deepEqual(Buffer.from(pub.publicKey), RFC_PUBLIC);
    });

    const malformed: [string, string, RegExp][] = [
        ["no name", `:${RFC_PUBLIC.toString("base64")}`, /key name must not be empty/],
        ["no colon", RFC_PUBLIC.toString("base64"), /found no ':'/],
        ["bad base64", "cache-1:not*base64", /not valid base64/],
        ["'_' of the url-safe alphabet in a group other than the last, padded", `cache-1:${paddedUrlSafe(RFC_PUBLIC, "_")}`, /not valid base64/],
        ["'-' of the url-safe alphabet in a group other than the last, padded", `cache-1:${paddedUrlSafe(RFC_TEST2_PUBLIC, "-")}`, /not valid base64/],
        ["unpadded", `cache-1:${RFC_PUBLIC.toString("base64").replace(/=+$/, "")}`, /not valid base64/],
        ["short public key", `cache-1:${RFC_PUBLIC.subarray(0, 31).toString("base64")}`, /expected 32 bytes, got 31/],
        ["name with space", `cache 1:${RFC_PUBLIC.toString("base64")}`, /whitespace/],
    ];
    for (const [what, text, message] of malformed) {
        test(`rejects a public key with ${what}`, () => {
            assert.throws(() => parseNixPublicKey(text), message);
        });
    }

    test("the same public keys in the standard alphabet are accepted, so only the alphabet is refused above", () => {
        assert.deepEqual(Buffer.from(parseNixPublicKey(`cache-1:${RFC_PUBLIC.toString("base64")}`).publicKey), RFC_PUBLIC);
        assert.deepEqual(Buffer.from(parseNixPublicKey(`cache-1:${RFC_TEST2_PUBLIC.toString("base64")}`).publicKey), RFC_TEST2_PUBLIC);
    });

    test("rejects a padded secret key with '-' or '_' in a group other than the last, and accepts it in the standard alphabet", () => {
        const combined = Buffer.concat([RFC_TEST2_SEED, RFC_TEST2_PUBLIC]);
        for (const urlSafeCharacter of ["-", "_"] as const) {
            assert.throws(() => parseNixSecretKey(`cache-1:${paddedUrlSafe(combined, urlSafeCharacter)}`), /not valid base64/);
        }
        assert.deepEqual(Buffer.from(parseNixSecretKey(`cache-1:${combined.toString("base64")}`).seed), RFC_TEST2_SEED);
    });

    test("rejects a secret key of the wrong length", () => {
        assert.throws(() => parseNixSecretKey(`cache-1:${RFC_SEED.toString("base64")}`), /expected 64 bytes, got 32/);
    });

    test("rejects a secret key whose public half belongs to another seed", () => {
        const other = Buffer.from(RFC_PUBLIC);
        other[0] ^= 1;
        const text = `cache-1:${Buffer.concat([RFC_SEED, other]).toString("base64")}`;
        assert.throws(() => parseNixSecretKey(text), /public half does not belong/);
    });

    test("decodeStrictBase64 accepts every padding form", () => {
        assert.deepEqual(Buffer.from(decodeStrictBase64("YQ==", "x")), Buffer.from("a"));
        assert.deepEqual(Buffer.from(decodeStrictBase64("YWI=", "x")), Buffer.from("ab"));
        assert.deepEqual(Buffer.from(decodeStrictBase64("YWJj", "x")), Buffer.from("abc"));
    });

    test("keyNameProblem explains each rule", () => {
        assert.equal(keyNameProblem("cache.example.org-1"), undefined);
        assert.match(keyNameProblem("") ?? "", /empty/);
        assert.match(keyNameProblem("a:b") ?? "", /':'/);
        assert.match(keyNameProblem("a\tb") ?? "", /whitespace/);
    });
});

describe("nixKeyPairFromPem", () => {
    const pemPair = () => {
        const pair = generateKeyPairSync("ed25519");
        return {
            privateKeyPem: pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
            publicKeyPem: pair.publicKey.export({ type: "spki", format: "pem" }).toString(),
        };
    };
    // Read the raw key bytes straight from the DER layouts in NOTES.md, independently of the code.
    const derTail = (pem: string) =>
        Buffer.from(pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s/g, ""), "base64").subarray(-32);

    test("converts a PKCS#8 / SPKI pair into Nix's formats", () => {
        const { privateKeyPem, publicKeyPem } = pemPair();
        const seed = derTail(privateKeyPem);
        const pub = derTail(publicKeyPem);
        const pair = nixKeyPairFromPem("cache.example.org-1", privateKeyPem, publicKeyPem);
        assert.equal(pair.secretKey, `cache.example.org-1:${Buffer.concat([seed, pub]).toString("base64")}`);
        assert.equal(pair.publicKey, `cache.example.org-1:${pub.toString("base64")}`);
    });

    test("fails clearly when the public key is not the private key's", () => {
        const a = pemPair();
        const b = pemPair();
        assert.throws(
            () => nixKeyPairFromPem("cache-1", a.privateKeyPem, b.publicKeyPem),
            /does not match the key's SPKI public key/,
        );
    });

    test("refuses a key that is not Ed25519", () => {
        const ecdsa = generateKeyPairSync("ec", { namedCurve: "P-256" });
        assert.throws(
            () =>
                nixKeyPairFromPem(
                    "cache-1",
                    ecdsa.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
                    ecdsa.publicKey.export({ type: "spki", format: "pem" }).toString(),
                ),
            /expected an Ed25519 key pair/,
        );
    });
});
