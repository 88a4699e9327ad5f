// A current Nix's S3 store with the stack's exact `uploadUrl`: Debian testing's Nix 2.34 (in the
// chroot, tests/nixChroot.ts) runs `nix copy --to "<uploadUrl>&secret-key=<key file>"`, as the
// builder drainer does, against the stack's bucket on RGW, with only the endpoint swapped for RGW's.
// Debian builds Nix 2.34 without the AWS SDK, so its S3 requests are unsigned: the bucket here is
// test-only, its registered policy widened to let anyone PutObject. What this shows: a current
// Nix parses the URL (bucket, endpoint, region, profile, compression), signs on upload with the
// stack's key, and uploads a closure that Nix 2.8 and 2.34 clients then substitute; and the builder
// drainer (scripts/drain, with scripts/enqueue's queue) does the same end to end. What it does not
// show: requests signed with the writer's credentials (the `profile`), which this build never sends.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { copyFile, mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CACHE_INFO_KEY } from "../lib/cacheInfo";
import { ChrootNixWorkspace, NEEDS_NIX_CHROOT } from "./nixChroot";
import { NIX_CLIENTS } from "./nixClients";
import { narInfoKey, trustOnly, type NixResult } from "./nixSupport";
import { deployCache, widenedPolicy, type RgwCache } from "./rgwCache";
import { NEEDS_RGW, withRgwCluster } from "./rgwCluster";

interface ChrootClosure {
    top: string;
    dependency: string;
    /** Every path built, derivations included, to delete afterwards. */
    built: string[];
}

/** Builds two input-addressed paths, one referring to the other, in the chroot's own store (unsigned). */
async function buildInChroot(pusher: ChrootNixWorkspace, name: string): Promise<ChrootClosure> {
    await writeFile(
        pusher.hostPath(`${name}.nix`),
        `let dependency = derivation {
           name = "nix-cache-test-${name}-dependency"; system = builtins.currentSystem;
           builder = "/bin/sh"; args = [ "-c" "echo ${randomUUID()} > $out" ];
         };
         in derivation {
           name = "nix-cache-test-${name}"; system = builtins.currentSystem;
           builder = "/bin/sh"; args = [ "-c" "echo \${dependency} > $out" ];
         }`,
    );
    const topDrv = (await pusher.ok("nix-instantiate", [pusher.path(`${name}.nix`)])).trim();
    const built = (await pusher.ok("nix-store", ["--query", "--requisites", topDrv])).trim().split("\n");
    const top = (await pusher.ok("nix-store", ["--realise", topDrv])).trim();
    const dependency = (await pusher.ok("nix-store", ["--query", "--references", top])).trim();
    return { top, dependency, built: [top, dependency, ...built] };
}

