// The collector's pure decisions (lib/gc/bucketObjects.ts, lib/gc/plan.ts) on small hand-made
// buckets, every expected answer written out by hand.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { classifyKey, storePathHash, type BucketObject } from "../lib/gc/bucketObjects";
import {
    deletionLevels,
    findRoots,
    inFlightSince,
    liveClosure,
    parsePins,
    summarizeNarInfo,
    takeInventory,
    unnamedNars,
    type NarInfoSummary,
} from "../lib/gc/plan";

// Store path hashes in Nix's base32 (no e, o, t, u), one letter each for readability.
const hash = (letter: string): string => letter.repeat(32);
const base = (letter: string): string => `${hash(letter)}-${letter}`;
const path = (letter: string): string => `/nix/store/${base(letter)}`;
const NOW = new Date("2026-12-01T00:00:00Z");
const daysAgo = (days: number): Date => new Date(NOW.getTime() - days * 86_400_000);
const object = (key: string, lastModified: Date, etag = "e"): BucketObject => ({ key, size: 1, lastModified, etag });

const summary = (letter: string, references: string[], narKey = `nar/${letter}.nar.zst`): NarInfoSummary => ({
    storePath: path(letter),
    references: references.map(base),
    narKey,
});

describe("bucket keys", () => {
    test("narinfos, listings, NARs, nix-cache-info and pins are told apart; anything else is unknown", () => {
        assert.deepEqual(classifyKey(`${hash("a")}.narinfo`), { kind: "narinfo", hash: hash("a") });
        assert.deepEqual(classifyKey(`${hash("a")}.ls`), { kind: "listing", hash: hash("a") });
        assert.deepEqual(classifyKey("nar/0dypq01q64cw125mdpn0lp0kic8s2n0gscf2mw5lwk3g21ja94nd.nar.zst"), { kind: "nar" });
        assert.deepEqual(classifyKey("nix-cache-info"), { kind: "cacheInfo" });
        assert.deepEqual(classifyKey("pins/release-2026"), { kind: "pin" });
        for (const unknown of [
            "log/aaaa.drv",
            "realisations/sha256:x!out.doi",
            "debuginfo/abc",
            `${"e".repeat(32)}.narinfo`, // e is not in Nix's base32
            `${hash("a")}x.narinfo`,
            "nar/sub/dir.nar",
            "nar/",
            "pins/",
            "nix-cache-info.bak",
        ]) {
            assert.deepEqual(classifyKey(unknown), { kind: "unknown" }, unknown);
        }
    });

    test("store path hashes of full paths and base names; anything else is none", () => {
        assert.equal(storePathHash(path("a")), hash("a"));
        assert.equal(storePathHash(base("a")), hash("a"));
        assert.equal(storePathHash(`/nix/store/${hash("a")}`), undefined);
        assert.equal(storePathHash(`/nix/store/${"t".repeat(32)}-x`), undefined);
        assert.equal(storePathHash("/nix/store/short-x"), undefined);
    });
});

