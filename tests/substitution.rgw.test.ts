// Substitution from a real S3 server: the program's bucket policy and writer policy (from the
// mock-engine run) applied to a Ceph RGW bucket, `nix-cache-info` put there by the admin as the
// stack does, a closure signed with the exported key uploaded with the writer's credentials, then
// fetched anonymously at the stack's substituter URL (path-style, host swapped for RGW's) by real
// Nix clients: Debian 12's 2.8 and Debian testing's 2.34 (tests/nixChroot.ts).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { NIX_CLIENTS, type NixClient } from "./nixClients";
import { buildTestClosure, fillBucket, narInfoKey, NEEDS_NIX, NixWorkspace, trustOnly, type TestClosure } from "./nixSupport";
import { deployCache, uploadAsWriter, type RgwCache } from "./rgwCache";
import { NEEDS_RGW, withRgwCluster } from "./rgwCluster";

describe("substitution from a real S3 server (Ceph RGW), anonymous and path-style", [NEEDS_NIX, NEEDS_RGW].find((o) => o.skip) ?? {}, () => {
    const rgw = withRgwCluster();
    let cache: RgwCache;
    let builder: NixWorkspace;
    let closure: TestClosure;

    before(async () => {
        cache = await deployCache(rgw);
        builder = await NixWorkspace.create();
        closure = await buildTestClosure(builder);
        await uploadAsWriter(rgw, cache, await fillBucket(builder, closure, cache.program, builder.path("buckets")));
    });
    after(async () => {
        await closure?.remove();
        await builder?.remove();
    });

    for (const { version, options, refusal, create } of NIX_CLIENTS) {
        describe(`by Nix ${version}`, options, () => {
            const copyFromCache = (client: NixClient, trustedKey: string) =>
                client.run("nix", ["copy", "--from", cache.substituter, "--to", client.store, ...trustOnly(trustedKey), closure.top]);
            const validPaths = async (client: NixClient) => {
                const result = await client.run("nix", ["path-info", "--store", client.store, "--recursive", closure.top]);
                return result.status === 0 ? result.stdout.trim().split("\n").sort() : [];
            };

            test(`is this Nix version`, async (t) => {
                const client = await create(t);
                const result = await client.run("nix", ["--version"]);
                assert.match(result.stdout, new RegExp(`^nix \\(Nix\\) ${version.replace(".", "\\.")}\\.`), result.stderr);
            });

            test("receives the whole closure, signed with the exported key", async (t) => {
                const client = await create(t);
                const result = await copyFromCache(client, cache.program.publicKey);
                assert.equal(result.status, 0, result.stderr);
                assert.deepEqual(await validPaths(client), [closure.dependency, closure.top].sort());
            });

            test("refuses the closure when another key is trusted", async (t) => {
                const client = await create(t);
                const otherSecret = (await client.run("nix", ["key", "generate-secret", "--key-name", "s3.example.org-1"])).stdout;
                const otherPublic = (await client.run("nix", ["key", "convert-secret-to-public"], otherSecret)).stdout.trim();
                assert.match(otherPublic, /^s3\.example\.org-1:/);
                const result = await copyFromCache(client, otherPublic);
                assert.notEqual(result.status, 0);
                assert.match(result.stderr, refusal);
                assert.deepEqual(await validPaths(client), []);
            });

            test("refuses a narinfo tampered with on the server", async (t) => {
                const admin = rgw.cluster.s3(rgw.admin);
                const key = narInfoKey(closure.top);
                const original = await (await admin.getObject(cache.bucket, key)).toArray().then((chunks) => Buffer.concat(chunks).toString());
                const tampered = original.replace(/^NarSize: (\d+)$/m, (_, size) => `NarSize: ${Number(size) + 1}`);
                assert.notEqual(tampered, original);
                await admin.putObject(cache.bucket, key, tampered);
                t.after(() => admin.putObject(cache.bucket, key, original));
                const client = await create(t);
                const result = await copyFromCache(client, cache.program.publicKey);
                assert.notEqual(result.status, 0);
                assert.match(result.stderr, refusal);
                assert.deepEqual(await validPaths(client), []);
            });
        });
    }
});
