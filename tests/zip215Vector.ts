// An Ed25519 signature that ZIP-215 verification accepts and strict verification refuses, made
// the way Wycheproof made tcId 151 of testvectors_v1/ed25519_test.json (C2SP/wycheproof, commit
// 5722833 "eddsa: add vectors for x = 0 with the sign bit set"): R is the identity point encoded
// with the sign bit of x set (y = 1, x = 0), and S = H(R || A || M) * a, which satisfies the
// verification equation because the identity stands for r = 0. RFC 8032 section 5.1.3 says such an
// R must fail to decode; ZIP-215 (and @noble/ed25519's default `zip215: true`) decodes it anyway.
// libsodium's crypto_sign_verify_detached, which Nix uses (NixOS/nix src/libstore/crypto.cc
// `verifyDetached` in 2.8, src/libutil/signature/local-keys.cc today), refuses it: R must not be of
// small order (jedisct1/libsodium src/libsodium/crypto_sign/ed25519/ref10/open.c,
// `_crypto_sign_ed25519_verify_detached`, `ge25519_has_small_order(&expected_r)`).
import { createHash } from "node:crypto";

/** The order of Ed25519's base point (RFC 8032, section 5.1: L). */
const GROUP_ORDER = 2n ** 252n + 27742317777372353535851937790883648493n;

const IDENTITY_WITH_X_SIGN_BIT = Buffer.from(`01${"00".repeat(30)}80`, "hex");

const littleEndianToNumber = (bytes: Buffer) => BigInt(`0x${Buffer.from(bytes).reverse().toString("hex") || "0"}`);

const numberToLittleEndian32 = (value: bigint) => Buffer.from(value.toString(16).padStart(64, "0"), "hex").reverse();

/** The ZIP-215-only signature of `message` by the key with this 32-byte seed and public key. */
export function zip215OnlySignature(message: Uint8Array, seed: Buffer, publicKey: Buffer): Buffer {
    // RFC 8032, section 5.1.5: the secret scalar is the pruned first half of SHA-512(seed).
    const digest = createHash("sha512").update(seed).digest();
    digest[0]! &= 248;
    digest[31]! &= 127;
    digest[31]! |= 64;
    const secretScalar = littleEndianToNumber(digest.subarray(0, 32));
    const challenge = littleEndianToNumber(createHash("sha512").update(IDENTITY_WITH_X_SIGN_BIT).update(publicKey).update(message).digest());
    const s = ((challenge % GROUP_ORDER) * secretScalar) % GROUP_ORDER;
    return Buffer.concat([IDENTITY_WITH_X_SIGN_BIT, numberToLittleEndian32(s)]);
}
