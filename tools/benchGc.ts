// `npm run bench:gc [-- --narinfos N]`: the collector against a synthetic cache on a real S3 server
// (a throw-away Ceph RGW on loopback, tests/rgwCluster.ts), side by side in one run with the floor
// any stateless collector has to pay:
//   floor     list the bucket, GET every narinfo (the same parallelism as the collector);
//   cold      the collector's run with nothing remembered (every narinfo read and parsed);
//   listing   list the bucket, nothing else;
//   warm      the collector's second run on the unchanged bucket, with the summaries it remembered
//             (keyed by object key and ETag): it should cost the listing and no narinfo GET.
// Each is timed in this process, each with a fresh client (no warm connections carried over), over
// --rounds rounds (default 2), medians kept.
// The cold run's peak resident memory is measured on the command itself (tools/nix-cache-gc, a
// child process reading its own maxRSS). The synthetic cache: N narinfos in a DAG where each path
// references up to 6 earlier ones (most of them recent ones, some old base paths, as closures of
// builds share a common base), a small NAR for each, every narinfo recent (nothing to sweep, so the
// runs measure reading and deciding, not deletion).
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { collectGarbage, type RememberedNarInfo } from "../lib/gc/collect";
import { inParallel } from "../lib/gc/parallel";
import { s3Bucket, type CacheBucketClient, type S3Location } from "../lib/gc/s3Bucket";
import { RgwCluster, REGION } from "../tests/rgwCluster";

const PARALLELISM = 16;
const COLD_GOAL = 1.5;
const WARM_GOAL = 1.3;
const RSS_GOAL_MB = 400;
const NIX_BASE32 = "0123456789abcdfghijklmnpqrsvwxyz";

const randomHash = (length: number): string => [...randomBytes(length)].map((byte) => NIX_BASE32[byte % 32]).join("");

/** Narinfo texts like Nix writes them, with a reference graph. */
function syntheticCache(count: number): { key: string; body: string }[] {
    const hashes = Array.from({ length: count }, () => randomHash(32));
    const objects: { key: string; body: string }[] = [];
    hashes.forEach((hash, index) => {
        const references = new Set<number>();
        const fanOut = index === 0 ? 0 : 1 + (index % 6);
        for (let n = 0; n < fanOut; n++) {
            // Mostly recent paths (the same build), sometimes the common base of every closure.
            const span = n % 3 === 2 ? Math.min(index, 50) : Math.min(index, 2000);
            references.add(index - 1 - Math.floor(Math.random() * span));
        }
        const fileHash = randomHash(52);
        objects.push({ key: `nar/${fileHash}.nar.zst`, body: `nar ${hash}` });
        objects.push({
            key: `${hash}.narinfo`,
            body:
                `StorePath: /nix/store/${hash}-bench-${index}\nURL: nar/${fileHash}.nar.zst\nCompression: zstd\n` +
                `FileHash: sha256:${fileHash}\nFileSize: 100\nNarHash: sha256:${randomHash(52)}\nNarSize: 200\n` +
                `References: ${[...references].map((ref) => `${hashes[ref]}-bench-${ref}`).join(" ")}\n` +
                `Sig: cache.example.org-1:${randomBytes(64).toString("base64")}\n`,
        });
    });
    return objects;
}

async function timed<T>(run: () => Promise<T>): Promise<{ ms: number; value: T }> {
    const start = process.hrtime.bigint();
    const value = await run();
    return { ms: Number(process.hrtime.bigint() - start) / 1e6, value };
}