describe("Nix 2.34's S3 store with the stack's uploadUrl, against RGW", [NEEDS_NIX_CHROOT, NEEDS_RGW].find((o) => o.skip) ?? {}, () => {
    const rgw = withRgwCluster();
    let cache: RgwCache;
    let pusher: ChrootNixWorkspace;
    const closures: Record<"copied" | "drained", ChrootClosure | undefined> = { copied: undefined, drained: undefined };
    /** What was run once before the tests: they check what it did. */
    let refused: NixResult;
    let copied: NixResult;
    let enqueued: NixResult;
    let drained: NixResult;

    before(async () => {
        cache = await deployCache(rgw);
        pusher = await ChrootNixWorkspace.create();
        const keyFile = pusher.path("secret-key");
        await writeFile(pusher.hostPath("secret-key"), cache.program.secretKey, { mode: 0o600 });
        const upload = new URL(cache.program.uploadUrl);
        const endpoint = upload.searchParams.get("endpoint");
        assert.ok(endpoint, `no endpoint in ${cache.program.uploadUrl}`);
        const uploadUrl = cache.program.uploadUrl.replace(`endpoint=${endpoint}`, `endpoint=${rgw.cluster.origin}`);
        assert.notEqual(uploadUrl, cache.program.uploadUrl, "the endpoint should appear verbatim in the upload URL");
        closures.copied = await buildInChroot(pusher, "copied");
        closures.drained = await buildInChroot(pusher, "drained");

        // As scripts/drain appends it: builders sign on upload.
        const copy = () => pusher.run("nix", ["copy", "--to", `${uploadUrl}&secret-key=${keyFile}`, closures.copied!.top]);
        refused = await copy();
        await rgw.cluster.putBucketPolicy(
            rgw.admin,
            cache.bucket,
            widenedPolicy(cache.policies.bucketPolicy, "s3:GetObject", "s3:PutObject"),
        );
        copied = await copy();

        // The drainer as a builder runs it, with the writer's credentials under the URL's profile
        // (which it checks; this Nix then ignores them).
        for (const script of ["enqueue", "drain"]) {
            await copyFile(join(__dirname, "..", "scripts", script), pusher.hostPath(script));
        }
        await mkdir(pusher.hostPath("home", ".aws"));
        await writeFile(
            pusher.hostPath("home", ".aws", "credentials"),
            `[${upload.searchParams.get("profile")}]\naws_access_key_id = ${cache.writer.accessKey}\naws_secret_access_key = ${cache.writer.secretKey}\n`,
            { mode: 0o600 },
        );
        const queue = `NIX_CACHE_QUEUE_DIR=${pusher.path("queue")}`;
        enqueued = await pusher.run("env", [queue, "bash", pusher.path("enqueue"), closures.drained.top]);
        drained = await pusher.run("env", [
            queue,
            `NIX_CACHE_UPLOAD_URL=${uploadUrl}`,
            `NIX_CACHE_SECRET_KEY_FILE=${keyFile}`,
            "NIX_CACHE_RETRY_DELAY=1",
            "bash",
            pusher.path("drain"),
        ]);
    });
    after(async () => {
        for (const closure of Object.values(closures)) {
            if (closure !== undefined) {
                await pusher.ok("nix-store", ["--delete", ...closure.built]);
            }
        }
        await pusher?.remove();
    });

    /** The narinfo RGW serves for `path`. */
    const servedNarInfo = async (path: string) =>
        Buffer.concat(await (await rgw.cluster.s3(rgw.admin).getObject(cache.bucket, narInfoKey(path))).toArray()).toString();

    test("the registered bucket policy refuses its unsigned upload", () => {
        assert.notEqual(refused.status, 0);
        assert.match(refused.stderr, /unable to upload '[^']+': HTTP error 403/);
    });

    test("nix copy --to the upload URL uploads the closure, compressed as the URL says, next to the stack's nix-cache-info", async () => {
        assert.equal(copied.status, 0, copied.stderr);
        for (const path of [closures.copied!.top, closures.copied!.dependency]) {
            const narInfo = await servedNarInfo(path);
            assert.match(narInfo, new RegExp(`^StorePath: ${path}$`, "m"));
            assert.match(narInfo, new RegExp(`^Compression: ${cache.program.uploadCompression}$`, "m"));
            assert.match(narInfo, /^Sig: /m);
        }
        // Nix writes nix-cache-info only when it is missing (BinaryCacheStore::init); it was not.
        const cacheInfo = Buffer.concat(await (await rgw.cluster.s3(rgw.admin).getObject(cache.bucket, CACHE_INFO_KEY)).toArray()).toString();
        assert.equal(cacheInfo, cache.program.cacheInfo);
    });

    test("the builder drainer uploads its queue with this Nix and empties it", async () => {
        assert.equal(enqueued.status, 0, enqueued.stderr);
        assert.equal(drained.status, 0, drained.stderr);
        assert.deepEqual(await readdir(pusher.hostPath("queue", "pending")), []);
        for (const path of [closures.drained!.top, closures.drained!.dependency]) {
            assert.match(await servedNarInfo(path), /^Sig: /m);
        }
    });

    for (const { version, options, create } of NIX_CLIENTS) {
        for (const how of ["copied", "drained"] as const) {
            test(`Nix ${version} substitutes the closure Nix 2.34 ${how}, signed with the stack's key`, options, async (t) => {
                const { top, dependency } = closures[how]!;
                const client = await create(t);
                const result = await client.run("nix", ["copy", "--from", cache.substituter, "--to", client.store, ...trustOnly(cache.program.publicKey), top]);
                assert.equal(result.status, 0, result.stderr);
                const valid = await client.run("nix", ["path-info", "--store", client.store, "--recursive", top]);
                assert.deepEqual(valid.stdout.trim().split("\n").sort(), [dependency, top].sort());
            });
        }
    }
});
