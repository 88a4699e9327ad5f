// One garbage collection run over a bucket: read, decide (lib/gc/plan.ts), then sweep narinfos
// before NARs, re-listing the bucket before each deletion and checking it after, so that a push
// running at the same time ends with its whole closure in the cache or is reported.
import { listingKeyOf, narInfoKeyOf, type BucketObject } from "./bucketObjects";
import {
    deletionLevels,
    findRoots,
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
    phase: "listing" | "reading narinfos" | "deleting narinfos" | "deleting NARs" | "checking";
    done: number;
    total: number;
}

export interface CollectOptions {
    now: Date;
    keepDays: number;
    graceHours: number;
    /** Store paths kept with their closures, whatever their age (--root). */
    roots: string[];
    dryRun: boolean;
    /** Requests in flight at once while reading narinfos. */
    parallelism: number;
    /** Summaries from an earlier run; updated in place to the bucket's current narinfos. */
    remembered: Map<string, RememberedNarInfo>;
    onProgress?: (progress: Progress) => void;
}

export interface DanglingNarInfo {
    key: string;
    storePath: string;
    /** Referenced store paths, or the NAR, that the bucket no longer holds. */
    missing: string[];
}

export interface CollectReport {
    dryRun: boolean;
    now: string;
    /** Narinfos in the bucket when the run started. */
    narinfos: number;
    /** Narinfos kept: the closure of the roots. */
    live: number;
    /** Narinfos young enough to be roots, and store paths rooted by --root or pins. */
    roots: { recent: number; explicit: number };
    deletedNarinfos: string[];
    deletedListings: string[];
    deletedNars: string[];
    /** Unnamed NARs younger than the grace period (uploads in flight), kept for a later run. */
    youngUnnamedNars: string[];
    /** Narinfos condemned at first but spared because a narinfo pushed during the run needs them. */
    sparedDuringRun: string[];
    missingReferences: MissingReference[];
    /** --root or pinned store paths the cache does not hold. */
    missingRoots: string[];
    unreadableNarinfos: { key: string; problem: string }[];
    pinProblems: string[];
    /** Keys the collector does not delete: nix-cache-info, pins, and everything it does not know. */
    leftAlone: string[];
    /** Narinfos pushed during the run whose references or NAR the run deleted (re-push them). */
    dangling: DanglingNarInfo[];
}

/** At most this many keys go into one multi-object delete (the S3 limit). */
const DELETE_BATCH = 1000;

async function inParallel<T>(items: T[], parallelism: number, work: (item: T) => Promise<void>): Promise<void> {
    let next = 0;
    const worker = async () => {
        while (next < items.length) {
            await work(items[next++]!);
        }
    };
    await Promise.all(Array.from({ length: Math.min(parallelism, items.length) }, worker));
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
    constructor(
        private readonly bucket: CacheBucketClient,
        private readonly options: CollectOptions,
    ) {}

    progress(phase: Progress["phase"], done: number, total: number): void {
        this.options.onProgress?.({ phase, done, total });
    }

    /** Lists the bucket and reads what changed since `remembered` (narinfos) and every pin. */
    async snapshot(): Promise<Snapshot> {
        this.progress("listing", 0, 1);
        const inventory = takeInventory(await this.bucket.list());
        this.progress("listing", 1, 1);
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
        });
        const closure = liveClosure([...found.recent, ...found.explicit, ...alsoRoots], snapshot.summaries, (hash) => narinfos.has(hash));
        // A narinfo the collector cannot read is never condemned: Nix cannot read it either, and
        // what it references is unknown.
        const condemned = new Set(
            [...narinfos.keys()].filter((hash) => !closure.live.has(hash) && snapshot.summaries.has(hash)),
        );
        return { ...closure, condemned, missingRoots: found.missing, recent: found.recent.size, explicitRoots: found.explicit.size };
    }

    async removeInBatches(keys: string[], phase: Progress["phase"], done: { count: number }, total: number): Promise<void> {
        for (let start = 0; start < keys.length; start += DELETE_BATCH) {
            const batch = keys.slice(start, start + DELETE_BATCH);
            await this.bucket.remove(batch);
            done.count += batch.length;
            this.progress(phase, done.count, total);
        }
    }
}

