// The collector's command line (lib/gc/cli.ts) without a real server: bad usage and configuration
// exit 2 before any request (a loopback listener counts connection attempts), and the exit code
// follows the report. Where a bucket is needed, an in-memory one stands in for the server: these
// tests are about the command's own decisions; tests/gc.rgw.test.ts runs it against Ceph RGW.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, before, describe, test } from "node:test";
import type { BucketObject } from "../lib/gc/bucketObjects";
import { main, parseInvocation, UsageError } from "../lib/gc/cli";
import type { CacheBucketClient } from "../lib/gc/s3Bucket";

let server: Server;
let connections = 0;
let endpoint: string;
let dir: string;

before(async () => {
    server = createServer((socket) => {
        connections += 1;
        socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    dir = await mkdtemp(join(tmpdir(), "gc-cli-"));
});
after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
});

const CREDENTIALS = { AWS_ACCESS_KEY_ID: "collector", AWS_SECRET_ACCESS_KEY: "a-secret-of-the-collector" };

async function run(args: string[], env: NodeJS.ProcessEnv, connect?: (location: unknown) => CacheBucketClient) {
    const stdout = new PassThrough();
    const stderr = new PassThrough() as unknown as NodeJS.WriteStream;
    let out = "";
    let err = "";
    stdout.on("data", (chunk) => (out += chunk));
    (stderr as unknown as PassThrough).on("data", (chunk: Buffer) => (err += chunk));
    const status = await main(args, { stdout, stderr, env: { XDG_CACHE_HOME: join(dir, "cache"), ...env }, ...(connect ? { connect } : {}) });
    return { status, stdout: out, stderr: err };
}