describe("narinfos as the collector reads them", () => {
    const NIX_WROTE = `StorePath: /nix/store/xhdaqn41zfk58cb72qbigd6hg76zpvny-nix-cache-test-top
URL: nar/0dypq01q64cw125mdpn0lp0kic8s2n0gscf2mw5lwk3g21ja94nd.nar.zst
Compression: zstd
FileHash: sha256:0dypq01q64cw125mdpn0lp0kic8s2n0gscf2mw5lwk3g21ja94nd
FileSize: 142
NarHash: sha256:1bl7wwwbpdh1cbdf6ha3g4lciz928fi5pcbnhvbbh6ll0hr2h0lw
NarSize: 184
References: ajy39mfl6sd6pph2cx6xachc1j1nqw3v-nix-cache-test-dependency xhdaqn41zfk58cb72qbigd6hg76zpvny-nix-cache-test-top
`;

    test("keeps the store path, the references other than itself, and the NAR's key", () => {
        assert.deepEqual(summarizeNarInfo(NIX_WROTE), {
            storePath: "/nix/store/xhdaqn41zfk58cb72qbigd6hg76zpvny-nix-cache-test-top",
            references: ["ajy39mfl6sd6pph2cx6xachc1j1nqw3v-nix-cache-test-dependency"],
            narKey: "nar/0dypq01q64cw125mdpn0lp0kic8s2n0gscf2mw5lwk3g21ja94nd.nar.zst",
        });
    });

    test("reads a narinfo whose NarHash is spelt in a way Nix also accepts (an SRI hash)", () => {
        const sri = NIX_WROTE.replace(/^NarHash: .*$/m, "NarHash: sha256-JSMZUOgHY31qzveEaK3TVTCgKuSZCHwB+vCVtBJZFK0=");
        assert.equal(summarizeNarInfo(sri).references.length, 1);
    });

    test("refuses a NAR elsewhere than this cache's nar/ (the collector could not tell it is named)", () => {
        assert.throws(() => summarizeNarInfo(NIX_WROTE.replace(/^URL: .*$/m, "URL: https://elsewhere.example/nar/x.nar.zst")), /not a NAR of this cache/);
        assert.equal(summarizeNarInfo(NIX_WROTE.replace(/^URL: /m, "URL: /")).narKey, "nar/0dypq01q64cw125mdpn0lp0kic8s2n0gscf2mw5lwk3g21ja94nd.nar.zst");
    });

    test("refuses one without a URL or with a reference that is not a store path", () => {
        assert.throws(() => summarizeNarInfo(NIX_WROTE.replace(/^URL: .*\n/m, "")), /expected one URL line/);
        assert.throws(() => summarizeNarInfo(NIX_WROTE.replace("References: ", "References: not-a-path ")), /not a store path base name/);
    });
});

describe("pins", () => {
    test("one store path a line, or a file in one; comments and blank lines skipped; bad lines reported with their number", () => {
        assert.deepEqual(parsePins(`# release\n${path("a")}\n\n  ${path("b")}/bin/b  # kept for the demo\nrelative/${base("c")}\n${base("d")}\n${path("f")}/\n`), {
            paths: [path("a"), path("b"), path("f")],
            problems: [
                `line 5: 'relative/${base("c")}' is not a store path such as /nix/store/<hash>-<name>`,
                `line 6: '${base("d")}' is not a store path such as /nix/store/<hash>-<name>`,
            ],
        });
    });
});

