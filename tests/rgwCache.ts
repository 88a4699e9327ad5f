// The stack's cache bucket on a real RGW (tests/rgwCluster.ts) as `pulumi up` leaves it: the
// bucket, the bucket policy and writer policy the program registers (mock-engine run, applied byte
// for byte), the writer user, and the program's `nix-cache-info` put by the admin, as the stack's
// S3Object is. Builders' uploads then go through the writer's credentials.
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import type { ClientOptions } from "minio";
import { CACHE_INFO_KEY } from "../lib/cacheInfo";
import { registeredPolicies, type RegisteredPolicies } from "./accessEvaluation";
import { EXAMPLE_CONFIG, programOutputs, type ProgramOutputs } from "./nixSupport";
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

/** Runs the program with `EXAMPLE_CONFIG` plus `config` and deploys its bucket to RGW. */
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
    const writer = await rgw.cluster.createUser(WRITER);
    await rgw.cluster.putUserPolicy(rgw.admin, WRITER, "nix-cache-writer", policies.writerPolicy);
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