describe("nix-cache-gc: bad usage and configuration exit 2 before any request", () => {
    const base = () => ["--endpoint", endpoint, "--bucket", "nix-cache", "--keep-days", "30"];
    // Arguments are functions: the listener's port is known only once `before` has run.
    const cases: [string, () => string[], NodeJS.ProcessEnv, RegExp][] = [
        ["an unknown flag", () => ["--keep-dayz", "3"], CREDENTIALS, /Unknown option '--keep-dayz'/],
        ["a keep-days that is not a whole number", () => ["--keep-days", "3.5"], CREDENTIALS, /--keep-days must be a whole number \(got '3\.5'\)/],
        ["a grace-hours that is negative", () => ["--grace-hours=-1"], CREDENTIALS, /--grace-hours must be a whole number/],
        ["a day that does not exist", () => ["--now", "2026-02-30T00:00:00Z"], CREDENTIALS, /--now must be an ISO-8601 time/],
        ["a --now that is no time", () => ["--now", "tomorrow"], CREDENTIALS, /--now must be an ISO-8601 time/],
        ["an endpoint with a path", () => ["--endpoint", `${endpoint}/nix-cache`], CREDENTIALS, /--endpoint must be http\(s\):\/\/host\[:port\] with no path/],
        ["a bucket name S3 refuses", () => ["--bucket", "Nix_Cache"], CREDENTIALS, /--bucket may contain only lowercase letters, digits, dots and hyphens \(got 'Nix_Cache'\)/],
        ["a region that is no region name", () => ["--region", "EU West"], CREDENTIALS, /--region must be a region name such as us-east-1 \(got 'EU West'\)/],
        ["a root that is no store path", () => ["--root", "/nix/store/short-x"], CREDENTIALS, /--root must be a store path/],
        ["no credentials", () => [], {}, /no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY .* or pass --profile NAME/],
        ["an unreadable credentials file", () => ["--profile", "collector"], { AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/credentials" }, /--profile collector: cannot read the credentials file \/nonexistent\/credentials \(ENOENT\)/],
    ];
    for (const [what, args, env, message] of cases) {
        test(what, async () => {
            // Later flags win in parseArgs, so each case's own values override the base ones.
            const result = await run([...base(), ...args()], env);
            assert.equal(result.status, 2, result.stderr);
            assert.match(result.stderr, message);
            assert.match(result.stderr, /usage: nix-cache-gc --endpoint URL/);
            assert.equal(result.stdout, "");
            assert.equal(connections, 0, "no request was made");
        });
    }

    test("a missing --keep-days names the flag", async () => {
        await assert.rejects(parseInvocation(["--endpoint", endpoint, "--bucket", "nix-cache"], CREDENTIALS), (error: unknown) => {
            assert.ok(error instanceof UsageError);
            assert.match(error.message, /--keep-days is required/);
            return true;
        });
    });

    test("a profile is read from AWS_SHARED_CREDENTIALS_FILE as the AWS tools read it", async () => {
        const file = join(dir, "credentials");
        await writeFile(file, "[default]\naws_access_key_id = d\naws_secret_access_key = dd\n\n[collector]\naws_access_key_id=ck\naws_secret_access_key = cs  \n");
        const invocation = await parseInvocation([...base(), "--profile", "collector"], { AWS_SHARED_CREDENTIALS_FILE: file });
        assert.deepEqual([invocation.location.accessKey, invocation.location.secretKey], ["ck", "cs"]);
    });
});

/** An in-memory bucket (see the top of this file). */
function memoryBucket(objects: Record<string, string>): CacheBucketClient {
    const store = new Map(Object.entries(objects));
    const lastModified = new Date("2020-01-01T00:00:00Z");
    return {
        list: async (): Promise<BucketObject[]> =>
            [...store].map(([key, body]) => ({ key, size: body.length, lastModified, etag: String(body.length) })),
        read: async (key) => store.get(key) ?? assert.fail(`no ${key}`),
        remove: async (key) => {
            store.delete(key);
        },
    };
}

const HASH = "0".repeat(32);
const NARINFO = `StorePath: /nix/store/${HASH}-x\nURL: nar/a.nar.zst\nNarHash: sha256:1bl7wwwbpdh1cbdf6ha3g4lciz928fi5pcbnhvbbh6ll0hr2h0lw\nNarSize: 1\nReferences: \n`;

describe("nix-cache-gc: the exit code follows the report", () => {
    test("0 for a run that deleted garbage; the summary says what went", async () => {
        const result = await run(["--endpoint", endpoint, "--bucket", "nix-cache", "--keep-days", "30"], CREDENTIALS, () =>
            memoryBucket({ [`${HASH}.narinfo`]: NARINFO, "nar/a.nar.zst": "nar", "nix-cache-info": "StoreDir: /nix/store\n" }),
        );
        assert.equal(result.status, 0, result.stderr);
        assert.match(result.stdout, /^1 narinfos, 0 live/);
        assert.match(result.stdout, /deleted 1 narinfos, 0 listings, 1 NARs/);
    });

    test("1 when an unreadable narinfo blocks the run, with the reason in the JSON report", async () => {
        const result = await run(["--endpoint", endpoint, "--bucket", "nix-cache", "--keep-days", "30", "--json"], CREDENTIALS, () =>
            memoryBucket({ [`${HASH}.narinfo`]: "garbage", "nar/a.nar.zst": "nar" }),
        );
        assert.equal(result.status, 1);
        const report = JSON.parse(result.stdout);
        assert.deepEqual([report.deletedNarinfos, report.deletedNars], [[], []]);
        assert.match(report.blocked[0], /1 narinfos cannot be read/);
    });

    test("1 when the server fails, with what was deleted before in the JSON report", async () => {
        const failing = memoryBucket({ [`${HASH}.narinfo`]: NARINFO, "nar/a.nar.zst": "nar" });
        const result = await run(["--endpoint", endpoint, "--bucket", "nix-cache", "--keep-days", "30", "--json"], CREDENTIALS, () => ({
            ...failing,
            remove: async (key) => {
                if (key.startsWith("nar/")) {
                    throw new Error("500 InternalError");
                }
                return failing.remove(key);
            },
        }));
        assert.equal(result.status, 1);
        assert.match(result.stderr, /failed: 500 InternalError/);
        const report = JSON.parse(result.stdout);
        assert.deepEqual(report.deletedNarinfos, [`${HASH}.narinfo`]);
        assert.equal(report.error, "500 InternalError");
    });
});
