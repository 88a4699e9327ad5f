// A current Nix's S3 store with the stack's exact `uploadUrl`: Debian testing's Nix 2.34 (in the
// chroot, tests/nixChroot.ts) runs `nix copy --to "<uploadUrl>&secret-key=<key file>"`, as the
// builder drainer does, against the stack's bucket on RGW, with only the endpoint swapped for RGW's.
// Debian builds Nix 2.34 without the AWS SDK, so its S3 requests are unsigned: the bucket here is
// test-only, its registered policy widened to let anyone PutObject. What this shows: a current
// Nix parses the URL (bucket, endpoint, region, profile, compression), signs on upload with the
// stack's key, and uploads a closure that Nix 2.8 and 2.34 clients then substitute. What it does
// not show: requests signed with the writer's credentials (the `profile`), which this build never
// sends.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import { CACHE_INFO_KEY } from "../lib/cacheInfo";
import { ChrootNixWorkspace, NEEDS_NIX_CHROOT } from "./nixChroot";
import { NIX_CLIENTS } from "./nixClients";
import { narInfoKey, trustOnly, type NixResult } from "./nixSupport";
import { deployCache, widenedPolicy, type RgwCache } from "./rgwCache";
import { NEEDS_RGW, withRgwCluster } from "./rgwCluster";

describe("Nix 2.34's S3 store with the stack's uploadUrl, against RGW", [NEEDS_NIX_CHROOT, NEEDS_RGW].find((o) => o.skip) ?? {}, () => {
    const rgw = withRgwCluster();
    let cache: RgwCache;
    let pusher: ChrootNixWorkspace;
    let uploadUrl: string;
    let top: string;
    let dependency: string;
    const built: string[] = [];
    /** The uploads, made once before the tests, under the registered and the widened bucket policy. */
    let refused: NixResult;
    let copied: NixResult;

    before(async () => {
        cache = await deployCache(rgw);
        pusher = await ChrootNixWorkspace.create();
        const keyFile = pusher.path("secret-key");
        await writeFile(pusher.hostPath("secret-key"), cache.program.secretKey, { mode: 0o600 });
        const endpoint = new URL(cache.program.uploadUrl).searchParams.get("endpoint");
        assert.ok(endpoint, `no endpoint in ${cache.program.uploadUrl}`);
        const swapped = cache.program.uploadUrl.replace(`endpoint=${endpoint}`, `endpoint=${rgw.cluster.origin}`);
        assert.notEqual(swapped, cache.program.uploadUrl, "the endpoint should appear verbatim in the upload URL");
        // As scripts/drain appends it: builders sign on upload.
        uploadUrl = `${swapped}&secret-key=${keyFile}`;

        // Built in the chroot's own store (unsigned: the upload signs), new paths on every run.
        await writeFile(
            pusher.hostPath("closure.nix"),
            `let dependency = derivation {
               name = "nix-cache-test-dependency"; system = builtins.currentSystem;
               builder = "/bin/sh"; args = [ "-c" "echo ${randomUUID()} > $out" ];
             };
             in derivation {
               name = "nix-cache-test-top"; system = builtins.currentSystem;
               builder = "/bin/sh"; args = [ "-c" "echo \${dependency} > $out" ];
             }`,
        );
        const topDrv = (await pusher.ok("nix-instantiate", [pusher.path("closure.nix")])).trim();
        built.push(...(await pusher.ok("nix-store", ["--query", "--requisites", topDrv])).trim().split("\n"));
        top = (await pusher.ok("nix-store", ["--realise", topDrv])).trim();
        dependency = (await pusher.ok("nix-store", ["--query", "--references", top])).trim();
        built.push(top, dependency);
        refused = await pusher.run("nix", ["copy", "--to", uploadUrl, top]);
        await rgw.cluster.putBucketPolicy(
            rgw.admin,
            cache.bucket,
            widenedPolicy(cache.policies.bucketPolicy, "s3:GetObject", "s3:PutObject"),
        );
        copied = await pusher.run("nix", ["copy", "--to", uploadUrl, top]);
    });
    after(async () => {
        if (built.length > 0) {
            await pusher.ok("nix-store", ["--delete", ...built.reverse()]);
        }
        await pusher?.remove();
    });

    test("the registered bucket policy refuses its unsigned upload", () => {
        assert.notEqual(refused.status, 0);
        assert.match(refused.stderr, /unable to upload '[^']+': HTTP error 403/);
    });

    test("nix copy --to the upload URL uploads the closure, compressed as the URL says, next to the stack's nix-cache-info", async () => {
        assert.equal(copied.status, 0, copied.stderr);
        const admin = rgw.cluster.s3(rgw.admin);
        for (const path of [top, dependency]) {
            const narInfo = Buffer.concat(await (await admin.getObject(cache.bucket, narInfoKey(path))).toArray()).toString();
            assert.match(narInfo, new RegExp(`^StorePath: ${path}$`, "m"));
            assert.match(narInfo, new RegExp(`^Compression: ${cache.program.uploadCompression}$`, "m"));
            assert.match(narInfo, /^Sig: /m);
        }
        // Nix writes nix-cache-info only when it is missing (BinaryCacheStore::init); it was not.
        const cacheInfo = Buffer.concat(await (await admin.getObject(cache.bucket, CACHE_INFO_KEY)).toArray()).toString();
        assert.equal(cacheInfo, cache.program.cacheInfo);
    });

    for (const { version, options, create } of NIX_CLIENTS) {
        test(`Nix ${version} substitutes what Nix 2.34 uploaded, signed with the stack's key`, options, async (t) => {
            const client = await create(t);
            const copied = await client.run("nix", ["copy", "--from", cache.substituter, "--to", client.store, ...trustOnly(cache.program.publicKey), top]);
            assert.equal(copied.status, 0, copied.stderr);
            const valid = await client.run("nix", ["path-info", "--store", client.store, "--recursive", top]);
            assert.deepEqual(valid.stdout.trim().split("\n").sort(), [dependency, top].sort());
        });
    }
});
