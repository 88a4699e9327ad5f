// The project's narinfo signatures against those of real Nix, 2.8 and 2.34 (tests/nixClients.ts),
// for fresh store paths signed with the key the program exports. The paths are built by the host's
// Nix 2.8 (tests/nixSupport.ts); each client imports them unsigned into a store of its own, signs
// them with `nix store sign` and writes their narinfos with `nix copy --to file://`.
import assert from "node:assert/strict";
import { cp, readdir, readFile, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { before, describe, test } from "node:test";
import { narInfoIsSignedBy, parseNarInfo, signNarInfo, type NarInfo } from "../lib/narinfo";
import { clientForBlock, NIX_CLIENTS } from "./nixClients";
import { bucketDir, narInfoKey, NEEDS_NIX, withFilledBucket } from "./nixSupport";

const STORE_DIR = "/nix/store";

/**
 * The NAR size `nix path-info --json` reports. Nix 2.8 prints an array of infos that each name
 * their path; later Nix prints an object keyed by path (NixOS/nix commit e85635e, "Make nix
 * path-info --json return an object not array").
 */
function narSizeOf(pathInfoJson: string, storePath: string): number {
    const parsed = JSON.parse(pathInfoJson) as { path: string; narSize: number }[] | Record<string, { narSize: number }>;
    const info = Array.isArray(parsed) ? parsed.find((entry) => entry.path === storePath) : parsed[storePath];
    assert.ok(info, `nix path-info --json says nothing about ${storePath}: ${pathInfoJson}`);
    return info.narSize;
}

describe("narinfo signatures, compared with Nix's", NEEDS_NIX, () => {
    const cache = withFilledBucket();

    for (const { version, options, create } of NIX_CLIENTS) {
        describe(`signed by Nix ${version}`, options, () => {
            const block = clientForBlock(create);
            /** What this Nix's `nix store sign` + `nix copy` wrote for each path of the closure. */
            const narInfos = new Map<string, NarInfo>();

            before(async () => {
                const { client } = block;
                // The bucket without its signatures: imported only with --no-check-sigs, so that the
                // one signature each narinfo carries afterwards is this Nix's own.
                const unsigned = client.hostPath("unsigned");
                await cp(bucketDir(cache.root, cache.program.substituterUrl), unsigned, { recursive: true });
                for (const name of (await readdir(unsigned)).filter((file) => file.endsWith(".narinfo"))) {
                    const file = join(unsigned, name);
                    await writeFile(file, (await readFile(file, "utf8")).replace(/^Sig: .*\n/gm, ""));
                }
                await client.ok("nix", ["copy", "--from", `file://${client.path("unsigned")}`, "--to", client.store, "--no-check-sigs", cache.closure.top]);
                await writeFile(client.hostPath("signing-key"), cache.program.secretKey, { mode: 0o600 });
                await client.ok("nix", ["store", "sign", "--store", client.store, "--key-file", client.path("signing-key"), "--recursive", cache.closure.top]);
                const compression = cache.program.uploadCompression;
                await client.ok("nix", ["copy", "--from", client.store, "--to", `file://${client.path("signed")}?compression=${compression}`, cache.closure.top]);
                for (const path of [cache.closure.top, cache.closure.dependency]) {
                    narInfos.set(path, parseNarInfo(await readFile(client.hostPath("signed", narInfoKey(path)), "utf8")));
                }
            });

            test("the narinfos list what Nix knows about the paths", async () => {
                const { client } = block;
                const top = narInfos.get(cache.closure.top)!;
                assert.equal(top.storePath, cache.closure.top);
                assert.deepEqual(top.references, [basename(cache.closure.dependency)]);
                const pathInfo = await client.ok("nix", ["path-info", "--store", client.store, "--json", cache.closure.top]);
                assert.equal(top.narSize, narSizeOf(pathInfo, cache.closure.top));
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
        });
    }

    describe("the project's verifier", () => {
        /** What the host's Nix 2.8 signed and pushed to the bucket for each path of the closure. */
        const pushed = new Map<string, NarInfo>();
        before(async () => {
            const bucket = bucketDir(cache.root, cache.program.substituterUrl);
            for (const path of [cache.closure.top, cache.closure.dependency]) {
                pushed.set(path, parseNarInfo(await readFile(join(bucket, narInfoKey(path)), "utf8")));
            }
        });

        test("rejects a changed NarHash, NarSize or reference list", () => {
            const top = pushed.get(cache.closure.top)!;
            const dependency = pushed.get(cache.closure.dependency)!;
            assert.equal(narInfoIsSignedBy(top, STORE_DIR, [cache.program.publicKey]), true);
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
            assert.equal(narInfoIsSignedBy(pushed.get(cache.closure.top)!, STORE_DIR, [otherPublic]), false);
        });
    });
});