describe("roots and the live set", () => {
    const narinfos = new Map([
        [hash("a"), object(`${hash("a")}.narinfo`, daysAgo(40))],
        [hash("b"), object(`${hash("b")}.narinfo`, daysAgo(29.9))],
        [hash("c"), object(`${hash("c")}.narinfo`, daysAgo(30))],
        [hash("d"), object(`${hash("d")}.narinfo`, daysAgo(31))],
    ]);

    test("roots are narinfos uploaded within keep-days (the boundary included) and explicit paths the cache holds", () => {
        const { recent, explicit, missing } = findRoots({
            narinfos,
            now: NOW,
            keepDays: 30,
            explicit: [path("a"), path("z"), path("z")],
            inFlightSince: NOW,
        });
        assert.deepEqual([...recent].sort(), [hash("b"), hash("c")]);
        assert.deepEqual([...explicit], [hash("a")]);
        assert.deepEqual(missing, [path("z")]);
    });

    test("keep-days 0 roots only what was uploaded at this very moment or later", () => {
        assert.deepEqual([...findRoots({ narinfos, now: daysAgo(29.9), keepDays: 0, explicit: [], inFlightSince: NOW }).recent], [hash("b")]);
    });

    test("narinfos uploaded since inFlightSince (the grace period by the real clock) are roots whatever --now says", () => {
        const pretendingNextYear = new Date(NOW.getTime() + 365 * 86_400_000);
        const { recent } = findRoots({ narinfos, now: pretendingNextYear, keepDays: 30, explicit: [], inFlightSince: daysAgo(30.5) });
        assert.deepEqual([...recent].sort(), [hash("b"), hash("c")]);
    });

    test("the live set is the closure over References: chains and diamonds; a missing reference is reported", () => {
        // top -> left, right -> bottom (a diamond); bottom -> gone (not in the cache); chain x -> y -> z.
        const summaries = new Map([
            [hash("p"), summary("p", ["l", "r"])],
            [hash("l"), summary("l", ["b"])],
            [hash("r"), summary("r", ["b"])],
            [hash("b"), summary("b", ["g"])],
            [hash("x"), summary("x", ["y"])],
            [hash("y"), summary("y", ["z"])],
            [hash("z"), summary("z", [])],
            [hash("q"), summary("q", ["z"])],
        ]);
        const present = (h: string) => summaries.has(h);
        const diamond = liveClosure([hash("p")], summaries, present);
        assert.deepEqual([...diamond.live].sort(), [hash("b"), hash("l"), hash("p"), hash("r")]);
        assert.deepEqual(diamond.missingReferences, [{ storePath: path("b"), reference: base("g") }]);
        const chain = liveClosure([hash("x")], summaries, present);
        assert.deepEqual([...chain.live].sort(), [hash("x"), hash("y"), hash("z")]);
        assert.deepEqual(chain.missingReferences, []);
    });
});

describe("sweep order and NARs", () => {
    test("condemned narinfos go referrers first: no level references a later one's paths", () => {
        // a -> b -> c, a -> c, d -> c; h stands alone; f -> k (k is not condemned).
        const summaries = new Map([
            [hash("a"), summary("a", ["b", "c"])],
            [hash("b"), summary("b", ["c"])],
            [hash("c"), summary("c", [])],
            [hash("d"), summary("d", ["c"])],
            [hash("h"), summary("h", [])],
            [hash("f"), summary("f", ["k"])],
        ]);
        const levels = deletionLevels(new Set([hash("a"), hash("b"), hash("c"), hash("d"), hash("h"), hash("f")]), summaries);
        assert.deepEqual(levels, [[hash("a"), hash("d"), hash("f"), hash("h")], [hash("b")], [hash("c")]]);
    });

    test("NARs no remaining narinfo names are deleted once older than the grace period, younger ones kept", () => {
        const nars = new Map([
            ["nar/named.nar.zst", object("nar/named.nar.zst", daysAgo(100))],
            ["nar/old.nar.zst", object("nar/old.nar.zst", new Date(NOW.getTime() - 25 * 3_600_000))],
            ["nar/young.nar.zst", object("nar/young.nar.zst", new Date(NOW.getTime() - 23 * 3_600_000))],
        ]);
        assert.deepEqual(unnamedNars(nars, new Set(["nar/named.nar.zst"]), inFlightSince(NOW, 24)), {
            deletable: ["nar/old.nar.zst"],
            young: ["nar/young.nar.zst"],
        });
    });

    test("an inventory sorts every key into its kind, pins and unknown keys apart", () => {
        const inventory = takeInventory([
            object(`${hash("a")}.narinfo`, NOW),
            object(`${hash("a")}.ls`, NOW),
            object("nar/x.nar.xz", NOW),
            object("nix-cache-info", NOW),
            object("pins/keep", NOW),
            object("log/y.drv", NOW),
        ]);
        assert.deepEqual([...inventory.narinfos.keys()], [hash("a")]);
        assert.deepEqual([...inventory.listings.keys()], [hash("a")]);
        assert.deepEqual([...inventory.nars.keys()], ["nar/x.nar.xz"]);
        assert.deepEqual(inventory.pins.map((pin) => pin.key), ["pins/keep"]);
        assert.deepEqual(inventory.leftAlone.map((left) => left.key), ["nix-cache-info", "log/y.drv"]);
    });
});
