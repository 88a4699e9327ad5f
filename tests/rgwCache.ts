// The stack's cache bucket on a real RGW (tests/rgwCluster.ts) as `pulumi up` leaves it: the
// bucket, the bucket policy and writer policy the program registers (mock-engine run, applied byte
// for byte), the writer user, and the program's `nix-cache-info` put by the admin, as the stack's
// S3Object is. Builders' uploads then go through the writer's credentials.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, type TestContext } from "node:test";
import type { ClientOptions } from "minio";
import { CACHE_INFO_KEY } from "../lib/cacheInfo";
import { registeredPolicies, type RegisteredPolicies } from "./accessEvaluation";
import {
    buildTestClosure,
    EXAMPLE_CONFIG,
    fillBucket,
    NixWorkspace,
    programOutputs,
    type ProgramOutputs,
    type TestClosure,
} from "./nixSupport";
import type { Credentials, RgwFixture } from "./rgwCluster";

const WRITER = "nixbuilder";

export interface RgwCache {
    program: ProgramOutputs;
    /** The policies the program registers, as applied to RGW. */
    policies: RegisteredPolicies;
    bucket: string;
    /** The program's substituter URL with its origin replaced by RGW's (path-style, as the stack's). */
    substituter: string;
    writer: Credentials;
}

/**
 * Runs the program with `EXAMPLE_CONFIG` plus `config` and deploys its bucket to RGW. Several
 * caches share a cluster when each has its own `nix-cache:bucket` and `nix-cache:writerName`.
 */
export async function deployCache(rgw: RgwFixture, config: Record<string, string> = {}): Promise<RgwCache> {
    const program = await programOutputs(config);
    const policies = await registeredPolicies({ ...EXAMPLE_CONFIG, ...config });
    const url = new URL(program.substituterUrl);
    const bucket = url.pathname.slice(1);
    assert.match(bucket, /^[a-z0-9][a-z0-9.-]+$/, `the substituter URL ${program.substituterUrl} should be path-style`);
    assert.equal(url.search, "");

    const admin = rgw.cluster.s3(rgw.admin);
    await admin.makeBucket(bucket);
    await rgw.cluster.putBucketPolicy(rgw.admin, bucket, policies.bucketPolicy);
    const writerName = config["nix-cache:writerName"] ?? WRITER;
    const writer = await rgw.cluster.createUser(writerName);
    await rgw.cluster.putUserPolicy(rgw.admin, writerName, "nix-cache-writer", policies.writerPolicy);
    await admin.putObject(bucket, CACHE_INFO_KEY, program.cacheInfo);
    return { program, policies, bucket, substituter: `${rgw.cluster.origin}${url.pathname}`, writer };
}

/**
 * Uploads every file below `dir` (a `file://` binary cache) with the writer's credentials, except
 * `nix-cache-info`, which the writer may not rewrite. Returns the keys uploaded.
 */
export async function uploadAsWriter(
    rgw: RgwFixture,
    cache: RgwCache,
    dir: string,
    clientOptions: Partial<ClientOptions> = {},
): Promise<string[]> {
    const writer = rgw.cluster.s3(cache.writer, clientOptions);
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    const keys = entries
        .filter((entry) => entry.isFile())
        .map((entry) => join(entry.parentPath ?? entry.path, entry.name).slice(dir.length + 1))
        .filter((key) => key !== CACHE_INFO_KEY);
    for (const key of keys) {
        await writer.fPutObject(cache.bucket, key, join(dir, key));
    }
    assert.ok(keys.some((key) => key.endsWith(".narinfo")), `no narinfo to upload in ${dir}`);
    return keys;
}

export interface FilledRgwCache {
    cache: RgwCache;
    /** The workspace the closure was built, signed and pushed from. */
    builder: NixWorkspace;
    closure: TestClosure;
    /** The bucket's files as the builder pushed them (`file://`) before the upload. */
    pushed: string;
}

/**
 * For a `describe` block: before its tests, deploys the cache (`deployCache` with `config`), builds
 * a test closure, signs and pushes it under `signer`'s key (the cache's own by default) and uploads
 * it as the writer; after them, deletes the closure and the builder. `settings` runs first. The
 * fields are set once the `before` hook has run.
 */
