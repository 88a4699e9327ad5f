// What the objects of a Nix binary cache bucket are, by key. The collector deletes only what it
// understands: narinfos (`<hash>.narinfo`), their listings (`<hash>.ls`) and NARs (`nar/...`).
// `nix-cache-info`, pins and every other key (`log/`, `realisations/`, `debuginfo/`, anything a
// later Nix adds) are left alone and reported.
import { CACHE_INFO_KEY } from "../cacheInfo";

/** One object as a bucket listing reports it. */
export interface BucketObject {
    key: string;
    size: number;
    lastModified: Date;
    etag: string;
}

/** Nix's base32 alphabet: digits and lowercase letters without e, o, t and u. */
const NIX_BASE32 = "[0-9a-df-np-sv-z]";
const STORE_HASH = new RegExp(`^${NIX_BASE32}{32}$`);
const NARINFO_KEY = new RegExp(`^(${NIX_BASE32}{32})\\.narinfo$`);
const LISTING_KEY = new RegExp(`^(${NIX_BASE32}{32})\\.ls$`);
/** Where writers put pins: objects under this prefix, one store path a line. */
export const PINS_PREFIX = "pins/";
export const NAR_PREFIX = "nar/";

export type ObjectKind =
    | { kind: "narinfo"; hash: string }
    | { kind: "listing"; hash: string }
    | { kind: "nar" }
    | { kind: "cacheInfo" }
    | { kind: "pin" }
    | { kind: "unknown" };

export function classifyKey(key: string): ObjectKind {
    const narinfo = NARINFO_KEY.exec(key);
    if (narinfo !== null) {
        return { kind: "narinfo", hash: narinfo[1]! };
    }
    const listing = LISTING_KEY.exec(key);
    if (listing !== null) {
        return { kind: "listing", hash: listing[1]! };
    }
    if (key.startsWith(NAR_PREFIX) && key.length > NAR_PREFIX.length && !key.slice(NAR_PREFIX.length).includes("/")) {
        return { kind: "nar" };
    }
    if (key === CACHE_INFO_KEY) {
        return { kind: "cacheInfo" };
    }
    if (key.startsWith(PINS_PREFIX) && key.length > PINS_PREFIX.length) {
        return { kind: "pin" };
    }
    return { kind: "unknown" };
}

export const narInfoKeyOf = (hash: string): string => `${hash}.narinfo`;
export const listingKeyOf = (hash: string): string => `${hash}.ls`;

/**
 * The hash part of a store path (`/nix/store/<hash>-<name>`) or of a base name (`<hash>-<name>`),
 * or undefined when it is neither.
 */
export function storePathHash(pathOrBaseName: string): string | undefined {
    const baseName = pathOrBaseName.slice(pathOrBaseName.lastIndexOf("/") + 1);
    const hash = baseName.slice(0, 32);
    return STORE_HASH.test(hash) && baseName[32] === "-" && baseName.length > 33 ? hash : undefined;
}
