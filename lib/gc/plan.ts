// The collector's decisions, as pure functions of what the bucket holds: which narinfos are roots,
// which are live (the closure of the roots over References), and what a sweep deletes in which
// order. Nothing here talks to a server.
import { readNarInfoFields, readNarInfoLinks } from "../narinfo";
import { classifyKey, storePathHash, type BucketObject } from "./bucketObjects";

/** What the collector keeps of a narinfo: who it is, what it needs, where its NAR is. */
export interface NarInfoSummary {
    storePath: string;
    /** Base names (`<hash>-<name>`) of the store paths it references, itself excluded. */
    references: string[];
    /** The NAR's key in the bucket (the narinfo's URL). */
    narKey: string;
}

/** The store path hash of a validated base name. */
const hashOf = (baseName: string): string => baseName.slice(0, 32);

/**
 * Reads a narinfo for the collector; throws why not (such a narinfo is left alone). Only the fields
 * that link paths are read, so a narinfo Nix accepts (any NarHash spelling, fields added later) is
 * never mistaken for an unreadable one whose references would then go unprotected.
 */
export function summarizeNarInfo(text: string): NarInfoSummary {
    const info = readNarInfoLinks(readNarInfoFields(text));
    const self = storePathHash(info.storePath);
    if (self === undefined) {
        throw new Error(`narinfo: '${info.storePath}' is not a store path`);
    }
    const invalid = info.references.find((name) => storePathHash(name) === undefined);
    if (invalid !== undefined) {
        throw new Error(`narinfo: reference '${invalid}' is not a store path base name`);
    }
    // URL is relative to the cache root; Nix writes nar/<FileHash>.nar.<ext>. A NAR anywhere else
    // (another host, another prefix) is not one the collector can tell is named, so such a
    // narinfo counts as unreadable.
    const narKey = info.url.replace(/^\/+/, "");
    if (classifyKey(narKey).kind !== "nar") {
        throw new Error(`narinfo: URL '${info.url}' is not a NAR of this cache (nar/<file>)`);
    }
    return { storePath: info.storePath, references: info.references.filter((name) => hashOf(name) !== self), narKey };
}

/** The bucket's objects by what they are. */
export interface Inventory {
    /** By store path hash. */
    narinfos: Map<string, BucketObject>;
    /** By store path hash. */
    listings: Map<string, BucketObject>;
    /** By key. */
    nars: Map<string, BucketObject>;
    pins: BucketObject[];
    /** nix-cache-info and every key the collector does not understand: never deleted. */
    leftAlone: BucketObject[];
}

export function takeInventory(objects: Iterable<BucketObject>): Inventory {
    const inventory: Inventory = { narinfos: new Map(), listings: new Map(), nars: new Map(), pins: [], leftAlone: [] };
    for (const object of objects) {
        const kind = classifyKey(object.key);
        switch (kind.kind) {
            case "narinfo":
                inventory.narinfos.set(kind.hash, object);
                break;
            case "listing":
                inventory.listings.set(kind.hash, object);
                break;
            case "nar":
                inventory.nars.set(object.key, object);
                break;
            case "pin":
                inventory.pins.push(object);
                break;
            case "cacheInfo":
            case "unknown":
                inventory.leftAlone.push(object);
                break;
        }
    }
    return inventory;
}

/**
 * The store path a pin line names: an absolute store path, or a file in one (`/nix/store/<hash>-<name>/bin/x`,
 * a trailing `/`), cut after its `<hash>-<name>` component; undefined when the line names none.
 */
export function pinnedStorePath(line: string): string | undefined {
    if (!line.startsWith("/")) {
        return undefined;
    }
    const parts = line.split("/");
    const at = parts.findIndex((part, index) => index > 1 && storePathHash(part) !== undefined);
    return at < 0 ? undefined : parts.slice(0, at + 1).join("/");
}

