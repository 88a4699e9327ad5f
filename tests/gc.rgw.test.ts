// The collector against a real S3 server (Ceph RGW, tests/rgwCluster.ts) holding caches that real
// Nix 2.8 built, signed and copied: chains, diamonds, shared NARs, young and old orphans, unknown
// keys, pins, a dry run, pushes interleaved with a paused run, and a server that fails half way.
// After each run, Nix substitutes every rooted closure anonymously from the server, and the swept
// narinfos are gone. Ages: RGW stamps objects with the upload time, so every cache is uploaded in
// two groups a few seconds apart, and the run pretends (--now) to happen a day after the boundary
// between them: with --keep-days 1 and --grace-hours 24 the first group is old, the second young.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { storePathHash } from "../lib/gc/bucketObjects";
import { CollectFailure, collectGarbage, type CollectOptions, type CollectReport } from "../lib/gc/collect";
import { inParallel } from "../lib/gc/parallel";
import { summarizeNarInfo } from "../lib/gc/plan";
import { s3Bucket, type CacheBucketClient } from "../lib/gc/s3Bucket";
import { CACHE_INFO_KEY } from "../lib/cacheInfo";
import { NEEDS_NIX, NixWorkspace, trustOnly } from "./nixSupport";
import { deployCache, type RgwCache } from "./rgwCache";
import { NEEDS_RGW, REGION, withRgwCluster, type Credentials, type RgwFixture } from "./rgwCluster";

const DAY_MS = 86_400_000;

/** Derivations of one test cache: each writes its own line and the paths it references. */
type Spec = Record<string, { refs?: string[]; content?: string }>;

interface BuiltPaths {
    paths: Record<string, string>;
    remove(): Promise<void>;
}

/** Builds `spec` as input-addressed paths (new on every run: a nonce in every content). */
async function build(workspace: NixWorkspace, spec: Spec): Promise<BuiltPaths> {
    const nonce = randomUUID();
    const bindings = Object.entries(spec).map(([name, { refs = [], content }]) => {
        const line = content ?? `${name} ${nonce}`;
        const script = [`echo ${line}`, ...refs.map((ref) => `\${${ref}}`)].join(" ");
        return `  ${name} = mk "gc-${name}" "${script} > $out";`;
    });
    const file = workspace.path(`gc-${nonce}.nix`);
    await writeFile(
        file,
        `let mk = name: script: derivation { inherit name; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" script ]; };\n` +
            `in rec {\n${bindings.join("\n")}\n}\n`,
    );
    const paths = JSON.parse(
        await workspace.ok("nix-instantiate", ["--eval", "--strict", "--json", "-E", `builtins.mapAttrs (n: d: d.outPath) (import ${file})`]),
    ) as Record<string, string>;
    const derivations = (await workspace.ok("nix-instantiate", [file])).trim().split("\n");
    await workspace.ok("nix-store", ["--realise", ...derivations]);
    return {
        paths,
        remove: async () => {
            await workspace.run("nix-store", ["--delete", ...Object.values(paths), ...derivations]);
        },
    };
}

/** A bucket deployed as the stack leaves it, and a builder that pushes to it as Nix would. */
class TestCache {
    private constructor(
        readonly rgw: RgwFixture,
        readonly cache: RgwCache,
        readonly builder: NixWorkspace,
        private readonly keyFile: string,
        readonly collector: Credentials,
    ) {}

    /**
     * Deploys `bucket` as `pulumi up` leaves it (tests/rgwCache.ts), plus the collector's user with
     * the collector policy the program registers.
     */
    static async create(rgw: RgwFixture, builder: NixWorkspace, bucket: string): Promise<TestCache> {
        const cache = await deployCache(rgw, { "nix-cache:bucket": bucket, "nix-cache:writerName": `${bucket}-writer` });
        const collector = await rgw.cluster.createUser(`${bucket}-collector`);
        await rgw.cluster.putUserPolicy(rgw.admin, `${bucket}-collector`, "nix-cache-collector", cache.policies.collectorPolicy);
        const keyFile = await builder.writePrivateFile(`key-${bucket}`, cache.program.secretKey);
        return new TestCache(rgw, cache, builder, keyFile, collector);
    }

