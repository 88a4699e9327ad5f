// The project's narinfo signatures against Nix's own, for fresh store paths signed with the key the
// program exports.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { before, describe, test } from "node:test";
import { narInfoIsSignedBy, parseNarInfo, signNarInfo, type NarInfo } from "../lib/narinfo";
import { bucketDir, narInfoKey, NEEDS_NIX, withFilledBucket } from "./nixSupport";

const STORE_DIR = "/nix/store";

describe("narinfo signatures, compared with Nix's", NEEDS_NIX, () => {
    const cache = withFilledBucket();
    /** What `nix store sign` + `nix copy` wrote for each path of the closure. */
    const narInfos = new Map<string, NarInfo>();

    before(async () => {
        const bucket = bucketDir(cache.root, cache.program.substituterUrl);
        for (const path of [cache.closure.top, cache.closure.dependency]) {
            narInfos.set(path, parseNarInfo(await readFile(join(bucket, narInfoKey(path)), "utf8")));
        }
    });

    test("the narinfos list what Nix knows about the paths", async () => {
        const top = narInfos.get(cache.closure.top)!;
        assert.equal(top.storePath, cache.closure.top);
        assert.deepEqual(top.references, [basename(cache.closure.dependency)]);
        const pathInfo = JSON.parse(await cache.builder.ok("nix", ["path-info", "--json", cache.closure.top]))[0];
        assert.equal(top.narSize, pathInfo.narSize);
        assert.deepEqual(narInfos.get(cache.closure.dependency)!.references, []);
    });

    test("Nix's signature equals the project's for the same store path", () => {
        for (const info of narInfos.values()) {
            assert.equal(info.signatures.length, 1, `${info.storePath} should carry Nix's signature only`);
            assert.match(info.signatures[0]!, /^s3\.example\.org-1:/);
            assert.equal(signNarInfo(info, STORE_DIR, cache.program.secretKey), info.signatures[0]);
        }
    });

    test("the project's verifier accepts Nix's signatures under the exported public key", () => {
        for (const info of narInfos.values()) {
            assert.equal(narInfoIsSignedBy(info, STORE_DIR, [cache.program.publicKey]), true, info.storePath);
        }
    });

    test("the project's verifier rejects a changed NarHash, NarSize or reference list", () => {
        const top = narInfos.get(cache.closure.top)!;
        const dependency = narInfos.get(cache.closure.dependency)!;
        const changed: [string, NarInfo][] = [
            ["NarHash of another path", { ...top, narHash: dependency.narHash }],
            ["NarSize one larger", { ...top, narSize: top.narSize + 1 }],
            ["reference dropped", { ...top, references: [] }],
            ["reference added", { ...dependency, references: [basename(cache.closure.top)] }],
        ];
        for (const [what, info] of changed) {
            assert.equal(narInfoIsSignedBy(info, STORE_DIR, [cache.program.publicKey]), false, what);
        }
    });

    test("a key Nix generated under the same name does not verify the program's signatures", async () => {
        const otherSecret = (await cache.builder.ok("nix", ["key", "generate-secret", "--key-name", "s3.example.org-1"])).trim();
        const otherPublic = (await cache.builder.ok("nix", ["key", "convert-secret-to-public"], otherSecret)).trim();
        assert.equal(narInfoIsSignedBy(narInfos.get(cache.closure.top)!, STORE_DIR, [otherPublic]), false);
    });
});
