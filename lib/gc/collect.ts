// One garbage collection run over a bucket: read, decide (lib/gc/plan.ts), then sweep narinfos
// before NARs, re-listing the bucket before each deletion and checking it after, so that a push
// running at the same time ends with its whole closure in the cache or is reported.
import { listingKeyOf, narInfoKeyOf, type BucketObject } from "./bucketObjects";
import { inParallel } from "./parallel";
import {
    deletionLevels,
    findRoots,
    inFlightSince,
    liveClosure,
    parsePins,
    summarizeNarInfo,
    takeInventory,
    unnamedNars,
    type Inventory,
    type MissingReference,
    type NarInfoSummary,
} from "./plan";
import type { CacheBucketClient } from "./s3Bucket";

/** A narinfo summary remembered by object key and ETag, so an unchanged narinfo is not read again. */
export interface RememberedNarInfo {
    etag: string;
    summary: NarInfoSummary;
}

export interface Progress {
    phase: "reading narinfos" | "deleting narinfos" | "deleting NARs" | "checking";
    done: number;
    total: number;
}

export interface CollectOptions {
    /** The moment --keep-days counts back from (--now; the real time by default). */
    now: Date;
    /** The real time. Uploads in flight are judged by it, whatever `now` pretends. */
    wallClock: Date;
    keepDays: number;
    graceHours: number;
    /** Store paths kept with their closures, whatever their age (--root). */
    roots: string[];
    dryRun: boolean;
    /** Requests in flight at once while reading narinfos and deleting. */
    parallelism: number;
    /** Summaries from an earlier run; updated in place to the bucket's current narinfos. */
    remembered: Map<string, RememberedNarInfo>;
    onProgress?: (progress: Progress) => void;
}

export interface DanglingNarInfo {
    key: string;
    storePath: string;
    /** What this run deleted that the narinfo needs: referenced store paths, or its NAR. */
    missing: string[];
}

export interface CollectReport {
    dryRun: boolean;
    now: string;
    /** Narinfos in the bucket when the run started. */
    narinfos: number;
    /** Narinfos kept: the closure of the roots. */
    live: number;
    /** Narinfos young enough to be roots (or in flight), and store paths rooted by --root or pins. */
    roots: { recent: number; explicit: number };
    /** Why nothing was deleted: narinfos or pins the collector cannot read (fix or remove them). */
    blocked: string[];
    deletedNarinfos: string[];
    deletedListings: string[];
    deletedNars: string[];
    /** Unnamed NARs uploaded within the grace period (uploads in flight), kept for a later run. */
    youngUnnamedNars: string[];
    /** Narinfos condemned at first but spared because a narinfo pushed during the run needs them. */
    sparedDuringRun: string[];
    missingReferences: MissingReference[];
    /** Live narinfos whose NAR the bucket does not hold. */
    missingNars: { storePath: string; nar: string }[];
    /** --root or pinned store paths the cache does not hold. */
    missingRoots: string[];
    unreadableNarinfos: { key: string; problem: string }[];
    pinProblems: string[];
    /** Keys the collector does not delete: nix-cache-info, pins, and everything it does not know. */
    leftAlone: string[];
    /** Narinfos in the bucket after the run that need something the run deleted (push them again). */
    dangling: DanglingNarInfo[];
}

/** A run that failed part way, with what it had done by then (`report`, if it got that far). */
export class CollectFailure extends Error {
    constructor(
        readonly cause: Error,
        readonly report: CollectReport | undefined,
    ) {
        super(cause.message);
        this.name = "CollectFailure";
    }
}

/** A run's view of the bucket at one listing, with the summaries of its readable narinfos. */
interface Snapshot {
    inventory: Inventory;
    summaries: Map<string, NarInfoSummary>;
    unreadable: Map<string, string>;
    pinned: string[];
    pinProblems: string[];
}

class Run {
    readonly inFlight: Date;

    constructor(
        private readonly bucket: CacheBucketClient,
        private readonly options: CollectOptions,
    ) {
        this.inFlight = inFlightSince(options.wallClock, options.graceHours);
    }

    progress(phase: Progress["phase"], done: number, total: number): void {
        this.options.onProgress?.({ phase, done, total });
    }

    /** Lists the bucket and reads what changed since `remembered` (narinfos) and every pin. */
    async snapshot(): Promise<Snapshot> {
        const inventory = takeInventory(await this.bucket.list());
        const { remembered, parallelism } = this.options;
        const summaries = new Map<string, NarInfoSummary>();
        const unreadable = new Map<string, string>();
        const toRead: [string, BucketObject][] = [];
        for (const [hash, object] of inventory.narinfos) {
            const known = remembered.get(object.key);
            if (known !== undefined && known.etag === object.etag) {
                summaries.set(hash, known.summary);
            } else {
                toRead.push([hash, object]);
            }
        }
        let done = 0;
        await inParallel(toRead, parallelism, async ([hash, object]) => {
            const text = await this.bucket.read(object.key);
            try {
                const summary = summarizeNarInfo(text);
                summaries.set(hash, summary);
                remembered.set(object.key, { etag: object.etag, summary });
            } catch (error) {
                unreadable.set(object.key, (error as Error).message);
            }
            this.progress("reading narinfos", ++done, toRead.length);
        });
        const pinned: string[] = [];
        const pinProblems: string[] = [];
        for (const pin of inventory.pins) {
            const { paths, problems } = parsePins(await this.bucket.read(pin.key));
            pinned.push(...paths);
            pinProblems.push(...problems.map((problem) => `${pin.key}: ${problem}`));
        }
        return { inventory, summaries, unreadable, pinned, pinProblems };
    }

