// Substitution from a real S3 server: the program's bucket policy and writer policy (from the
// mock-engine run) applied to a Ceph RGW bucket, `nix-cache-info` put there by the admin as the
// stack does, a closure signed with the exported key uploaded with the writer's credentials, then
// fetched anonymously at the stack's substituter URL (path-style, host swapped for RGW's) by real
// Nix clients: Debian 12's 2.8 and Debian testing's 2.34 (tests/nixChroot.ts).
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test, type TestContext, type TestOptions } from "node:test";
import { CACHE_INFO_KEY } from "../lib/cacheInfo";
import { registeredPolicies } from "./accessEvaluation";
import { ChrootNixWorkspace, NEEDS_NIX_CHROOT } from "./nixChroot";
import {
    buildTestClosure,
    EXAMPLE_CONFIG,
    fillBucket,
    narInfoKey,
    NEEDS_NIX,
    NixWorkspace,
    programOutputs,
    trustOnly,
    type NixResult,
    type ProgramOutputs,
    type TestClosure,
} from "./nixSupport";
import { NEEDS_RGW, withRgwCluster } from "./rgwCluster";

const WRITER = "nixbuilder";

/** A fresh Nix client with an empty store of its own. */
interface NixClient {
    run(command: string, args: string[], input?: string): Promise<NixResult>;
    /** The client's store as its Nix sees it (`--store` / `--to`). */
    store: string;
}

/**
 * The two Nix versions, each with how it refuses a path without a signature it trusts (NixOS/nix
 * src/libstore/local-store.cc, LocalStore::addToStore: the message changed between the two).
 */
const CLIENTS: { version: string; options: TestOptions; refusal: RegExp; create(t: TestContext): Promise<NixClient> }[] = [
    {
        version: "2.8",
        options: NEEDS_NIX,
        refusal: /because it lacks a valid signature/,
        async create(t) {
            const workspace = await NixWorkspace.create();
            t.after(() => workspace.remove());
            return { run: (command, args, input) => workspace.run(command, args, input), store: workspace.path("store") };
        },
    },
    {
        version: "2.34",
        options: NEEDS_NIX_CHROOT,
        refusal: /because it lacks a signature by a trusted key/,
        async create(t) {
            const workspace = await ChrootNixWorkspace.create();
            t.after(() => workspace.remove());
            return { run: (command, args, input) => workspace.run(command, args, input), store: workspace.path("store") };
        },
    },
];

describe("substitution from a real S3 server (Ceph RGW), anonymous and path-style", [NEEDS_NIX, NEEDS_RGW].find((o) => o.skip) ?? {}, () => {
    const rgw = withRgwCluster();
    let program: ProgramOutputs;
    let builder: NixWorkspace;
    let closure: TestClosure;
    let bucket: string;
    /** The program's substituter URL with its origin replaced by RGW's. */
    let substituter: string;

    before(async () => {
        program = await programOutputs();
        const policies = await registeredPolicies(EXAMPLE_CONFIG);
        const url = new URL(program.substituterUrl);
        bucket = url.pathname.slice(1);
        assert.match(bucket, /^[a-z0-9][a-z0-9.-]+$/, `the substituter URL ${program.substituterUrl} should be path-style`);
        assert.equal(url.search, "");
        substituter = `${rgw.cluster.origin}${url.pathname}`;

        builder = await NixWorkspace.create();
        closure = await buildTestClosure(builder);
        const local = await fillBucket(builder, closure, program, builder.path("buckets"));

        const admin = rgw.cluster.s3(rgw.admin);
        await admin.makeBucket(bucket);
        await rgw.cluster.putBucketPolicy(rgw.admin, bucket, policies.bucketPolicy);
        const writerCredentials = await rgw.cluster.createUser(WRITER);
        await rgw.cluster.putUserPolicy(rgw.admin, WRITER, "nix-cache-writer", policies.writerPolicy);
        // The stack creates nix-cache-info with the admin's provider; the writer may not rewrite it.
        await admin.fPutObject(bucket, CACHE_INFO_KEY, join(local, CACHE_INFO_KEY));
        const writer = rgw.cluster.s3(writerCredentials);
        const files = (await readdir(local, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile());
        for (const file of files) {
            const key = join(file.parentPath ?? file.path, file.name).slice(local.length + 1);
            if (key !== CACHE_INFO_KEY) {
                await writer.fPutObject(bucket, key, join(local, key));
            }
        }
        assert.ok(files.some((file) => file.name.endsWith(".narinfo")), "the closure should have been pushed");
    });
    after(async () => {
        await closure?.remove();
        await builder?.remove();
    });

    for (const { version, options, refusal, create } of CLIENTS) {
        describe(`by Nix ${version}`, options, () => {
            const copyFromCache = (client: NixClient, trustedKey: string) =>
                client.run("nix", ["copy", "--from", substituter, "--to", client.store, ...trustOnly(trustedKey), closure.top]);
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
                const result = await copyFromCache(client, program.publicKey);
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
                const original = await (await admin.getObject(bucket, key)).toArray().then((chunks) => Buffer.concat(chunks).toString());
                const tampered = original.replace(/^NarSize: (\d+)$/m, (_, size) => `NarSize: ${Number(size) + 1}`);
                assert.notEqual(tampered, original);
                await admin.putObject(bucket, key, tampered);
                t.after(() => admin.putObject(bucket, key, original));
                const client = await create(t);
                const result = await copyFromCache(client, program.publicKey);
                assert.notEqual(result.status, 0);
                assert.match(result.stderr, refusal);
                assert.deepEqual(await validPaths(client), []);
            });
        });
    }
});
