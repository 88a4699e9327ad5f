// The program's nix-cache-info, read by a real Nix: Priority and WantMassQuery shown by their effect
// on a client, and a StoreDir other than the client's refused.
import assert from "node:assert/strict";
import { cp, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { CACHE_INFO_KEY } from "../lib/cacheInfo";
import {
    bucketDir,
    NEEDS_NIX,
    onLoopback,
    programOutputs,
    serveCopy,
    signAndPush,
    trustOnly,
    withFilledBucket,
} from "./nixSupport";

describe("nix-cache-info, as Nix reads it", NEEDS_NIX, () => {
    const cache = withFilledBucket();

    /** Replaces the served bucket's nix-cache-info, as a `pulumi up` with other settings would. */
    const withCacheInfo = (cacheInfo: string) => (copyRoot: string) =>
        writeFile(join(bucketDir(copyRoot, cache.program.substituterUrl), CACHE_INFO_KEY), cacheInfo);

    test("by default the program registers StoreDir /nix/store, WantMassQuery 1 and Priority 40", () => {
        assert.equal(cache.program.cacheInfo, "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n");
    });

    // The writer policy denies s3:PutObject on nix-cache-info. That costs pushes nothing because Nix
    // writes the object only when it is missing (NixOS/nix src/libstore/binary-cache-store.cc,
    // BinaryCacheStore::init: upsertFile only if getFile returned nothing), as both halves show.
    test("a push leaves an existing nix-cache-info byte for byte as the program wrote it", async () => {
        const bucket = bucketDir(cache.root, cache.program.substituterUrl);
        assert.equal(await readFile(join(bucket, CACHE_INFO_KEY), "utf8"), cache.program.cacheInfo);
    });

    test("a push to a cache without nix-cache-info writes one with StoreDir only", async () => {
        const empty = cache.builder.path("bucket-without-cache-info");
        await signAndPush(cache.builder, cache.closure, cache.program.secretKey, empty, cache.program.uploadCompression);
        assert.equal(await readFile(join(empty, CACHE_INFO_KEY), "utf8"), "StoreDir: /nix/store\n");
    });

    // A second cache holding the same signed paths, listed FIRST in `substituters`: Nix still asks
    // the cache with the lower Priority first, and takes the NAR files from it.
    const rivals: [string, Record<string, string>, number, "ours" | "rival"][] = [
        ["the default Priority 40 wins over a cache at 41", {}, 41, "ours"],
        ["the default Priority 40 loses to a cache at 39", {}, 39, "rival"],
        ["nix-cache:priority 30 wins over a cache at 39", { "nix-cache:priority": "30" }, 39, "ours"],
    ];
    for (const [what, config, rivalPriority, winner] of rivals) {
        test(`Priority: ${what}`, async (t) => {
            const configured = await programOutputs(config);
            const served = await serveCopy(t, cache.root, async (copyRoot) => {
                await withCacheInfo(configured.cacheInfo)(copyRoot);
                const rival = join(copyRoot, "rival");
                await cp(bucketDir(copyRoot, cache.program.substituterUrl), rival, { recursive: true });
                await writeFile(join(rival, CACHE_INFO_KEY), `StoreDir: /nix/store\nWantMassQuery: 1\nPriority: ${rivalPriority}\n`);
            });
            const ours = onLoopback(cache.program.substituterUrl, served.server);
            await served.client.ok("nix-store", [
                "--store",
                served.clientStore,
                "--realise",
                cache.closure.top,
                "--option",
                "substituters",
                `${served.server.origin}/rival ${ours}`,
                ...trustOnly(cache.program.publicKey),
            ]);
            const narBuckets = served.server.log
                .filter((line) => /^GET \/[^/]+\/nar\//.test(line))
                .map((line) => line.split("/")[1]);
            assert.deepEqual(narBuckets, winner === "ours" ? ["nix-cache", "nix-cache"] : ["rival", "rival"]);
        });
    }

    /** `nix-env --query --status` marks a package S(ubstitutable) from a mass query of the caches. */
    const massQueryStatus = async (cacheInfo: string, t: TestContext) => {
        const served = await serveCopy(t, cache.root, withCacheInfo(cacheInfo));
        const output = await served.client.ok("nix-env", [
            "--store",
            served.clientStore,
            "--profile",
            served.client.path("profile"),
            "--file",
            cache.closure.expressionFile,
            "--query",
            "--available",
            "--status",
            "--option",
            "substituters",
            onLoopback(cache.program.substituterUrl, served.server),
            ...trustOnly(cache.program.publicKey),
        ]);
        return { status: output.slice(0, 3), narInfoQueries: served.server.log.filter((line) => line.includes(".narinfo")) };
    };

    test("WantMassQuery: 1 lets Nix mass-query the cache", async (t) => {
        const { status, narInfoQueries } = await massQueryStatus(cache.program.cacheInfo, t);
        assert.equal(status, "--S");
        assert.equal(narInfoQueries.length, 1);
    });

    test("nix-cache:wantMassQuery false makes Nix leave the cache out of mass queries", async (t) => {
        const configured = await programOutputs({ "nix-cache:wantMassQuery": "false" });
        assert.match(configured.cacheInfo, /^WantMassQuery: 0$/m);
        const { status, narInfoQueries } = await massQueryStatus(configured.cacheInfo, t);
        assert.equal(status, "---");
        assert.deepEqual(narInfoQueries, []);
    });

    test("a cache info for another StoreDir is refused", async (t) => {
        const configured = await programOutputs({ "nix-cache:storeDir": "/srv/nix/store" });
        const served = await serveCopy(t, cache.root, withCacheInfo(configured.cacheInfo));
        const result = await served.client.run("nix", [
            "copy",
            "--from",
            onLoopback(cache.program.substituterUrl, served.server),
            "--to",
            served.clientStore,
            ...trustOnly(cache.program.publicKey),
            cache.closure.top,
        ]);
        assert.notEqual(result.status, 0);
        assert.match(result.stderr, /is for Nix stores with prefix '\/srv\/nix\/store', not '\/nix\/store'/);
    });
});