    /** The live set of a snapshot; `alsoRoots` are narinfos that must be kept whatever their age. */
    decide(snapshot: Snapshot, alsoRoots: Iterable<string>) {
        const { narinfos } = snapshot.inventory;
        const found = findRoots({
            narinfos,
            now: this.options.now,
            keepDays: this.options.keepDays,
            explicit: [...this.options.roots, ...snapshot.pinned],
            inFlightSince: this.inFlight,
        });
        const closure = liveClosure([...found.recent, ...found.explicit, ...alsoRoots], snapshot.summaries, (hash) => narinfos.has(hash));
        const condemned = new Set([...narinfos.keys()].filter((hash) => !closure.live.has(hash)));
        return { ...closure, condemned, missingRoots: found.missing, recent: found.recent.size, explicitRoots: found.explicit.size };
    }

    /** Deletes `keys`, recording each one the moment the server confirms it. */
    async remove(keys: string[], phase: Progress["phase"], deleted: string[], total: { done: number; of: number }): Promise<void> {
        await inParallel(keys, this.options.parallelism, async (key) => {
            await this.bucket.remove(key);
            deleted.push(key);
            this.progress(phase, ++total.done, total.of);
        });
    }
}

/** Narinfos of `later` that `earlier` did not have (or had with other content), by hash. */
function appeared(earlier: Inventory, later: Inventory): string[] {
    return [...later.narinfos].filter(([hash, object]) => earlier.narinfos.get(hash)?.etag !== object.etag).map(([hash]) => hash);
}

/** The NAR keys the snapshot's narinfos name, but for those in `without`. */
const namedNars = (snapshot: Snapshot, without: Set<string> = new Set()): Set<string> =>
    new Set([...snapshot.summaries].filter(([hash]) => !without.has(hash)).map(([, summary]) => summary.narKey));

/** `.ls` listings without a narinfo, uploaded before `inFlight`. */
const orphanListings = (snapshot: Snapshot, inFlight: Date): string[] =>
    [...snapshot.inventory.listings]
        .filter(([hash, object]) => !snapshot.inventory.narinfos.has(hash) && object.lastModified < inFlight)
        .map(([hash]) => listingKeyOf(hash));

/**
 * Collects garbage in one bucket. Throws a CollectFailure when the server fails; what was deleted
 * before then never breaks a remaining narinfo's closure (narinfos go referrers first, NARs only
 * after them).
 */
export async function collectGarbage(bucket: CacheBucketClient, options: CollectOptions): Promise<CollectReport> {
    const progress: { report?: CollectReport } = {};
    try {
        return await sweep(bucket, options, progress);
    } catch (error) {
        throw new CollectFailure(error as Error, progress.report);
    }
}

const sorted = (keys: string[]): string[] => [...keys].sort();

