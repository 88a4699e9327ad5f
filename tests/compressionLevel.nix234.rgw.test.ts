// nix-cache:compressionLevel with real Nix: Debian 12's Nix 2.8 and Debian testing's Nix 2.34
// (tests/nixClients.ts) take the levels the settings accept and refuse the next ones; the same path
// uploaded with the stack's default level and with Nix's default gives other NAR bytes (FileHash,
// FileSize) of the same NAR, and both substitute. Nix 2.34 uploads through its S3 store with the
// stack's exact uploadUrl to RGW (endpoint swapped for RGW's, as tests/s3Store.nix234.rgw.test.ts
// does; unsigned requests, so the test buckets allow anonymous PutObject); Debian's Nix 2.8 has no
// S3 store, so it uploads to file:// with the upload URL's own compression parameters.
//
// Why file:// stands for S3 here: in both versions `compression` and `compression-level` are
// settings of BinaryCacheStoreConfig, which the S3 and file stores share, and the NAR is compressed
// with them in BinaryCacheStore::addToStoreCommon before any store writes it (upsertFile only
// stores the bytes). NixOS/nix 2.8.0: src/libstore/binary-cache-store.hh (BinaryCacheStoreConfig,
// compressionLevel "compression-level"), src/libstore/binary-cache-store.cc (addToStoreCommon:
// makeCompressionSink(compression, ..., parallelCompression, compressionLevel)),
// src/libstore/s3-binary-cache-store.cc (S3BinaryCacheStoreConfig : virtual BinaryCacheStoreConfig),
// src/libstore/local-binary-cache-store.cc (LocalBinaryCacheStoreConfig : virtual
// BinaryCacheStoreConfig). NixOS/nix 2.34.8: src/libstore/include/nix/store/binary-cache-store.hh
// (the same setting), binary-cache-store.cc (addToStoreCommon: makeCompressionSink(config.compression,
// ..., config.compressionLevel)), include/nix/store/s3-binary-cache-store.hh
// (S3BinaryCacheStoreConfig : HttpBinaryCacheStoreConfig, itself a BinaryCacheStoreConfig) and
// local-binary-cache-store.hh (LocalBinaryCacheStoreConfig : BinaryCacheStoreConfig).
//
// The ranges: src/libutil/compression.cc (both versions) hands xz and zstd to libarchive
// (ArchiveCompressionSink: archive_write_set_filter_option(..., "compression-level", level) unless
// the level is -1, "Nix's default") and throws "failed to compress" when libarchive refuses; `none`
// gets a NoneSink that never sees the level. libarchive (3.6.2 in Debian 12, 3.7+ in testing)
// archive_write_add_filter_xz.c, xz_options: one digit '0'..'9', default LZMA_PRESET_DEFAULT (6);
// archive_write_add_filter_zstd.c, zstd_options: ZSTD_minCLevel() to ZSTD_maxCLevel() (22),
// default CLEVEL_DEFAULT (3).
import assert from "node:assert/strict";
import { randomInt } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { before, describe, test } from "node:test";
import { DEFAULT_ZSTD_COMPRESSION_LEVEL } from "../lib/settings";
import { ChrootNixWorkspace, NEEDS_NIX_CHROOT } from "./nixChroot";
import { NIX_CLIENTS, clientForBlock, type ClientScope, type NixClient } from "./nixClients";
import { narInfoKey, programOutputs, trustOnly } from "./nixSupport";
import { deployCache, readObject, widenedPolicy, type RgwCache } from "./rgwCache";
import { NEEDS_RGW, withRgwCluster } from "./rgwCluster";
import { problemsFor } from "./settingsSupport";

/** Text that compresses like source code: words from a small vocabulary in random order, about 1 MB. */
function compressibleText(): string {
    const words = ["store", "path", "derivation", "output", "hash", "closure", "narinfo", "cache", "level", "zstd", "xz"];
    return Array.from({ length: 20_000 }, (_, line) =>
        `${line}: ${Array.from({ length: 8 }, () => words[randomInt(words.length)]).join(" ")} ${randomInt(1_000_000)}\n`,
    ).join("");
}

/** A narinfo's fields by name. */
function narInfoFields(text: string): Record<string, string> {
    return Object.fromEntries(text.trim().split("\n").map((line) => [line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 2)]));
}

/** The BinaryCacheStore parameters of an upload URL (what decides the NAR's bytes), as a query. */
function compressionQuery(uploadUrl: string): string {
    const params = new URL(uploadUrl).searchParams;
    return ["compression", "compression-level"]
        .filter((name) => params.has(name))
        .map((name) => `${name}=${params.get(name)}`)
        .join("&");
}