/** The store paths of a pin object: one a line; blank lines and `#` comments are skipped. */
export function parsePins(text: string): { paths: string[]; problems: string[] } {
    const paths: string[] = [];
    const problems: string[] = [];
    text.split("\n").forEach((raw, index) => {
        const line = raw.replace(/#.*$/, "").trim();
        if (line === "") {
            return;
        }
        const path = pinnedStorePath(line);
        if (path === undefined) {
            problems.push(`line ${index + 1}: '${line}' is not a store path such as /nix/store/<hash>-<name>`);
            return;
        }
        paths.push(path);
    });
    return { paths, problems };
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export interface RootsInput {
    narinfos: Map<string, BucketObject>;
    now: Date;
    keepDays: number;
    /** Store paths given with --root and read from pins. */
    explicit: string[];
    /** Narinfos uploaded at or after this moment are roots too, whatever `now` says: pushes in flight. */
    inFlightSince: Date;
}

/**
 * Every narinfo uploaded within keepDays of now or since `inFlightSince` (`recent`), and every
 * explicit root the cache holds (`explicit`); `missing` are the explicit roots it does not hold.
 */
export function findRoots({ narinfos, now, keepDays, explicit, inFlightSince }: RootsInput): {
    recent: Set<string>;
    explicit: Set<string>;
    missing: string[];
} {
    const since = Math.min(now.getTime() - keepDays * DAY_MS, inFlightSince.getTime());
    const recent = new Set([...narinfos].filter(([, object]) => object.lastModified.getTime() >= since).map(([hash]) => hash));
    const held = new Set<string>();
    const missing = new Set<string>();
    for (const path of explicit) {
        const hash = storePathHash(path)!;
        if (narinfos.has(hash)) {
            held.add(hash);
        } else {
            missing.add(path);
        }
    }
    return { recent, explicit: held, missing: [...missing].sort() };
}

export interface MissingReference {
    storePath: string;
    reference: string;
}

/**
 * The closure of `roots` over References. A reference to a path the cache does not hold is
 * reported, not fatal: the rest of the closure is still kept. A root whose narinfo could not be
 * read stays live, but its references are unknown.
 */
export function liveClosure(
    roots: Iterable<string>,
    summaries: Map<string, NarInfoSummary>,
    present: (hash: string) => boolean,
): { live: Set<string>; missingReferences: MissingReference[] } {
    const live = new Set<string>();
    const missingReferences: MissingReference[] = [];
    const pending = [...roots];
    while (pending.length > 0) {
        const hash = pending.pop()!;
        if (live.has(hash)) {
            continue;
        }
        live.add(hash);
        const summary = summaries.get(hash);
        if (summary === undefined) {
            continue;
        }
        for (const reference of summary.references) {
            if (!present(hashOf(reference))) {
                missingReferences.push({ storePath: summary.storePath, reference });
            } else if (!live.has(hashOf(reference))) {
                pending.push(hashOf(reference));
            }
        }
    }
    missingReferences.sort((a, b) => a.storePath.localeCompare(b.storePath) || a.reference.localeCompare(b.reference));
    return { live, missingReferences };
}

/**
 * The condemned narinfos in deletion order: each level holds narinfos that no narinfo of a later
 * level references. Deleting level by level (referrers first) means that at every moment of the
 * sweep, and after a crash in the middle of it, every narinfo still in the bucket has all the
 * references it had.
 */
export function deletionLevels(condemned: Set<string>, summaries: Map<string, NarInfoSummary>): string[][] {
    const referrers = new Map<string, number>([...condemned].map((hash) => [hash, 0]));
    for (const hash of condemned) {
        for (const reference of (summaries.get(hash)?.references ?? []).map(hashOf)) {
            if (referrers.has(reference)) {
                referrers.set(reference, referrers.get(reference)! + 1);
            }
        }
    }
    const levels: string[][] = [];
    let ready = [...condemned].filter((hash) => referrers.get(hash) === 0);
    const placed = new Set<string>();
    while (ready.length > 0) {
        levels.push(ready.sort());
        ready.forEach((hash) => placed.add(hash));
        const next: string[] = [];
        for (const hash of ready) {
            for (const reference of (summaries.get(hash)?.references ?? []).map(hashOf)) {
                if (referrers.has(reference)) {
                    const left = referrers.get(reference)! - 1;
                    referrers.set(reference, left);
                    if (left === 0) {
                        next.push(reference);
                    }
                }
            }
        }
        ready = next;
    }
    // Store paths cannot reference each other in a cycle; should a bucket hold one anyway, its
    // members go last, together.
    const rest = [...condemned].filter((hash) => !placed.has(hash)).sort();
    return rest.length > 0 ? [...levels, rest] : levels;
}

/** The moment before which an upload is no longer in flight: `graceHours` before the real time. */
export const inFlightSince = (wallClock: Date, graceHours: number): Date => new Date(wallClock.getTime() - graceHours * HOUR_MS);

/**
 * The NARs no remaining narinfo names. Those uploaded since `inFlight` are spared: Nix uploads a NAR
 * before its narinfo, so a young unnamed NAR is most likely an upload in flight.
 */
export function unnamedNars(
    nars: Map<string, BucketObject>,
    namedKeys: Set<string>,
    inFlight: Date,
): { deletable: string[]; young: string[] } {
    const before = inFlight.getTime();
    const deletable: string[] = [];
    const young: string[] = [];
    for (const [key, object] of nars) {
        if (namedKeys.has(key)) {
            continue;
        }
        (object.lastModified.getTime() < before ? deletable : young).push(key);
    }
    return { deletable: deletable.sort(), young: young.sort() };
}