    get bucket(): string {
        return this.cache.bucket;
    }

    /**
     * Signs `paths` and pushes their closures as Nix's S3 store does: whatever narinfo or NAR the
     * bucket already has is skipped (binary-cache-store.cc: a path whose narinfo exists is not
     * copied, a NAR that exists is not uploaded again), NARs before narinfos. Returns the keys put.
     */
    async push(paths: string[]): Promise<string[]> {
        await this.builder.ok("nix", ["store", "sign", "--key-file", this.keyFile, "--recursive", ...paths]);
        const dir = this.builder.path(`push-${randomUUID()}`);
        await this.builder.ok("nix", ["copy", "--to", `file://${dir}?compression=zstd`, ...paths]);
        const present = new Set((await this.list()).map((object) => object.key));
        const files = (await readdir(dir, { recursive: true, withFileTypes: true }))
            .filter((entry) => entry.isFile())
            .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1))
            .filter((key) => key !== CACHE_INFO_KEY && !present.has(key));
        const order = (key: string) => (key.startsWith("nar/") ? 0 : key.endsWith(".ls") ? 1 : 2);
        const writer = this.rgw.cluster.s3(this.cache.writer);
        for (const key of files.sort((a, b) => order(a) - order(b))) {
            await writer.fPutObject(this.bucket, key, join(dir, key));
        }
        return files;
    }

    /** Puts an object as the writer (pins, unknown keys, orphan NARs). */
    async put(key: string, content: string): Promise<void> {
        await this.rgw.cluster.s3(this.cache.writer).putObject(this.bucket, key, content);
    }

    list() {
        return s3Bucket(this.location()).list();
    }

    location() {
        return {
            endpoint: new URL(this.rgw.cluster.origin),
            bucket: this.bucket,
            region: REGION,
            ...this.collector,
        };
    }

    /**
     * Runs the collector as of `now` with the test's ages (see the top of this file). The real clock
     * that uploads in flight are judged by is pretended likewise, unless `wallClock` is given.
     */
    collect(now: Date, options: Partial<CollectOptions> = {}, client: CacheBucketClient = s3Bucket(this.location())): Promise<CollectReport> {
        return collectGarbage(client, {
            now,
            wallClock: now,
            keepDays: 1,
            graceHours: 24,
            roots: [],
            dryRun: false,
            parallelism: 8,
            remembered: new Map(),
            ...options,
        });
    }

    /** Whether a fresh Nix client gets `path`'s whole closure anonymously from the server. */
    async substitutes(path: string): Promise<boolean> {
        const client = await NixWorkspace.create();
        try {
            const result = await client.run("nix", [
                "copy",
                "--from",
                this.cache.substituter,
                "--to",
                client.path("store"),
                ...trustOnly(this.cache.program.publicKey),
                path,
            ]);
            return result.status === 0;
        } finally {
            await client.remove();
        }
    }

    /** Whether anyone can GET the key (403 and 404 are both "no" for Nix). */
    async anonymousGet(key: string): Promise<boolean> {
        return (await fetch(`${this.cache.substituter}/${key}`)).status === 200;
    }

    /** Every narinfo in the bucket has every narinfo it references and its NAR. */
    async intact(): Promise<string[]> {
        const objects = await this.list();
        const keys = new Set(objects.map((object) => object.key));
        const problems: string[] = [];
        const admin = this.rgw.cluster.s3(this.rgw.admin);
        for (const object of objects.filter((o) => o.key.endsWith(".narinfo"))) {
            const text = Buffer.concat(await (await admin.getObject(this.bucket, object.key)).toArray()).toString();
            const summary = summarizeNarInfo(text);
            for (const reference of summary.references) {
                if (!keys.has(`${storePathHash(reference)}.narinfo`)) {
                    problems.push(`${summary.storePath} misses ${reference}`);
                }
            }
            if (!keys.has(summary.narKey)) {
                problems.push(`${summary.storePath} misses its NAR ${summary.narKey}`);
            }
        }
        return problems;
    }
}