export function withFilledRgwCache(
    rgw: RgwFixture,
    settings: () => Promise<{ config?: Record<string, string>; signer?: ProgramOutputs }> = async () => ({}),
): FilledRgwCache {
    const fixture = {} as FilledRgwCache;
    before(async () => {
        const { config = {}, signer } = await settings();
        fixture.cache = await deployCache(rgw, config);
        fixture.builder = await NixWorkspace.create();
        fixture.closure = await buildTestClosure(fixture.builder);
        fixture.pushed = await fillBucket(fixture.builder, fixture.closure, signer ?? fixture.cache.program, fixture.builder.path("buckets"));
        await uploadAsWriter(rgw, fixture.cache, fixture.pushed);
    });
    after(async () => {
        await fixture.closure?.remove();
        await fixture.builder?.remove();
    });
    return fixture;
}

/** `policy` with `action` added to the Allow statement that grants `granted`, otherwise unchanged. */
export function widenedPolicy(policy: string, granted: string, action: string): string {
    const document = JSON.parse(policy);
    const statement = document.Statement.find(
        (candidate: { Effect: string; Action: string[] }) => candidate.Effect === "Allow" && candidate.Action.includes(granted),
    );
    assert.ok(statement, `no Allow statement grants ${granted} in ${policy}`);
    statement.Action.push(action);
    return JSON.stringify(document);
}

/** An object's content as text, read as the admin. */
export async function readObject(rgw: RgwFixture, bucket: string, key: string): Promise<string> {
    const chunks: Buffer[] = await (await rgw.cluster.s3(rgw.admin).getObject(bucket, key)).toArray();
    return Buffer.concat(chunks).toString();
}

/**
 * For one test: replaces an object with `alter(original)` as the admin, or deletes it when that
 * gives `undefined`; puts the original back when the test ends, whether it passed or not.
 */
export async function alterObject(
    rgw: RgwFixture,
    t: TestContext,
    bucket: string,
    key: string,
    alter: (original: string) => string | undefined,
): Promise<void> {
    const admin = rgw.cluster.s3(rgw.admin);
    const original = await readObject(rgw, bucket, key);
    const altered = alter(original);
    assert.notEqual(altered, original, `altering ${key} should change it`);
    t.after(() => admin.putObject(bucket, key, original));
    await (altered === undefined ? admin.removeObject(bucket, key) : admin.putObject(bucket, key, altered));
}

/**
 * Starts reading RGW's own access log: the beast frontend logs every request it answered, on the
 * `rgw_access` subsystem at level 1 (on by default), as `beast: ... "GET /bucket/key HTTP/1.1" 403
 * ...` (ceph/ceph src/rgw/rgw_asio_frontend.cc, handle_connection: `lsubdout(cct, rgw_access, 1)`;
 * seen in the log file here, 16.2.15). The function returned gives the requests answered
 * since, in order, as `METHOD /path STATUS` (the target as sent, so keys stay URL-encoded). It
 * first sends a marker request and waits for its line, so every earlier request is in.
 */
export async function requestLog(rgw: RgwFixture): Promise<() => Promise<string[]>> {
    const file = join(rgw.cluster.dir, "log", "client.rgw.log");
    const start = (await readFile(file)).length;
    return async () => {
        const marker = `/request-log-marker-${randomUUID()}`;
        await fetch(`${rgw.cluster.origin}${marker}`).then((response) => response.arrayBuffer());
        for (const deadline = Date.now() + 10_000; ; ) {
            const requests = [...(await readFile(file)).subarray(start).toString().matchAll(/ beast: .*?"(\S+) (\S+) HTTP\/[\d.]+" (\d+) /g)].map(
                ([, method, target, status]) => `${method} ${target} ${status}`,
            );
            const markerAt = requests.findIndex((line) => line.startsWith(`GET ${marker} `));
            if (markerAt >= 0) {
                return requests.slice(0, markerAt);
            }
            assert.ok(Date.now() < deadline, `RGW did not log ${marker} within 10 s`);
            await new Promise((resolve) => setTimeout(resolve, 50));
        }
    };
}
