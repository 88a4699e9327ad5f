// Nix signing keys: conversion from the PEM pair `@pulumi/tls` produces, and Nix's text formats.
//   secret key: NAME:BASE64(seed32 || public32)
//   public key: NAME:BASE64(public32)
import { createHash, createPrivateKey, createPublicKey } from "node:crypto";
import * as ed from "@noble/ed25519";

// noble's synchronous API needs a SHA-512; node's is the well-kept one we already have.
ed.hashes.sha512 = (message: Uint8Array) => new Uint8Array(createHash("sha512").update(message).digest());

const SEED_BYTES = 32;
const PUBLIC_KEY_BYTES = 32;

export interface NixSecretKey {
    name: string;
    seed: Uint8Array;
    publicKey: Uint8Array;
}

export interface NixPublicKey {
    name: string;
    publicKey: Uint8Array;
}

/** Why a Nix key name is unusable, or undefined when it is fine. */
export function keyNameProblem(name: string): string | undefined {
    if (name.length === 0) {
        return "must not be empty";
    }
    if (name.includes(":")) {
        return "must not contain ':' (Nix separates the name from the key with it)";
    }
    if (/\s/.test(name)) {
        return "must not contain whitespace";
    }
    return undefined;
}

function assertKeyName(name: string, what: string): void {
    const problem = keyNameProblem(name);
    if (problem !== undefined) {
        throw new Error(`${what}: the key name ${problem}`);
    }
}

/** Decodes standard, padded base64 and refuses anything else (url-safe alphabet, spaces, junk). */
export function decodeStrictBase64(text: string, what: string): Uint8Array {
    if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) {
        throw new Error(`${what}: not valid base64 (standard alphabet, padded)`);
    }
    return new Uint8Array(Buffer.from(text, "base64"));
}

export function encodeBase64(bytes: Uint8Array): string {
    return Buffer.from(bytes).toString("base64");
}

/** Splits Nix's `NAME:BASE64` form (keys and signatures) into a checked name and the encoded part. */
export function splitNamedKey(text: string, what: string): [string, string] {
    const colon = text.indexOf(":");
    if (colon < 0) {
        throw new Error(`${what}: expected NAME:BASE64, found no ':'`);
    }
    const name = text.slice(0, colon);
    assertKeyName(name, what);
    return [name, text.slice(colon + 1)];
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
    return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** The Ed25519 public key for a 32-byte seed, as noble computes it. */
export function publicKeyFromSeed(seed: Uint8Array): Uint8Array {
    if (seed.length !== SEED_BYTES) {
        throw new Error(`an Ed25519 seed has ${SEED_BYTES} bytes, got ${seed.length}`);
    }
    return ed.getPublicKey(seed);
}

export function formatNixSecretKey(key: NixSecretKey): string {
    assertKeyName(key.name, "Nix secret key");
    const combined = new Uint8Array(SEED_BYTES + PUBLIC_KEY_BYTES);
    combined.set(key.seed, 0);
    combined.set(key.publicKey, SEED_BYTES);
    return `${key.name}:${encodeBase64(combined)}`;
}

export function formatNixPublicKey(key: NixPublicKey): string {
    assertKeyName(key.name, "Nix public key");
    return `${key.name}:${encodeBase64(key.publicKey)}`;
}

/** Parses `NAME:BASE64(seed || public)` and checks that the public half belongs to the seed. */
export function parseNixSecretKey(text: string): NixSecretKey {
    const what = "Nix secret key";
    const [name, encoded] = splitNamedKey(text.trim(), what);
    const bytes = decodeStrictBase64(encoded, what);
    if (bytes.length !== SEED_BYTES + PUBLIC_KEY_BYTES) {
        throw new Error(`${what}: expected ${SEED_BYTES + PUBLIC_KEY_BYTES} bytes, got ${bytes.length}`);
    }
    const seed = bytes.slice(0, SEED_BYTES);
    const publicKey = bytes.slice(SEED_BYTES);
    if (!bytesEqual(publicKeyFromSeed(seed), publicKey)) {
        throw new Error(`${what}: the public half does not belong to the secret seed`);
    }
    return { name, seed, publicKey };
}

export function parseNixPublicKey(text: string): NixPublicKey {
    const what = "Nix public key";
    const [name, encoded] = splitNamedKey(text.trim(), what);
    const publicKey = decodeStrictBase64(encoded, what);
    if (publicKey.length !== PUBLIC_KEY_BYTES) {
        throw new Error(`${what}: expected ${PUBLIC_KEY_BYTES} bytes, got ${publicKey.length}`);
    }
    return { name, publicKey };
}

export interface NixKeyPair {
    secretKey: string;
    publicKey: string;
}

/**
 * Converts the PKCS#8 / SPKI PEM pair of an Ed25519 key into Nix's formats. The public key is
 * derived again from the seed with noble and must equal the SPKI one: a mismatch means the key
 * material is corrupt, and deploying it would publish a key that verifies nothing.
 */
export function nixKeyPairFromPem(name: string, privateKeyPem: string, publicKeyPem: string): NixKeyPair {
    const privateJwk = createPrivateKey(privateKeyPem).export({ format: "jwk" });
    const publicJwk = createPublicKey(publicKeyPem).export({ format: "jwk" });
    if (privateJwk.crv !== "Ed25519" || publicJwk.crv !== "Ed25519" || !privateJwk.d || !publicJwk.x) {
        throw new Error("signing key: expected an Ed25519 key pair (tls.PrivateKey algorithm ED25519)");
    }
    const seed = new Uint8Array(Buffer.from(privateJwk.d, "base64url"));
    const spkiPublicKey = new Uint8Array(Buffer.from(publicJwk.x, "base64url"));
    const derived = publicKeyFromSeed(seed);
    if (!bytesEqual(derived, spkiPublicKey)) {
        throw new Error(
            "signing key: the public key derived from the private key does not match the key's SPKI public key; " +
                "the key material in state is corrupt. Replace it: pulumi up --replace <the SigningKey's PrivateKey URN>",
        );
    }
    return {
        secretKey: formatNixSecretKey({ name, seed, publicKey: derived }),
        publicKey: formatNixPublicKey({ name, publicKey: derived }),
    };
}