/** Counts the narinfo reads a collector run makes. */
function counting(inner: CacheBucketClient): { client: CacheBucketClient; reads: () => number } {
    let reads = 0;
    return {
        client: { ...inner, read: (key) => ((reads += 1), inner.read(key)) },
        reads: () => reads,
    };
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main(): Promise<void> {
    const { values } = parseArgs({
        options: {
            narinfos: { type: "string", default: "100000" },
            rounds: { type: "string", default: "2" },
            // Extra node options for the command's memory run, e.g. a heap limit to compare.
            "node-options": { type: "string", default: "" },
        },
    });
    const count = Number(values.narinfos);
    const rounds = Number(values.rounds);
    const cluster = await RgwCluster.start();
    try {
        const admin = await cluster.createUser("admin", { admin: true });
        const bucket = "nix-cache";
        await cluster.s3(admin).makeBucket(bucket);
        const objects = syntheticCache(count);
        const uploader = cluster.s3(admin);
        process.stderr.write(`uploading ${objects.length} objects (${count} narinfos)...\n`);
        const upload = await timed(() => inParallel(objects, PARALLELISM, async (object) => {
                await uploader.putObject(bucket, object.key, object.body);
            }),);
        process.stderr.write(`uploaded in ${(upload.ms / 1000).toFixed(1)} s\n`);

        const location: S3Location = { endpoint: new URL(cluster.origin), bucket, region: REGION, ...admin };
        const now = new Date(Date.now() + 60_000);
        const options = (remembered: Map<string, RememberedNarInfo>) => ({
            now,
            wallClock: now,
            keepDays: 30,
            graceHours: 24,
            roots: [],
            dryRun: false,
            parallelism: PARALLELISM,
            remembered,
        });
        const rows: Record<"floor" | "cold" | "listing" | "warm", number[]> = { floor: [], cold: [], listing: [], warm: [] };
        let warmReads = -1;
        let coldReads = -1;
        let live = 0;
        for (let round = 0; round < rounds; round++) {
            rows.floor.push(
                (
                    await timed(async () => {
                        const bucketClient = s3Bucket(location);
                        const listed = await bucketClient.list();
                        await inParallel(listed.filter((object) => object.key.endsWith(".narinfo")), PARALLELISM, async (object) => {
                            await bucketClient.read(object.key);
                        });
                    })
                ).ms,
            );
            const remembered = new Map<string, RememberedNarInfo>();
            const cold = counting(s3Bucket(location));
            const coldRun = await timed(() => collectGarbage(cold.client, options(remembered)));
            rows.cold.push(coldRun.ms);
            coldReads = cold.reads();
            live = coldRun.value.live;
            rows.listing.push((await timed(() => s3Bucket(location).list())).ms);
            const warm = counting(s3Bucket(location));
            rows.warm.push((await timed(() => collectGarbage(warm.client, options(remembered)))).ms);
            warmReads = warm.reads();
            process.stderr.write(`round ${round + 1}: ${JSON.stringify(Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, Math.round(v.at(-1)!)])))}\n`);
        }

        // Peak memory of a cold run of the command itself, in a child process.
        const cacheHome = join(tmpdir(), `bench-gc-${randomHash(8)}`);
        const rssReport = join(cacheHome, "rss.json");
        const preload = join(tmpdir(), `bench-gc-rss-${randomHash(8)}.cjs`);
        writeFileSync(preload, `process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(rssReport)}, JSON.stringify(process.resourceUsage().maxRSS)));\n`);
        const child = spawnSync(
            join(__dirname, "nix-cache-gc"),
            ["--endpoint", cluster.origin, "--bucket", bucket, "--keep-days", "30", "--json", "--now", now.toISOString()],
            {
                env: { PATH: process.env.PATH, XDG_CACHE_HOME: cacheHome, AWS_ACCESS_KEY_ID: admin.accessKey, AWS_SECRET_ACCESS_KEY: admin.secretKey, NODE_OPTIONS: `--require ${preload} ${values["node-options"]}` },
                encoding: "utf8",
                maxBuffer: 1 << 30,
            },
        );
        if (child.status !== 0) {
            throw new Error(`nix-cache-gc failed (${child.status}): ${child.stderr}`);
        }
        const maxRssMb = Number(require("node:fs").readFileSync(rssReport, "utf8")) / 1024;

        const [floor, cold, listing, warm] = [median(rows.floor), median(rows.cold), median(rows.listing), median(rows.warm)];
        const coldRatio = cold / floor;
        const warmRatio = warm / listing;
        const lines = [
            `synthetic cache: ${count} narinfos (${live} live), ${count} NARs; Ceph RGW 16.2 on loopback; parallelism ${PARALLELISM}; medians of ${rounds} rounds`,
            `| run | time | ratio | goal |`,
            `|---|---|---|---|`,
            `| floor: list + GET every narinfo | ${(floor / 1000).toFixed(2)} s | 1.00 | |`,
            `| collector, cold (${coldReads} narinfo GETs) | ${(cold / 1000).toFixed(2)} s | ${coldRatio.toFixed(2)} x floor | <= ${COLD_GOAL} ${coldRatio <= COLD_GOAL ? "met" : "MISSED"} |`,
            `| plain listing | ${(listing / 1000).toFixed(2)} s | 1.00 | |`,
            `| collector, warm (${warmReads} narinfo GETs) | ${(warm / 1000).toFixed(2)} s | ${warmRatio.toFixed(2)} x listing | <= ${WARM_GOAL} and 0 GETs ${warmRatio <= WARM_GOAL && warmReads === 0 ? "met" : "MISSED"} |`,
            `| command, cold: peak resident memory | ${maxRssMb.toFixed(0)} MB | | <= ${RSS_GOAL_MB} MB ${maxRssMb <= RSS_GOAL_MB ? "met" : "MISSED"} |`,
        ];
        process.stdout.write(`${lines.join("\n")}\n`);
    } finally {
        await cluster.stop();
    }
}

main().catch((error) => {
    process.stderr.write(`${error.stack ?? error}\n`);
    process.exitCode = 1;
});
