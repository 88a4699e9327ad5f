// The post-deploy check (scripts/verify-deployment.sh, run as the command provider runs it:
// `bash -c TEXT`) against a real S3 server: it passes on the stack's bucket deployed to RGW as
// `pulumi up` leaves it (tests/rgwCache.ts), fails on each way that deployment can be broken, and
// over RGW's own TLS trusts only the private CA it is given.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test, type TestContext } from "node:test";
import { CACHE_INFO_KEY } from "../lib/cacheInfo";
import { registeredPolicies } from "./accessEvaluation";
import { EXAMPLE_CONFIG } from "./nixSupport";
import { alterObject, deployCache, requestLog, widenedPolicy, type RgwCache } from "./rgwCache";
import { NEEDS_OPENSSL, withLoopbackCertificate } from "./loopbackCertificate";
import { NEEDS_RGW, RgwCluster, withRgwCluster } from "./rgwCluster";
import { needsTool } from "./requiredTools";

const SCRIPT = readFileSync(join(__dirname, "..", "scripts", "verify-deployment.sh"), "utf8");
const NEEDS_CURL = needsTool("curl", "curl is not installed: apt-get install -y curl");

/** Runs the check with `url` and the stack's rendered nix-cache-info (and a CA certificate, if given). */
function runCheck(cache: RgwCache, url: string, caCertificate?: string) {
    // stdin from /dev/null: on a pipe, Debian's bash may source ~/.bashrc as under a remote shell.
    const result = spawnSync("bash", ["-c", SCRIPT], {
        env: {
            PATH: process.env.PATH,
            NIX_CACHE_URL: url,
            NIX_CACHE_INFO: cache.program.cacheInfo,
            ...(caCertificate === undefined ? {} : { NIX_CACHE_CA_CERTIFICATE: caCertificate }),
        },
        stdio: ["ignore", "pipe", "pipe"],
        encoding: "utf8",
        timeout: 60_000,
    });
    assert.equal(result.error, undefined);
    return result;
}

describe("the post-deploy check against a real S3 server (Ceph RGW)", [NEEDS_RGW, NEEDS_CURL].find((o) => o.skip) ?? {}, () => {
    const rgw = withRgwCluster();
    let cache: RgwCache;

    before(async () => {
        cache = await deployCache(rgw);
    });

    const check = () => runCheck(cache, cache.substituter);

    /** Replaces the served nix-cache-info for one test (`undefined`: deletes it); restored after. */
    const serveCacheInfo = (t: TestContext, content: string | undefined) => alterObject(rgw, t, cache.bucket, CACHE_INFO_KEY, () => content);

    const probe = () => `/${cache.bucket}/nix-cache-deployment-check-probe`;

    test("passes on the deployment as the stack makes it: nix-cache-info read, the anonymous PUT refused", async () => {
        const requests = await requestLog(rgw);
        const result = check();
        assert.equal(result.status, 0, result.stderr);
        assert.equal(
            result.stdout,
            `nix-cache deployment check passed: ${cache.substituter}/nix-cache-info matches the stack, anonymous upload refused\n`,
        );
        assert.deepEqual(await requests(), [`GET /${cache.bucket}/nix-cache-info 200`, `PUT ${probe()} 403`]);
    });

    test("fails when the served nix-cache-info is not the stack's, showing both texts", async (t) => {
        const served = cache.program.cacheInfo.replace("/nix/store", "/other/store");
        await serveCacheInfo(t, served);
        const requests = await requestLog(rgw);
        const result = check();
        assert.equal(result.status, 1);
        assert.match(result.stderr, /^nix-cache deployment check failed: .*nix-cache-info does not match what the stack rendered/);
        assert.ok(result.stderr.includes(`--- expected\n${cache.program.cacheInfo}--- served\n${served}`), result.stderr);
        assert.deepEqual(await requests(), [`GET /${cache.bucket}/nix-cache-info 200`]);
    });

    test("fails when the served nix-cache-info differs only by its final newline", async (t) => {
        await serveCacheInfo(t, cache.program.cacheInfo.trimEnd());
        const result = check();
        assert.equal(result.status, 1);
        assert.match(result.stderr, /does not match what the stack rendered/);
    });

    test("fails when nix-cache-info is missing (RGW answers 403 without a ListBucket grant)", async (t) => {
        await serveCacheInfo(t, undefined);
        const requests = await requestLog(rgw);
        const result = check();
        assert.equal(result.status, 1);
        assert.match(
            result.stderr,
            /^nix-cache deployment check failed: anonymous GET .*\/nix-cache\/nix-cache-info answered HTTP 403, expected 200: nix-cache-info is missing/,
        );
        assert.deepEqual(await requests(), [`GET /${cache.bucket}/nix-cache-info 403`]);
    });

    test("fails when the bucket policy lets anyone upload, and names the probe to delete", async (t) => {
        const { bucketPolicy } = await registeredPolicies(EXAMPLE_CONFIG);
        await rgw.cluster.putBucketPolicy(rgw.admin, cache.bucket, widenedPolicy(bucketPolicy, "s3:GetObject", "s3:PutObject"));
        t.after(() => rgw.cluster.putBucketPolicy(rgw.admin, cache.bucket, bucketPolicy));
        const result = check();
        assert.equal(result.status, 1);
        assert.match(result.stderr, /anonymous PUT .* answered HTTP 200, expected 403/);
        // The anonymous PUT really was stored: the script's advice to delete the probe is needed.
        const stored = await rgw.cluster.s3(rgw.admin).statObject(cache.bucket, "nix-cache-deployment-check-probe");
        assert.ok(stored.size > 0);
    });
});

describe("the post-deploy check against RGW over TLS with a private CA", [NEEDS_RGW, NEEDS_CURL, NEEDS_OPENSSL].find((o) => o.skip) ?? {}, () => {
    test("passes with the CA that signed RGW's certificate, fails with another CA or none", () =>
        withLoopbackCertificate(async (identity) => {
            const cluster = await RgwCluster.start(identity);
            try {
                const cache = await deployCache({ cluster, admin: await cluster.createUser("admin", { admin: true }) });
                const url = `${cluster.httpsOrigin}/${cache.bucket}`;
                const trusted = runCheck(cache, url, identity.cert);
                assert.equal(trusted.status, 0, trusted.stderr);
                await withLoopbackCertificate(async (unrelated) => {
                    const refused = runCheck(cache, url, unrelated.cert);
                    assert.equal(refused.status, 1);
                    assert.match(refused.stderr, /could not fetch .*nix-cache-info/);
                    assert.match(refused.stderr, /certificate/i);
                });
                const withoutCa = runCheck(cache, url);
                assert.equal(withoutCa.status, 1);
                assert.match(withoutCa.stderr, /certificate/i);
            } finally {
                await cluster.stop();
            }
        }));
});
