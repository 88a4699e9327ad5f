// The program's nix-cache-info, read by real Nix, 2.8 and 2.34 (tests/nixClients.ts): what a push
// does to it, Priority and WantMassQuery shown by their effect on a client, and a StoreDir other
// than the client's refused. Nix reads and writes it in BinaryCacheStore::init (NixOS/nix
// src/libstore/binary-cache-store.cc), the same way in both versions. The caches are the stack's
// bucket on a real S3 server (Ceph RGW, tests/rgwCache.ts), its nix-cache-info replaced by the
// admin for one test at a time, and rival buckets on the same RGW; RGW's own access log shows which
// cache Nix asked. The closure is built and pushed by the host's Nix 2.8 (tests/nixSupport.ts); each
// client works in a store of its own.
import assert from "node:assert/strict";
import { cp, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { CACHE_INFO_KEY } from "../lib/cacheInfo";
import { NIX_CLIENTS } from "./nixClients";
import { NEEDS_NIX, programOutputs, trustOnly } from "./nixSupport";
import { alterObject, deployCache, requestLog, uploadAsWriter, withFilledRgwCache } from "./rgwCache";
import { NEEDS_RGW, withRgwCluster } from "./rgwCluster";

describe("nix-cache-info, as Nix reads it from a real S3 server (Ceph RGW)", [NEEDS_NIX, NEEDS_RGW].find((o) => o.skip) ?? {}, () => {
    const rgw = withRgwCluster();
    const filled = withFilledRgwCache(rgw);

    /** Replaces the bucket's nix-cache-info for one test, as a `pulumi up` with other settings would. */
    const serveCacheInfo = (t: TestContext, cacheInfo: string) => alterObject(rgw, t, filled.cache.bucket, CACHE_INFO_KEY, () => cacheInfo);

    let rivals = 0;
    /** Another bucket on the same RGW, deployed by the program with `config`, holding the same signed paths. */
    const rivalCache = async (config: Record<string, string>) => {
        rivals += 1;
        const rival = await deployCache(rgw, { ...config, "nix-cache:bucket": `rival-${rivals}`, "nix-cache:writerName": `rival-writer-${rivals}` });
        await uploadAsWriter(rgw, rival, filled.pushed);
        return rival;
    };

    test("by default the program registers StoreDir /nix/store, WantMassQuery 1 and Priority 40", () => {
        assert.equal(filled.cache.program.cacheInfo, "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n");
    });

    for (const { version, options, create } of NIX_CLIENTS) {
        describe(`by Nix ${version}`, options, () => {
            /** Substitutes the closure into the client's store, then pushes it to `file://<dir>` as a builder would. */
            const pushFrom = async (t: TestContext, prepare: (dir: string) => Promise<void>) => {
                const client = await create(t);
                await client.ok("nix", ["copy", "--from", filled.cache.substituter, "--to", client.store, ...trustOnly(filled.cache.program.publicKey), filled.closure.top]);
                await prepare(client.hostPath("filled.pushed"));
                const to = `file://${client.path("filled.pushed")}?compression=${filled.cache.program.uploadCompression}`;
                await client.ok("nix", ["copy", "--from", client.store, "--to", to, filled.closure.top]);
                return readFile(client.hostPath("filled.pushed", CACHE_INFO_KEY), "utf8");
            };

            // The writer policy denies s3:PutObject on nix-cache-info. That costs pushes nothing because
            // Nix writes the object only when it is missing (BinaryCacheStore::init: upsertFile only if
            // getFile returned nothing), as both halves show.
            test("a push leaves an existing nix-cache-info byte for byte as the program wrote it", async (t) => {
                const left = await pushFrom(t, async (dir) => {
                    await mkdir(dir);
                    await writeFile(join(dir, CACHE_INFO_KEY), filled.cache.program.cacheInfo);
                });
                assert.equal(left, filled.cache.program.cacheInfo);
            });

            test("a push to a cache without nix-cache-info writes one with StoreDir only", async (t) => {
                assert.equal(await pushFrom(t, async () => {}), "StoreDir: /nix/store\n");
            });

            // A second cache holding the same signed paths, listed FIRST in `substituters`: Nix still
            // asks the cache with the lower Priority first, and takes the NAR files from it.
            const rivalsByPriority: [string, Record<string, string>, number, "ours" | "rival"][] = [
                ["the default Priority 40 wins over a cache at 41", {}, 41, "ours"],
                ["the default Priority 40 loses to a cache at 39", {}, 39, "rival"],
                ["nix-cache:priority 30 wins over a cache at 39", { "nix-cache:priority": "30" }, 39, "ours"],
            ];
            for (const [what, config, rivalPriority, winner] of rivalsByPriority) {
                test(`Priority: ${what}`, async (t) => {
                    const configured = await programOutputs(config);
                    if (configured.cacheInfo !== filled.cache.program.cacheInfo) {
                        await serveCacheInfo(t, configured.cacheInfo);
                    }
                    const rival = await rivalCache({ "nix-cache:priority": String(rivalPriority) });
                    assert.match(rival.program.cacheInfo, new RegExp(`^Priority: ${rivalPriority}$`, "m"));
                    const client = await create(t);
                    const requests = await requestLog(rgw);
                    await client.ok("nix-store", [
                        "--store",
                        client.store,
                        "--realise",
                        filled.closure.top,
                        "--option",
                        "substituters",
                        `${rival.substituter} ${filled.cache.substituter}`,
                        ...trustOnly(filled.cache.program.publicKey),
                    ]);
                    const narBuckets = (await requests()).filter((line) => /^GET \/[^/]+\/nar\//.test(line)).map((line) => line.split("/")[1]);
                    assert.deepEqual(narBuckets, Array(2).fill(winner === "ours" ? filled.cache.bucket : rival.bucket));
                });
            }

            /** `nix-env --query --status` marks a package S(ubstitutable) from a mass query of the caches. */
            const massQueryStatus = async (t: TestContext) => {
                const client = await create(t);
                await cp(filled.closure.expressionFile, client.hostPath("filled.closure.nix"));
                const requests = await requestLog(rgw);
                const output = await client.ok("nix-env", [
                    "--store",
                    client.store,
                    "--profile",
                    client.path("profile"),
                    "--file",
                    client.path("filled.closure.nix"),
                    "--query",
                    "--available",
                    "--status",
                    "--option",
                    "substituters",
                    filled.cache.substituter,
                    ...trustOnly(filled.cache.program.publicKey),
                ]);
                return { status: output.slice(0, 3), narInfoQueries: (await requests()).filter((line) => line.includes(".narinfo")) };
            };

            test("WantMassQuery: 1 lets Nix mass-query the cache", async (t) => {
                const { status, narInfoQueries } = await massQueryStatus(t);
                assert.equal(status, "--S");
                assert.equal(narInfoQueries.length, 1);
            });

            test("nix-cache:wantMassQuery false makes Nix leave the cache out of mass queries", async (t) => {
                const configured = await programOutputs({ "nix-cache:wantMassQuery": "false" });
                assert.match(configured.cacheInfo, /^WantMassQuery: 0$/m);
                await serveCacheInfo(t, configured.cacheInfo);
                const { status, narInfoQueries } = await massQueryStatus(t);
                assert.equal(status, "---");
                assert.deepEqual(narInfoQueries, []);
            });

            test("a cache info for another StoreDir is refused", async (t) => {
                const configured = await programOutputs({ "nix-cache:storeDir": "/srv/nix/store" });
                await serveCacheInfo(t, configured.cacheInfo);
                const client = await create(t);
                const result = await client.run("nix", [
                    "copy",
                    "--from",
                    filled.cache.substituter,
                    "--to",
                    client.store,
                    ...trustOnly(filled.cache.program.publicKey),
                    filled.closure.top,
                ]);
                assert.notEqual(result.status, 0);
                assert.match(result.stderr, /is for Nix stores with prefix '\/srv\/nix\/store', not '\/nix\/store'/);
            });
        });
    }
});