/** The stack's settings for a cache uploaded at Nix's own zstd level (3), beside the default one. */
const NIX_DEFAULT_LEVEL = { "nix-cache:compressionLevel": "3" };

/** Adds a fresh text file to the client's own store (content-addressed); returns its store path. */
async function addPayload(client: NixClient): Promise<{ path: string; content: string }> {
    const content = compressibleText();
    await writeFile(client.hostPath("payload"), content);
    const path = (await client.ok("nix-store", ["--store", client.store, "--add", client.path("payload")])).trim();
    return { path, content };
}

/** Copies `path` from a binary cache into a fresh store of a fresh client; returns the file it got. */
async function substitute(
    create: (scope: ClientScope) => Promise<NixClient>,
    scope: ClientScope,
    from: string,
    path: string,
    publicKey: string,
): Promise<string> {
    const client = await create(scope);
    await client.ok("nix", ["copy", "--from", from, "--to", client.store, ...trustOnly(publicKey), path]);
    return readFile(client.hostPath("store", path), "utf8");
}

for (const { version, options, create } of NIX_CLIENTS) {
    describe(`Nix ${version}: compression-level in the upload URL`, options, () => {
        const fixture = clientForBlock(create);
        let payload: { path: string; content: string };
        before(async () => {
            payload = await addPayload(fixture.client);
        });

        /** `nix copy` of the payload to a fresh file:// cache with `query`; the cache's narinfo, or Nix's refusal. */
        let caches = 0;
        const upload = async (query: string): Promise<{ refused?: string; dir?: string; narInfo?: Record<string, string> }> => {
            const name = `cache-${++caches}`;
            const dir = fixture.client.path(name);
            const result = await fixture.client.run("nix", ["copy", "--from", fixture.client.store, "--to", `file://${dir}?${query}`, payload.path]);
            if (result.status !== 0) {
                return { refused: result.stderr };
            }
            const narInfo = await readFile(fixture.client.hostPath(name, narInfoKey(payload.path)), "utf8");
            return { dir: `file://${dir}`, narInfo: narInfoFields(narInfo) };
        };

        test("takes every level the settings accept at the ends of each range, and refuses the next ones", async () => {
            for (const [compression, level, accepted] of [
                ["xz", 0, true],
                ["xz", 9, true],
                ["xz", 10, false],
                ["zstd", 1, true],
                ["zstd", 22, true],
                ["zstd", 23, false],
            ] as const) {
                const what = `${compression} level ${level}`;
                const settingsProblems = problemsFor({
                    "minio:minioServer": "s3.example.org:9000",
                    "nix-cache:compression": compression,
                    "nix-cache:compressionLevel": String(level),
                });
                assert.equal(settingsProblems.length === 0, accepted, `the settings on ${what}: ${settingsProblems}`);
                const result = await upload(`compression=${compression}&compression-level=${level}`);
                if (accepted) {
                    assert.equal(result.narInfo?.Compression, compression, `${what}: ${result.refused}`);
                } else {
                    assert.match(result.refused ?? "accepted", /failed to compress/, what);
                }
            }
        });

        test("without a level, Nix compresses at the defaults the settings' messages name: xz 6, zstd 3", async () => {
            for (const [compression, level] of [["xz", 6], ["zstd", 3]] as const) {
                const unset = await upload(`compression=${compression}`);
                const named = await upload(`compression=${compression}&compression-level=${level}`);
                assert.ok(unset.narInfo && named.narInfo, `${unset.refused}${named.refused}`);
                assert.equal(unset.narInfo.FileHash, named.narInfo.FileHash, compression);
            }
        });

        test("ignores a level with compression none: the reason the settings refuse one", async () => {
            const withLevel = await upload("compression=none&compression-level=9");
            const without = await upload("compression=none");
            assert.ok(withLevel.narInfo && without.narInfo, `${withLevel.refused}${without.refused}`);
            assert.equal(withLevel.narInfo.FileHash, without.narInfo.FileHash);
            assert.equal(withLevel.narInfo.FileSize, withLevel.narInfo.NarSize);
        });

        test("the stack's default zstd level and Nix's default give other bytes of the same NAR, and both substitute", async (t) => {
            const stacks = [await programOutputs(), await programOutputs(NIX_DEFAULT_LEVEL)];
            const queries = stacks.map((program) => compressionQuery(program.uploadUrl));
            assert.deepEqual(queries, [`compression=zstd&compression-level=${DEFAULT_ZSTD_COMPRESSION_LEVEL}`, "compression=zstd&compression-level=3"]);
            const [chosen, nixDefault] = await Promise.all(queries.map((query) => upload(query)));
            assert.ok(chosen?.narInfo && nixDefault?.narInfo, `${chosen?.refused}${nixDefault?.refused}`);
            assert.equal(chosen.narInfo.NarHash, nixDefault.narInfo.NarHash);
            assert.notEqual(chosen.narInfo.FileHash, nixDefault.narInfo.FileHash);
            assert.notEqual(chosen.narInfo.FileSize, nixDefault.narInfo.FileSize);
            for (const cache of [chosen, nixDefault]) {
                // The path is content-addressed: accepted without a signature, so any key will do.
                assert.equal(await substitute(create, t, cache.dir!, payload.path, stacks[0]!.publicKey), payload.content);
            }
        });
    });
}

