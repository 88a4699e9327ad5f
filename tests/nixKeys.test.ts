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
        ["url-safe alphabet", `cache-1:${RFC_PUBLIC.toString("base64url")}`, /not valid base64/],
        ["unpadded", `cache-1:${RFC_PUBLIC.toString("base64").replace(/=+$/, "")}`, /not valid base64/],
        ["short public key", `cache-1:${RFC_PUBLIC.subarray(0, 31).toString("base64")}`, /expected 32 bytes, got 31/],
        ["name with space", `cache 1:${RFC_PUBLIC.toString("base64")}`, /whitespace/],
    ];
    for (const [what, text, message] of malformed) {
        test(`rejects a public key with ${what}`, () => {
            assert.throws(() => parseNixPublicKey(text), message);
        });
    }

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
