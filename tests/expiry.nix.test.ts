// What expiry meets in a real binary cache, with Debian's Nix 2.8 and file:// caches (the layout the
// bucket holds): NARs shared between store paths, and the smallest narinfo against the size threshold.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { thresholdProblem } from "../lib/lifecycle";
import { narInfoKey, NEEDS_NIX, NixWorkspace } from "./nixSupport";

/** Builds input-addressed paths (no CA line), one per name, each with exactly `content` as its output. */
async function buildWithContent(workspace: NixWorkspace, names: string[], content: string): Promise<string[]> {
    const file = workspace.path(`same-output-${randomUUID()}.nix`);
    const derivation = (name: string) =>
        `(derivation { name = "${name}"; system = builtins.currentSystem; builder = "/bin/sh"; ` +
        `args = [ "-c" "printf ${content} > $out" ]; })`;
    await writeFile(file, `[ ${names.map(derivation).join(" ")} ]\n`);
    return (await workspace.ok("nix-build", ["--no-out-link", file])).trim().split("\n");
}

const narInfoField = (narInfo: string, field: string) => new RegExp(`^${field}: (.*)$`, "m").exec(narInfo)?.[1];

describe("expiry and a real binary cache", NEEDS_NIX, () => {
    let workspace: NixWorkspace;
    const built: string[] = [];
    before(async () => {
        workspace = await NixWorkspace.create();
    });
    after(async () => {
        if (built.length > 0) {
            await workspace.ok("nix-store", ["--delete", ...built]);
        }
        await workspace?.remove();
    });

    test("two store paths with the same contents share one NAR, uploaded once: expiring it by its age breaks the newer path", async () => {
        const [older, newer] = await buildWithContent(workspace, ["shared-nar-first", "shared-nar-second"], randomUUID());
        built.push(older!, newer!);
        const cache = workspace.path("cache");
        const cacheUrl = `file://${cache}?compression=zstd`;

        await workspace.ok("nix", ["copy", "--to", cacheUrl, older!]);
        const [nar] = await readdir(join(cache, "nar"));
        const narFile = join(cache, "nar", nar!);
        // Its upload time (the modification time MinIO's expiry counts from) lies a month back.
        const firstUpload = new Date(Date.now() - 30 * 24 * 3600 * 1000);
        await utimes(narFile, firstUpload, firstUpload);

        // Nix names a NAR by the hash of its compressed content and skips uploading one that exists
        // (NixOS/nix src/libstore/binary-cache-store.cc, BinaryCacheStore::addToStoreCommon:
        // `if (repair || !fileExists(narInfo->url)) upsertFile(...) else stats.narWriteAverted++`).
        await workspace.ok("nix", ["copy", "--to", cacheUrl, newer!]);
        const narInfos = await Promise.all([older!, newer!].map((path) => readFile(join(cache, narInfoKey(path)), "utf8")));
        assert.equal(narInfoField(narInfos[1]!, "URL"), narInfoField(narInfos[0]!, "URL"));
        assert.equal(narInfoField(narInfos[1]!, "URL"), `nar/${nar}`);
        assert.deepEqual(await readdir(join(cache, "nar")), [nar], "one NAR for both");
        assert.equal((await stat(narFile)).mtime.getTime(), firstUpload.getTime(), "the shared NAR kept its first upload time");

        // Expiry deletes the NAR by its own age: the newer path's narinfo dangles.
        await rm(narFile);
        const client = workspace.path("client");
        const fetched = await workspace.run("nix", ["copy", "--no-check-sigs", "--from", cacheUrl, "--to", client, newer!]);
        assert.notEqual(fetched.status, 0, "nix copy --from fails");
        assert.match(fetched.stderr, /does not exist in binary cache/);
        // Pushing again does not repair it: asked afresh (no remembered narinfo), the cache still has
        // the narinfo, so Nix copies nothing.
        const push = ["copy", "-v", "--option", "narinfo-cache-positive-ttl", "0", "--to", cacheUrl, newer!];
        const repushed = await workspace.run("nix", push);
        assert.equal(repushed.status, 0, repushed.stderr);
        assert.match(repushed.stderr, /copying 0 paths/);
        assert.deepEqual(await readdir(join(cache, "nar")), [], "still no NAR");
        // Without the dangling narinfo, the same push uploads the path, NAR included.
        await rm(join(cache, narInfoKey(newer!)));
        assert.match(await workspace.run("nix", push).then((result) => result.stderr), /copying 1 paths/);
        assert.deepEqual(await readdir(join(cache, "nar")), [nar]);
    });

    test("the smallest narinfo Nix writes is larger than any nix-cache-info the threshold check accepts", async () => {
        // A one-letter name, no references, no compression, no signature: the fewest bytes Nix writes.
        const [path] = await buildWithContent(workspace, ["a"], "x");
        built.push(path!);
        const cache = workspace.path("smallest");
        await workspace.ok("nix", ["copy", "--to", `file://${cache}?compression=none`, path!]);
        const narInfo = await readFile(join(cache, narInfoKey(path!)), "utf8");
        // Only the lines every narinfo has (Nix's NarInfo::to_string), with the shortest store dir a
        // stack can set (nix-cache:storeDir "/x"): what no narinfo of any cache can undercut.
        const everyNarInfoHas = ["StorePath", "URL", "Compression", "NarHash", "NarSize"];
        const smallest = narInfo
            .split("\n")
            .filter((line) => everyNarInfoHas.includes(line.split(":")[0]!))
            .map((line) => line.replace("/nix/store/", "/x/"))
            .join("\n");
        assert.equal(smallest.split("\n").length, everyNarInfoHas.length, narInfo);
        const bytes = Buffer.byteLength(`${smallest}\n`);
        assert.ok(bytes >= 213, `${bytes} bytes: lib/lifecycle.ts reckons at least 213`);
        // A nix-cache-info that large would make the rule's threshold spare such a narinfo.
        assert.notEqual(thresholdProblem("x".repeat(bytes)), undefined, `a ${bytes}-byte nix-cache-info is accepted`);
    });
});