describe("Nix 2.34's S3 store with the stack's exact uploadUrl at two levels, against RGW", [NEEDS_NIX_CHROOT, NEEDS_RGW].find((o) => o.skip) ?? {}, () => {
    const rgw = withRgwCluster();
    const caches: RgwCache[] = [];
    let payload: { path: string; content: string };

    before(async () => {
        caches.push(await deployCache(rgw));
        caches.push(await deployCache(rgw, { ...NIX_DEFAULT_LEVEL, "nix-cache:bucket": "nix-cache-level-3", "nix-cache:writerName": "nixbuilder3" }));
        const pusher = await ChrootNixWorkspace.create();
        try {
            const client: NixClient = {
                run: (command, args, input) => pusher.run(command, args, input),
                ok: (command, args, input) => pusher.ok(command, args, input),
                store: pusher.path("store"),
                path: (...parts) => pusher.path(...parts),
                hostPath: (...parts) => pusher.hostPath(...parts),
            };
            payload = await addPayload(client);
            for (const [index, cache] of caches.entries()) {
                await rgw.cluster.putBucketPolicy(rgw.admin, cache.bucket, widenedPolicy(cache.policies.bucketPolicy, "s3:GetObject", "s3:PutObject"));
                const keyFile = `secret-key-${index}`;
                await writeFile(pusher.hostPath(keyFile), cache.program.secretKey, { mode: 0o600 });
                const endpoint = new URL(cache.program.uploadUrl).searchParams.get("endpoint");
                const uploadUrl = cache.program.uploadUrl.replace(`endpoint=${endpoint}`, `endpoint=${rgw.cluster.origin}`);
                assert.notEqual(uploadUrl, cache.program.uploadUrl, "the endpoint should appear verbatim in the upload URL");
                await pusher.ok("nix", ["copy", "--from", client.store, "--to", `${uploadUrl}&secret-key=${pusher.path(keyFile)}`, payload.path]);
            }
        } finally {
            await pusher.remove();
        }
    });

    test("the two stacks' upload URLs differ only in bucket, profile and level", () => {
        const [chosen, nixDefault] = caches.map((cache) => cache.program.uploadUrl);
        assert.match(chosen!, new RegExp(`&compression=zstd&compression-level=${DEFAULT_ZSTD_COMPRESSION_LEVEL}$`));
        assert.match(nixDefault!, /&compression=zstd&compression-level=3$/);
        const shape = (url: string) =>
            url.replace(/^s3:\/\/[^?]+/, "s3://BUCKET").replace(/profile=[^&]+/, "profile=PROFILE").replace(/compression-level=[0-9]+/, "compression-level=N");
        assert.equal(shape(chosen!), shape(nixDefault!));
    });

    test("the NARs differ in bytes, not in content: FileHash and FileSize differ, NarHash does not", async () => {
        const [chosen, nixDefault] = await Promise.all(
            caches.map(async (cache) => narInfoFields(await readObject(rgw, cache.bucket, narInfoKey(payload.path)))),
        );
        assert.equal(chosen!.Compression, "zstd");
        assert.equal(nixDefault!.Compression, "zstd");
        assert.equal(chosen!.NarHash, nixDefault!.NarHash);
        assert.notEqual(chosen!.FileHash, nixDefault!.FileHash);
        assert.notEqual(chosen!.FileSize, nixDefault!.FileSize);
        assert.match(chosen!.Sig ?? "", /^s3\.example\.org-1:/);
    });

    for (const { version, options, create } of NIX_CLIENTS) {
        test(`Nix ${version} substitutes the path from both buckets, signed with each stack's key`, options, async (t) => {
            for (const cache of caches) {
                assert.equal(await substitute(create, t, cache.substituter, payload.path, cache.program.publicKey), payload.content);
            }
        });
    }
});