/** Narinfos of `later` that `earlier` did not have (or had with other content), by hash. */
function appeared(earlier: Inventory, later: Inventory): string[] {
    return [...later.narinfos].filter(([hash, object]) => earlier.narinfos.get(hash)?.etag !== object.etag).map(([hash]) => hash);
}

const namedNars = (snapshot: Snapshot, without: Set<string>): Set<string> =>
    new Set([...snapshot.summaries].filter(([hash]) => !without.has(hash)).map(([, summary]) => summary.narKey));

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
        deletedNarinfos: [],
        deletedListings: [],
        deletedNars: [],
        youngUnnamedNars: [],
        sparedDuringRun: [],
        missingReferences: firstDecision.missingReferences,
        missingRoots: firstDecision.missingRoots,
        unreadableNarinfos: [...first.unreadable].map(([key, problem]) => ({ key, problem })).sort((a, b) => a.key.localeCompare(b.key)),
        pinProblems: first.pinProblems,
        leftAlone: [...first.inventory.leftAlone, ...first.inventory.pins].map((object) => object.key).sort(),
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

    if (options.dryRun) {
        const sweep = unnamedNars(first.inventory.nars, namedNars(first, firstDecision.condemned), options.now, options.graceHours);
        report.deletedNarinfos = [...firstDecision.condemned].map(narInfoKeyOf).sort();
        report.deletedListings = [...firstDecision.condemned].filter((hash) => first.inventory.listings.has(hash)).map(listingKeyOf).sort();
        report.deletedNars = sweep.deletable;
        report.youngUnnamedNars = sweep.young;
        return report;
    }

    // Narinfos: re-list just before deleting. Nix skips uploading a path whose narinfo exists, so a
    // push since the first listing may reference a condemned narinfo: whatever appeared is a root.
    let latest = first;
    const deleted = new Set<string>();
    if (firstDecision.condemned.size > 0) {
        const second = await run.snapshot();
        const pushed = appeared(first.inventory, second.inventory);
        const decision = run.decide(second, pushed);
        report.sparedDuringRun = [...firstDecision.condemned].filter((hash) => decision.live.has(hash)).map(narInfoKeyOf).sort();
        const levels = deletionLevels(decision.condemned, second.summaries);
        const done = { count: 0 };
        for (const level of levels) {
            const listings = level.filter((hash) => second.inventory.listings.has(hash)).map(listingKeyOf);
            await run.removeInBatches([...level.map(narInfoKeyOf), ...listings], "deleting narinfos", done, decision.condemned.size);
            level.forEach((hash) => deleted.add(hash));
            report.deletedNarinfos.push(...level.map(narInfoKeyOf));
            report.deletedListings.push(...listings);
        }
        report.deletedNarinfos.sort();
        report.deletedListings.sort();
        latest = second;
    }

    // NARs: only those no remaining narinfo names, old enough not to be an upload in flight, and
    // still unnamed after one more listing (a push may reuse an existing NAR by its name).
    const candidates = unnamedNars(latest.inventory.nars, namedNars(latest, deleted), options.now, options.graceHours);
    report.youngUnnamedNars = candidates.young;
    if (candidates.deletable.length > 0) {
        const third = await run.snapshot();
        const stillUnnamed = namedNars(third, deleted);
        const deletable = candidates.deletable.filter((key) => !stillUnnamed.has(key) && third.inventory.nars.has(key));
        await run.removeInBatches(deletable, "deleting NARs", { count: 0 }, deletable.length);
        report.deletedNars = deletable;
    }

    // Check: every narinfo pushed during the run still has its references and its NAR.
    if (deleted.size > 0 || report.deletedNars.length > 0) {
        run.progress("checking", 0, 1);
        const last = await run.snapshot();
        const present = new Set(last.inventory.nars.keys());
        for (const hash of appeared(first.inventory, last.inventory)) {
            const summary = last.summaries.get(hash);
            if (summary === undefined) {
                continue;
            }
            const missing = [
                ...summary.references.filter((reference) => !last.inventory.narinfos.has(reference.slice(0, 32))),
                ...(present.has(summary.narKey) ? [] : [summary.narKey]),
            ];
            if (missing.length > 0) {
                report.dangling.push({ key: narInfoKeyOf(hash), storePath: summary.storePath, missing });
            }
        }
        report.dangling.sort((a, b) => a.key.localeCompare(b.key));
    }
    return report;
}