async function sweep(bucket: CacheBucketClient, options: CollectOptions, progress: { report?: CollectReport }): Promise<CollectReport> {
    const run = new Run(bucket, options);
    const first = await run.snapshot();
    const firstDecision = run.decide(first, []);
    const report: CollectReport = {
        dryRun: options.dryRun,
        now: options.now.toISOString(),
        narinfos: first.inventory.narinfos.size,
        live: firstDecision.live.size,
        roots: { recent: firstDecision.recent, explicit: firstDecision.explicitRoots },
        blocked: [],
        deletedNarinfos: [],
        deletedListings: [],
        deletedNars: [],
        youngUnnamedNars: [],
        sparedDuringRun: [],
        missingReferences: firstDecision.missingReferences,
        missingNars: [...firstDecision.live]
            .map((hash) => first.summaries.get(hash))
            .filter((summary) => summary !== undefined && !first.inventory.nars.has(summary.narKey))
            .map((summary) => ({ storePath: summary!.storePath, nar: summary!.narKey }))
            .sort((a, b) => a.storePath.localeCompare(b.storePath)),
        missingRoots: firstDecision.missingRoots,
        unreadableNarinfos: [...first.unreadable].map(([key, problem]) => ({ key, problem })).sort((a, b) => a.key.localeCompare(b.key)),
        pinProblems: first.pinProblems,
        leftAlone: sorted([...first.inventory.leftAlone, ...first.inventory.pins].map((object) => object.key)),
        dangling: [],
    };
    progress.report = report;
    // Forget narinfos that are gone, so the remembered summaries stay the size of the bucket.
    const current = new Set([...first.inventory.narinfos.values()].map((object) => object.key));
    for (const key of options.remembered.keys()) {
        if (!current.has(key)) {
            options.remembered.delete(key);
        }
    }

    // A narinfo whose references are unknown, or a pin that cannot be honoured, could make any
    // deletion break what it should keep: then nothing is deleted.
    if (first.unreadable.size > 0) {
        report.blocked.push(`${first.unreadable.size} narinfos cannot be read (see unreadableNarinfos): what they reference is unknown`);
    }
    if (first.pinProblems.length > 0) {
        report.blocked.push(`${first.pinProblems.length} pin lines name no store path (see pinProblems): what they pin is unknown`);
    }
    if (report.blocked.length > 0) {
        return report;
    }

    if (options.dryRun) {
        const nars = unnamedNars(first.inventory.nars, namedNars(first, firstDecision.condemned), run.inFlight);
        report.deletedNarinfos = sorted([...firstDecision.condemned].map(narInfoKeyOf));
        report.deletedListings = sorted([
            ...[...firstDecision.condemned].filter((hash) => first.inventory.listings.has(hash)).map(listingKeyOf),
            ...orphanListings(first, run.inFlight),
        ]);
        report.deletedNars = nars.deletable;
        report.youngUnnamedNars = nars.young;
        return report;
    }

    // Narinfos: re-list just before deleting. Nix skips uploading a path whose narinfo exists, so a
    // push since the first listing may reference a condemned narinfo: whatever appeared is a root.
    let latest = first;
    const deletedHashes = new Set<string>();
    if (firstDecision.condemned.size > 0) {
        const second = await run.snapshot();
        if (second.unreadable.size > 0) {
            report.blocked.push(`${second.unreadable.size} narinfos pushed during the run cannot be read: nothing deleted`);
            report.unreadableNarinfos = [...second.unreadable].map(([key, problem]) => ({ key, problem })).sort((a, b) => a.key.localeCompare(b.key));
            return report;
        }
        const decision = run.decide(second, appeared(first.inventory, second.inventory));
        report.sparedDuringRun = sorted([...firstDecision.condemned].filter((hash) => decision.live.has(hash)).map(narInfoKeyOf));
        const withListings = (hashes: string[]) => [
            ...hashes.map(narInfoKeyOf),
            ...hashes.filter((hash) => second.inventory.listings.has(hash)).map(listingKeyOf),
        ];
        const total = { done: 0, of: withListings([...decision.condemned]).length };
        for (const level of deletionLevels(decision.condemned, second.summaries)) {
            const done: string[] = [];
            try {
                await run.remove(withListings(level), "deleting narinfos", done, total);
            } finally {
                report.deletedNarinfos.push(...done.filter((key) => key.endsWith(".narinfo")));
                report.deletedListings.push(...done.filter((key) => key.endsWith(".ls")));
            }
            level.forEach((hash) => deletedHashes.add(hash));
        }
        report.deletedNarinfos.sort();
        report.deletedListings.sort();
        latest = second;
    }

    // NARs (and listings without a narinfo): only those no remaining narinfo names, old enough not
    // to be an upload in flight, and still unnamed after one more listing: a push may have reused
    // an existing NAR by its name, or put back a narinfo this run deleted.
    const candidates = unnamedNars(latest.inventory.nars, namedNars(latest, deletedHashes), run.inFlight);
    report.youngUnnamedNars = candidates.young;
    const listingCandidates = orphanListings(latest, run.inFlight).filter((key) => !report.deletedListings.includes(key));
    if (candidates.deletable.length > 0 || listingCandidates.length > 0) {
        const third = await run.snapshot();
        const stillNamed = namedNars(third);
        const nars = candidates.deletable.filter((key) => !stillNamed.has(key) && third.inventory.nars.has(key));
        const listings = orphanListings(third, run.inFlight).filter((key) => listingCandidates.includes(key));
        const deleted: string[] = [];
        try {
            await run.remove([...nars, ...listings], "deleting NARs", deleted, { done: 0, of: nars.length + listings.length });
        } finally {
            report.deletedNars = sorted(deleted.filter((key) => !key.endsWith(".ls")));
            report.deletedListings = sorted([...report.deletedListings, ...deleted.filter((key) => key.endsWith(".ls"))]);
        }
    }

    // Check: every narinfo now in the bucket still has what this run deleted of its closure.
    if (report.deletedNarinfos.length > 0 || report.deletedNars.length > 0) {
        run.progress("checking", 0, 1);
        const last = await run.snapshot();
        const goneNarinfos = new Set(report.deletedNarinfos);
        const goneNars = new Set(report.deletedNars);
        for (const [hash, summary] of last.summaries) {
            const missing = [
                ...summary.references.filter((reference) => goneNarinfos.has(narInfoKeyOf(reference.slice(0, 32))) && !last.inventory.narinfos.has(reference.slice(0, 32))),
                ...(goneNars.has(summary.narKey) && !last.inventory.nars.has(summary.narKey) ? [summary.narKey] : []),
            ];
            if (missing.length > 0) {
                report.dangling.push({ key: narInfoKeyOf(hash), storePath: summary.storePath, missing });
            }
        }
        report.dangling.sort((a, b) => a.key.localeCompare(b.key));
    }
    return report;
}