const narinfoOf = (path: string): string => `${storePathHash(path)}.narinfo`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Pushes `old`, waits, pushes `young`, and returns the time to pass as --now: one day after the
 * midpoint between the last old upload and the first young one.
 */
async function pushInTwoAges(cache: TestCache, old: string[], young: string[], extra?: { old?: () => Promise<void>; young?: () => Promise<void> }): Promise<Date> {
    if (old.length > 0) {
        await cache.push(old);
    }
    await extra?.old?.();
    const oldKeys = new Set((await cache.list()).map((object) => object.key));
    const lastOld = Math.max(...(await cache.list()).map((object) => object.lastModified.getTime()));
    await sleep(Math.max(0, lastOld + 2500 - Date.now()));
    if (young.length > 0) {
        await cache.push(young);
    }
    await extra?.young?.();
    const youngTimes = (await cache.list()).filter((object) => !oldKeys.has(object.key)).map((object) => object.lastModified.getTime());
    const firstYoung = youngTimes.length > 0 ? Math.min(...youngTimes) : lastOld + 2500;
    assert.ok(firstYoung - lastOld >= 1000, `the two ages are ${firstYoung - lastOld} ms apart`);
    return new Date((lastOld + firstYoung) / 2 + DAY_MS);
}

describe("nix-cache-gc on a real S3 server, with caches real Nix built", [NEEDS_NIX, NEEDS_RGW].find((o) => o.skip) ?? {}, () => {
    const rgw = withRgwCluster();
    let builder: NixWorkspace;
    const built: BuiltPaths[] = [];
    let bucketCount = 0;

    before(async () => {
        builder = await NixWorkspace.create();
    });
    after(async () => {
        for (const paths of built) {
            await paths.remove();
        }
        await builder?.remove();
    });

    const freshCache = async (spec: Spec) => {
        const paths = await build(builder, spec);
        built.push(paths);
        const cache = await TestCache.create(rgw, builder, `gc-test-${++bucketCount}`);
        return { cache, p: paths.paths };
    };

    test("keeps rooted chains and diamonds whole, sweeps the rest, and leaves nix-cache-info and unknown keys alone", async () => {
        const { cache, p } = await freshCache({
            c3: {},
            c2: { refs: ["c3"] },
            c1: { refs: ["c2"] },
            base: {},
            left: { refs: ["base"] },
            right: { refs: ["base"] },
            top: { refs: ["left", "right"] },
            lone: {},
            fresh: { refs: ["c2"] },
        });
        const now = await pushInTwoAges(cache, [p.c1!, p.top!, p.lone!], [p.fresh!], {
            old: async () => {
                await cache.put("log/abc-gc-top.drv", "a build log");
                await cache.put("realisations/sha256:abc!out.doi", "{}");
            },
        });
        const report = await cache.collect(now, { roots: [p.top!] });

        assert.deepEqual(report.deletedNarinfos, [narinfoOf(p.c1!), narinfoOf(p.lone!)].sort());
        assert.equal(report.narinfos, 9);
        assert.equal(report.live, 7);
        assert.deepEqual(report.roots, { recent: 1, explicit: 1 });
        assert.deepEqual(report.leftAlone, ["log/abc-gc-top.drv", CACHE_INFO_KEY, "realisations/sha256:abc!out.doi"]);
        assert.equal(report.deletedNars.length, 2, "the NARs of c1 and lone");
        assert.deepEqual(report.dangling, []);
        assert.deepEqual(await cache.intact(), []);
        for (const kept of [p.fresh!, p.top!]) {
            assert.ok(await cache.substitutes(kept), `${kept} substitutes`);
        }
        for (const swept of [p.c1!, p.lone!]) {
            assert.equal(await cache.anonymousGet(narinfoOf(swept)), false, `${swept} is gone`);
            assert.equal(await cache.substitutes(swept), false);
        }
        assert.ok(await cache.anonymousGet(CACHE_INFO_KEY));
        const keys = (await cache.list()).map((object) => object.key);
        assert.ok(keys.includes("log/abc-gc-top.drv") && keys.includes("realisations/sha256:abc!out.doi"));
    });

    test("a NAR shared with a live narinfo stays when an old narinfo naming it goes", async () => {
        const { cache, p } = await freshCache({ first: { content: "same" }, second: { content: "same" } });
        const now = await pushInTwoAges(cache, [p.first!], [p.second!]);
        const objects = await cache.list();
        assert.equal(objects.filter((object) => object.key.startsWith("nar/")).length, 1, "both narinfos name one NAR");
        const report = await cache.collect(now);
        assert.deepEqual(report.deletedNarinfos, [narinfoOf(p.first!)]);
        assert.deepEqual(report.deletedNars, []);
        assert.ok(await cache.substitutes(p.second!));
        assert.equal(await cache.substitutes(p.first!), false);
    });

    test("old unnamed NARs go, young ones stay (uploads in flight)", async () => {
        const { cache } = await freshCache({ unused: {} });
        const now = await pushInTwoAges(cache, [], [], {
            old: () => cache.put("nar/1111111111111111111111111111111111111111111111111111.nar.zst", "old orphan"),
            young: () => cache.put("nar/2222222222222222222222222222222222222222222222222222.nar.zst", "young orphan"),
        });
        const report = await cache.collect(now);
        assert.deepEqual(report.deletedNars, ["nar/1111111111111111111111111111111111111111111111111111.nar.zst"]);
        assert.deepEqual(report.youngUnnamedNars, ["nar/2222222222222222222222222222222222222222222222222222.nar.zst"]);
        const keys = (await cache.list()).map((object) => object.key).sort();
        assert.deepEqual(keys, ["nar/2222222222222222222222222222222222222222222222222222.nar.zst", CACHE_INFO_KEY]);
    });

    test("pins under pins/ keep a path's closure whatever its age; a pin line naming no store path stops every deletion", async () => {
        const { cache, p } = await freshCache({ dep: {}, pinned: { refs: ["dep"] }, other: {}, more: {} });
        const now = await pushInTwoAges(cache, [p.pinned!, p.other!, p.more!], [], {
            old: () => cache.put("pins/release", `# the release\n${p.pinned}/bin/tool\n`),
        });
        await cache.put("pins/typo", "not-a-path\n");
        const blocked = await cache.collect(now);
        assert.deepEqual(blocked.pinProblems, ["pins/typo: line 1: 'not-a-path' is not a store path such as /nix/store/<hash>-<name>"]);
        assert.match(blocked.blocked.join("\n"), /1 pin lines name no store path/);
        assert.deepEqual([blocked.deletedNarinfos, blocked.deletedNars], [[], []]);

        await cache.rgw.cluster.s3(cache.rgw.admin).removeObject(cache.bucket, "pins/typo");
        const report = await cache.collect(now);
        assert.deepEqual(report.deletedNarinfos, [narinfoOf(p.more!), narinfoOf(p.other!)].sort());
        assert.equal(report.roots.explicit, 1);
        assert.ok((await cache.list()).some((object) => object.key === "pins/release"), "the pin itself stays");
        assert.ok(await cache.substitutes(p.pinned!));
    });

    test("a dry run deletes nothing and reports exactly what the real run then deletes", async () => {
        const { cache, p } = await freshCache({ gone: {}, kept: {} });
        const now = await pushInTwoAges(cache, [p.gone!], [p.kept!]);
        const before = (await cache.list()).map((object) => object.key).sort();
        const dry = await cache.collect(now, { dryRun: true });
        assert.equal(dry.dryRun, true);
        assert.deepEqual((await cache.list()).map((object) => object.key).sort(), before);
        assert.deepEqual(dry.deletedNarinfos, [narinfoOf(p.gone!)]);
        const real = await cache.collect(now);
        assert.deepEqual([real.deletedNarinfos, real.deletedNars], [dry.deletedNarinfos, dry.deletedNars]);
        assert.equal(real.deletedNars.length, 1);
    });

    /** The bucket client, paused at its `nth` call of `method` until `during` has run. */
    const pausedAt = (inner: CacheBucketClient, method: "list" | "remove", nth: number, during: () => Promise<void>): CacheBucketClient => {
        let calls = 0;
        const pause = async () => {
            if (++calls === nth) {
                await during();
            }
        };
        return {
            list: async () => {
                if (method === "list") {
                    await pause();
                }
                return inner.list();
            },
            read: (key) => inner.read(key),
            remove: async (key) => {
                if (method === "remove") {
                    await pause();
                }
                return inner.remove(key);
            },
        };
    };

    test("a push while the run is paused before its re-list keeps the old path it reuses, closure whole", async () => {
        const { cache, p } = await freshCache({ reused: {}, late: { refs: ["reused"] } });
        const now = await pushInTwoAges(cache, [p.reused!], []);
        // Nix skips `reused` (its narinfo exists) and uploads only `late`, which references it.
        let pushed: string[] = [];
        const client = pausedAt(s3Bucket(cache.location()), "list", 2, async () => {
            pushed = await cache.push([p.late!]);
        });
        // A run pretending to be 40 days later: the push is then too old to be a root by its age,
        // and only having appeared during the run keeps it and what it references.
        const report = await cache.collect(new Date(now.getTime() + 40 * DAY_MS), {}, client);
        assert.ok(pushed.includes(narinfoOf(p.late!)) && !pushed.includes(narinfoOf(p.reused!)), `pushed ${pushed.join(", ")}`);
        assert.deepEqual(report.sparedDuringRun, [narinfoOf(p.reused!)]);
        assert.deepEqual(report.deletedNarinfos, []);
        assert.deepEqual(await cache.intact(), []);
        assert.ok(await cache.substitutes(p.late!));
    });

    test("a push in the last moment before the deletion is reported as dangling, and a re-push repairs it", async () => {
        const { cache, p } = await freshCache({ reused: {}, late: { refs: ["reused"] } });
        const now = await pushInTwoAges(cache, [p.reused!], []);
        const client = pausedAt(s3Bucket(cache.location()), "remove", 1, async () => {
            await cache.push([p.late!]);
        });
        const report = await cache.collect(now, {}, client);
        assert.deepEqual(report.deletedNarinfos, [narinfoOf(p.reused!)]);
        assert.equal(report.dangling.length, 1);
        assert.equal(report.dangling[0]!.storePath, p.late);
        assert.match(report.dangling[0]!.missing.join(" "), new RegExp(storePathHash(p.reused!)!));
        assert.equal(await cache.substitutes(p.late!), false);
        // What the report tells the operator to do: push again (Nix now uploads the missing path).
        await cache.push([p.late!]);
        assert.ok(await cache.substitutes(p.late!));
    });

    test("a server failing half way through the sweep leaves every remaining narinfo whole; the next run finishes", async () => {
        const { cache, p } = await freshCache({ g3: {}, g2: { refs: ["g3"] }, g1: { refs: ["g2"] }, kept: {} });
        const now = await pushInTwoAges(cache, [p.g1!], [p.kept!]);
        // Stands in for the server refusing requests from the second deletion on (RGW itself is not
        // stopped mid-run): the first level (g1) is deleted, then every request fails.
        let removes = 0;
        const inner = s3Bucket(cache.location());
        const failing: CacheBucketClient = {
            ...inner,
            remove: async (key) => {
                if (++removes > 1) {
                    throw new Error("503 Slow Down");
                }
                return inner.remove(key);
            },
        };
        const failure = await cache.collect(now, {}, failing).then(
            () => assert.fail("the run should fail"),
            (error: unknown) => error,
        );
        assert.ok(failure instanceof CollectFailure && /503 Slow Down/.test(failure.message), String(failure));
        assert.deepEqual(failure.report?.deletedNarinfos, [narinfoOf(p.g1!)], "the report says what went before the failure");
        assert.deepEqual(await cache.intact(), [], "no remaining narinfo lost a reference");
        assert.equal(await cache.anonymousGet(narinfoOf(p.g1!)), false);
        assert.ok(await cache.anonymousGet(narinfoOf(p.g2!)));
        const next = await cache.collect(now);
        assert.deepEqual(next.deletedNarinfos, [narinfoOf(p.g2!), narinfoOf(p.g3!)].sort());
        assert.ok(await cache.substitutes(p.kept!));
    });

    test("a push during the NAR sweep that puts back a deleted narinfo keeps the NAR it reuses", async () => {
        const { cache, p } = await freshCache({ reused: {}, late: { refs: ["reused"] } });
        const now = await pushInTwoAges(cache, [p.reused!], []);
        // The third listing is the one before NARs go: `reused`'s narinfo is deleted by then, so
        // the push uploads it again, and skips its NAR, which still exists.
        let pushed: string[] = [];
        const client = pausedAt(s3Bucket(cache.location()), "list", 3, async () => {
            pushed = await cache.push([p.late!]);
        });
        const admin = cache.rgw.cluster.s3(cache.rgw.admin);
        const reusedNar = summarizeNarInfo(Buffer.concat(await (await admin.getObject(cache.bucket, narinfoOf(p.reused!))).toArray()).toString()).narKey;
        const report = await cache.collect(now, {}, client);
        assert.deepEqual(report.deletedNarinfos, [narinfoOf(p.reused!)]);
        assert.ok(pushed.includes(narinfoOf(p.reused!)) && !pushed.includes(reusedNar), `pushed ${pushed.join(", ")}`);
        assert.deepEqual(report.deletedNars, []);
        assert.deepEqual(report.dangling, []);
        assert.deepEqual(await cache.intact(), []);
        assert.ok(await cache.substitutes(p.late!));
    });

    test("uploads within the grace period by the real clock stay, however far ahead --now pretends", async () => {
        const { cache, p } = await freshCache({ dep: {}, top: { refs: ["dep"] } });
        await cache.push([p.top!]);
        await cache.put("nar/3333333333333333333333333333333333333333333333333333.nar.zst", "in flight");
        const report = await cache.collect(new Date(Date.now() + 40 * DAY_MS), { keepDays: 0, wallClock: new Date() });
        assert.deepEqual([report.deletedNarinfos, report.deletedNars], [[], []]);
        assert.deepEqual(report.youngUnnamedNars, ["nar/3333333333333333333333333333333333333333333333333333.nar.zst"]);
        assert.equal(report.roots.recent, 2);
    });

    test("a narinfo it cannot read stops every deletion, and is reported", async () => {
        const { cache, p } = await freshCache({ gone: {}, kept: {} });
        const now = await pushInTwoAges(cache, [p.gone!], [p.kept!], {
            young: () => cache.put(`${"z".repeat(32)}.narinfo`, "Compression: xz\n\u00fd7zXZ"),
        });
        const report = await cache.collect(now);
        assert.deepEqual([report.deletedNarinfos, report.deletedNars], [[], []]);
        assert.equal(report.unreadableNarinfos.length, 1);
        assert.match(report.blocked.join("\n"), /1 narinfos cannot be read/);
        assert.ok(await cache.anonymousGet(narinfoOf(p.gone!)));
    });

    test("a rewritten narinfo (new ETag) is read again on the next run; an unchanged one is not", async () => {
        const { cache, p } = await freshCache({ old: {}, young: {} });
        const now = await pushInTwoAges(cache, [p.old!], [p.young!]);
        const remembered = new Map();
        const first = await cache.collect(now, { dryRun: true, remembered });
        assert.deepEqual(first.deletedNarinfos, [narinfoOf(p.old!)]);
        // The young narinfo now references the old path (as a re-signed or repaired narinfo might).
        const admin = cache.rgw.cluster.s3(cache.rgw.admin);
        const text = Buffer.concat(await (await admin.getObject(cache.bucket, narinfoOf(p.young!))).toArray()).toString();
        const oldBase = p.old!.slice("/nix/store/".length);
        await admin.putObject(cache.bucket, narinfoOf(p.young!), text.replace(/^References:.*$/m, `References: ${oldBase}`));
        let reads = 0;
        const inner = s3Bucket(cache.location());
        const counting: CacheBucketClient = { ...inner, read: (key) => ((reads += 1), inner.read(key)) };
        const second = await cache.collect(now, { dryRun: true, remembered }, counting);
        assert.deepEqual(second.deletedNarinfos, [], "the old path is referenced now");
        assert.equal(reads, 1, "only the rewritten narinfo was read again");
    });

    test("a bucket of more than one listing page (1000 keys) is read whole", async () => {
        const { cache } = await freshCache({ unused: {} });
        const keys = Array.from({ length: 1100 }, (_, index) => `log/${String(index).padStart(4, "0")}.drv`);
        const writer = cache.rgw.cluster.s3(cache.cache.writer);
        await inParallel(keys, 16, async (key) => {
            await writer.putObject(cache.bucket, key, "log");
        });
        const report = await cache.collect(new Date(), { dryRun: true });
        assert.equal(report.leftAlone.filter((key) => key.startsWith("log/")).length, 1100);
    });

    test("the command: --json report, exit 0; credentials from a profile; a missing profile exits 2", async () => {
        const { cache, p } = await freshCache({ gone: {}, kept: {} });
        const now = await pushInTwoAges(cache, [p.gone!], [p.kept!]);
        const credentials = builder.path(`credentials-${cache.bucket}`);
        await writeFile(
            credentials,
            `[collector]\naws_access_key_id = ${cache.collector.accessKey}\naws_secret_access_key = ${cache.collector.secretKey}\n`,
            { mode: 0o600 },
        );
        // --grace-hours 0: the command judges uploads in flight by the real clock, and these are seconds old.
        const args = ["--endpoint", rgw.cluster.origin, "--bucket", cache.bucket, "--keep-days", "1", "--grace-hours", "0", "--now", now.toISOString()];
        const env = { PATH: process.env.PATH, HOME: builder.path("home"), XDG_CACHE_HOME: builder.path("cache"), AWS_SHARED_CREDENTIALS_FILE: credentials };
        const ran = await command([...args, "--profile", "collector", "--json"], env);
        assert.equal(ran.status, 0, ran.stderr);
        const report = JSON.parse(ran.stdout) as CollectReport;
        assert.deepEqual(report.deletedNarinfos, [narinfoOf(p.gone!)]);
        assert.equal(report.dryRun, false);
        for (const field of ["narinfos", "live", "deletedNarinfos", "deletedNars", "dryRun"]) {
            assert.ok(field in report, field);
        }
        const missingProfile = await command([...args, "--profile", "nobody"], env);
        assert.equal(missingProfile.status, 2);
        assert.match(missingProfile.stderr, /--profile nobody: .* has no \[nobody\]/);
    });
});

/** Runs tools/nix-cache-gc, the package's bin. */
function command(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
        const child = spawn(join(__dirname, "..", "tools", "nix-cache-gc"), args, { env });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (chunk) => (stdout += chunk));
        child.stderr.on("data", (chunk) => (stderr += chunk));
        child.on("close", (status) => resolve({ status, stdout, stderr }));
    });
}
