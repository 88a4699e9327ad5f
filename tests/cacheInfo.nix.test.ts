// The program's nix-cache-info, read by real Nix, 2.8 and 2.34 (tests/nixClients.ts): what a push
// does to it, Priority and WantMassQuery shown by their effect on a client, and a StoreDir other
// than the client's refused. Nix reads and writes it in BinaryCacheStore::init (NixOS/nix
// src/libstore/binary-cache-store.cc), the same way in both versions. The closure is built and
// pushed by the host's Nix 2.8 (tests/nixSupport.ts); each client works in a store of its own.
import assert from "node:assert/strict";
import { cp, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { CACHE_INFO_KEY } from "../lib/cacheInfo";
import { NIX_CLIENTS } from "./nixClients";
import { bucketDir, NEEDS_NIX, onLoopback, programOutputs, serveBuckets, trustOnly, withFilledBucket, type BucketServer } from "./nixSupport";

describe("nix-cache-info, as Nix reads it", NEEDS_NIX, () => {
    const cache = withFilledBucket();

    /** Replaces the served bucket's nix-cache-info, as a `pulumi up` with other settings would. */
    const withCacheInfo = (cacheInfo: string) => (copyRoot: string) =>
        writeFile(join(bucketDir(copyRoot, cache.program.substituterUrl), CACHE_INFO_KEY), cacheInfo);

    test("by default the program registers StoreDir /nix/store, WantMassQuery 1 and Priority 40", () => {
        assert.equal(cache.program.cacheInfo, "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n");
    });

    for (const { version, options, create } of NIX_CLIENTS) {
        describe(`by Nix ${version}`, options, () => {
            /**
             * A fresh client of this version and a loopback server with a copy of the buckets,
             * changed first by `alter` (given the copy's root); both go when the test ends.
             */
            const serveCopy = async (t: TestContext, alter: (copyRoot: string) => Promise<void> = async () => {}) => {
                const client = await create(t);
                const copyRoot = client.hostPath("buckets");
                await cp(cache.root, copyRoot, { recursive: true });
                await alter(copyRoot);
                const server = await serveBuckets(copyRoot);
                t.after(() => server.close());
                return { client, server };
            };
            const ours = (server: BucketServer) => onLoopback(cache.program.substituterUrl, server);

            /** Substitutes the closure into the client's store, then pushes it to `file://<dir>` as a builder would. */
            const pushFrom = async (t: TestContext, prepare: (dir: string) => Promise<void>) => {
                const { client, server } = await serveCopy(t);
                await client.ok("nix", ["copy", "--from", ours(server), "--to", client.store, ...trustOnly(cache.program.publicKey), cache.closure.top]);
                await prepare(client.hostPath("pushed"));
                const to = `file://${client.path("pushed")}?compression=${cache.program.uploadCompression}`;
                await client.ok("nix", ["copy", "--from", client.store, "--to", to, cache.closure.top]);
                return readFile(client.hostPath("pushed", CACHE_INFO_KEY), "utf8");
            };

            // The writer policy denies s3:PutObject on nix-cache-info. That costs pushes nothing because
            // Nix writes the object only when it is missing (BinaryCacheStore::init: upsertFile only if
            // getFile returned nothing), as both halves show.
            test("a push leaves an existing nix-cache-info byte for byte as the program wrote it", async (t) => {
                const left = await pushFrom(t, async (dir) => {
                    await mkdir(dir);
                    await writeFile(join(dir, CACHE_INFO_KEY), cache.program.cacheInfo);
                });
                assert.equal(left, cache.program.cacheInfo);
            });

            test("a push to a cache without nix-cache-info writes one with StoreDir only", async (t) => {
                assert.equal(await pushFrom(t, async () => {}), "StoreDir: /nix/store\n");
            });

            // A second cache holding the same signed paths, listed FIRST in `substituters`: Nix still
            // asks the cache with the lower Priority first, and takes the NAR files from it.
            const rivals: [string, Record<string, string>, number, "ours" | "rival"][] = [
                ["the default Priority 40 wins over a cache at 41", {}, 41, "ours"],
                ["the default Priority 40 loses to a cache at 39", {}, 39, "rival"],
                ["nix-cache:priority 30 wins over a cache at 39", { "nix-cache:priority": "30" }, 39, "ours"],
            ];
            for (const [what, config, rivalPriority, winner] of rivals) {
                test(`Priority: ${what}`, async (t) => {
                    const configured = await programOutputs(config);
                    const { client, server } = await serveCopy(t, async (copyRoot) => {
                        await withCacheInfo(configured.cacheInfo)(copyRoot);
                        const rival = join(copyRoot, "rival");
                        await cp(bucketDir(copyRoot, cache.program.substituterUrl), rival, { recursive: true });
                        await writeFile(join(rival, CACHE_INFO_KEY), `StoreDir: /nix/store\nWantMassQuery: 1\nPriority: ${rivalPriority}\n`);
                    });
                    await client.ok("nix-store", [
                        "--store",
                        client.store,
                        "--realise",
                        cache.closure.top,
                        "--option",
                        "substituters",
                        `${server.origin}/rival ${ours(server)}`,
                        ...trustOnly(cache.program.publicKey),
                    ]);
                    const narBuckets = server.log.filter((line) => /^GET \/[^/]+\/nar\//.test(line)).map((line) => line.split("/")[1]);
                    assert.deepEqual(narBuckets, winner === "ours" ? ["nix-cache", "nix-cache"] : ["rival", "rival"]);
                });
            }

            /** `nix-env --query --status` marks a package S(ubstitutable) from a mass query of the caches. */
            const massQueryStatus = async (cacheInfo: string, t: TestContext) => {
                const { client, server } = await serveCopy(t, withCacheInfo(cacheInfo));
                await cp(cache.closure.expressionFile, client.hostPath("closure.nix"));
                const output = await client.ok("nix-env", [
                    "--store",
                    client.store,
                    "--profile",
                    client.path("profile"),
                    "--file",
                    client.path("closure.nix"),
                    "--query",
                    "--available",
                    "--status",
                    "--option",
                    "substituters",
                    ours(server),
                    ...trustOnly(cache.program.publicKey),
                ]);
                return { status: output.slice(0, 3), narInfoQueries: server.log.filter((line) => line.includes(".narinfo")) };
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
                const { client, server } = await serveCopy(t, withCacheInfo(configured.cacheInfo));
                const result = await client.run("nix", [
                    "copy",
                    "--from",
                    ours(server),
                    "--to",
                    client.store,
                    ...trustOnly(cache.program.publicKey),
                    cache.closure.top,
                ]);
                assert.notEqual(result.status, 0);
                assert.match(result.stderr, /is for Nix stores with prefix '\/srv\/nix\/store', not '\/nix\/store'/);
            });
        });
    }
});
