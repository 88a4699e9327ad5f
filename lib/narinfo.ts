// Signatures on narinfo files. Nix does not sign the narinfo text: it signs a fingerprint of the
// fields that say what a store path is,
//   1;<store path>;<NarHash>;<NarSize>;<references as full store paths, sorted, comma-joined>
// so URL, Compression, FileHash and Deriver may change without invalidating a signature.
import * as ed from "@noble/ed25519";
import { decodeStrictBase64, encodeBase64, parseNixPublicKey, parseNixSecretKey, splitNamedKey } from "./nixKeys";

const SIGNATURE_BYTES = 64;
// Nix writes NarHash as sha256 in its own base32 alphabet (no e, o, t, u); the fingerprint uses
// exactly that form, so any other spelling would produce a different message.
const NAR_HASH = /^sha256:[0-9abcdfghijklmnpqrsvwxyz]{52}$/;

export interface NarInfo {
    storePath: string;
    /** Where the (compressed) NAR is, relative to the cache: `nar/<FileHash>.nar.<ext>`. */
    url: string;
    narHash: string;
    narSize: number;
    /** Base names (`<hash>-<name>`), as a narinfo lists them. */
    references: string[];
    /** `NAME:BASE64(signature)`, one per `Sig:` line. */
    signatures: string[];
}

/** The `Name: value` lines of a narinfo: each field's values, and its one value or why not. */
export function readNarInfoFields(text: string): { all: (name: string) => string[]; single: (name: string) => string } {
    const fields = new Map<string, string[]>();
    for (const line of text.split("\n").filter((line) => line !== "")) {
        const colon = line.indexOf(":");
        if (colon <= 0) {
            throw new Error(`narinfo: expected 'Name: value', got '${line}'`);
        }
        const name = line.slice(0, colon);
        fields.set(name, [...(fields.get(name) ?? []), line.slice(colon + 1).replace(/^ /, "")]);
    }
    const all = (name: string): string[] => fields.get(name) ?? [];
    const single = (name: string): string => {
        const values = all(name);
        if (values.length !== 1) {
            throw new Error(`narinfo: expected one ${name} line, found ${values.length}`);
        }
        return values[0]!;
    };
    return { all, single };
}

/** The StorePath, URL and References of a narinfo, which Nix needs in every one. */
export function readNarInfoLinks(fields: ReturnType<typeof readNarInfoFields>): { storePath: string; url: string; references: string[] } {
    const storePath = fields.single("StorePath");
    if (!storePath.startsWith("/")) {
        throw new Error(`narinfo: StorePath must be an absolute path, got '${storePath}'`);
    }
    // Nix refuses a narinfo without a URL as corrupt (src/libstore/nar-info.cc, NarInfo::NarInfo).
    const url = fields.single("URL");
    if (url === "") {
        throw new Error("narinfo: URL must not be empty");
    }
    const references = fields.all("References").flatMap((value) => value.split(" ")).filter((ref) => ref !== "");
    const badReference = references.find((ref) => ref.includes("/"));
    if (badReference !== undefined) {
        throw new Error(`narinfo: References lists base names, got '${badReference}'`);
    }
    return { storePath, url, references };
}

/** Reads the fields a signature covers, plus the signatures, from a narinfo's text. */
export function parseNarInfo(text: string): NarInfo {
    const fields = readNarInfoFields(text);
    const { single } = fields;
    const { storePath, url, references } = readNarInfoLinks(fields);
    const narHash = single("NarHash");
    if (!NAR_HASH.test(narHash)) {
        throw new Error(`narinfo: NarHash must be sha256:<52 base32 characters> as Nix writes it, got '${narHash}'`);
    }
    const narSize = single("NarSize");
    if (!/^[0-9]+$/.test(narSize)) {
        throw new Error(`narinfo: NarSize must be a whole number, got '${narSize}'`);
    }
    return { storePath, url, narHash, narSize: Number(narSize), references, signatures: fields.all("Sig") };
}

/** The message Nix signs for a store path; `storeDir` turns reference base names into store paths. */
export function narInfoFingerprint(info: NarInfo, storeDir: string): string {
    if (!info.storePath.startsWith(`${storeDir}/`)) {
        throw new Error(`narinfo: StorePath '${info.storePath}' is not in the store ${storeDir}`);
    }
    const references = info.references.map((ref) => `${storeDir}/${ref}`).sort();
    return `1;${info.storePath};${info.narHash};${info.narSize};${references.join(",")}`;
}

const fingerprintBytes = (info: NarInfo, storeDir: string) =>
    new TextEncoder().encode(narInfoFingerprint(info, storeDir));

/** A `Sig:` value (`NAME:BASE64`) for the narinfo, made with a Nix secret key (`NAME:BASE64(seed || public)`). */
export function signNarInfo(info: NarInfo, storeDir: string, secretKey: string): string {
    const key = parseNixSecretKey(secretKey);
    return `${key.name}:${encodeBase64(ed.sign(fingerprintBytes(info, storeDir), key.seed))}`;
}

/**
 * Whether a signature of the narinfo is valid under one of the trusted public keys, as Nix decides
 * with `require-sigs`: a signature counts only under the trusted key of the same name.
 */
export function narInfoIsSignedBy(info: NarInfo, storeDir: string, trustedPublicKeys: string[]): boolean {
    const message = fingerprintBytes(info, storeDir);
    const trusted = new Map(trustedPublicKeys.map(parseNixPublicKey).map((key) => [key.name, key.publicKey]));
    return info.signatures.some((signature) => {
        const what = "narinfo signature";
        const [name, encoded] = splitNamedKey(signature, what);
        const bytes = decodeStrictBase64(encoded, what);
        if (bytes.length !== SIGNATURE_BYTES) {
            throw new Error(`${what}: expected ${SIGNATURE_BYTES} bytes, got ${bytes.length}`);
        }
        const publicKey = trusted.get(name);
        // Strict checks, like libsodium's crypto_sign_verify_detached in Nix; noble defaults to ZIP-215's laxer ones.
        return publicKey !== undefined && ed.verify(bytes, message, publicKey, { zip215: false });
    });
}
