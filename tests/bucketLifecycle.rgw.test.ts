// The expiry rule's dynamic provider (providers/bucketLifecycle.ts) against a real S3 server: Ceph's
// RGW 16.2 on loopback (tests/rgwCluster.ts), configured as Pulumi's dynamic provider host does.
// RGW cannot store the stack's rule: it answers 200 to a rule filtered on ObjectSizeGreaterThan and
// stores it with an empty prefix, which matches every object. Ceph's source says why
// (ceph/ceph src/rgw/rgw_lc_s3.cc, Pacific: LCFilter_S3::decode_xml reads Prefix, ArchiveZone and
// Tag and nothing else; LCRule_S3::dump_xml writes a rule with an empty filter as a rule-level
// <Prefix>). So create and update must fail here with the provider's clear error and leave no rule
// of the stack's behind, and every rule other tools put on the bucket must survive. What only a
// server that honours the size filter shows (MinIO from December 2023) stays in
// tests/bucketLifecycle.test.ts, against its stand-in.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { before, describe, test } from "node:test";
// The class Pulumi's Node.js dynamic provider host hands to `configure` (cmd/dynamic-provider/index.ts, getProvider).
import { Config } from "@pulumi/pulumi/cmd/dynamic-provider/config";
import type { LifecycleRule } from "minio";
import { CACHE_INFO_KEY } from "../lib/cacheInfo";
import { EXPIRY_RULE_ID, expiryRule } from "../lib/lifecycle";
import { bucketLifecycleProvider as provider, type BucketLifecycleState } from "../providers/bucketLifecycle";
import { EXAMPLE_CONFIG, programOutputs } from "./nixSupport";
import { NEEDS_OPENSSL, withLoopbackCertificate } from "./loopbackCertificate";
import { NEEDS_RGW, RgwCluster, withRgwCluster, type Credentials } from "./rgwCluster";

/** Rules other tools put on a cache bucket: `mc ilm`-style upload cleanup, and a disabled log expiry. */
const ABORT_UPLOADS: LifecycleRule = {
    ID: "abort-incomplete-uploads",
    Status: "Enabled",
    Filter: { Prefix: "" },
    AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
};
const OLD_LOGS: LifecycleRule = { ID: "007", Status: "Disabled", Filter: { Prefix: "log/" }, Expiration: { Days: 90 } };
/** A rule with the stack's ID put by hand, as RGW would keep the stack's own: no size filter. */
const HAND_MADE: LifecycleRule = { ID: EXPIRY_RULE_ID, Status: "Enabled", Filter: { Prefix: "" }, Expiration: { Days: 7 } };

/** The stack's rule as RGW 16.2 stores it when sent with its size filter: the filter gone. */
const asRgwStoresIt = (days: number) => ({ ID: EXPIRY_RULE_ID, Prefix: "", Status: "Enabled", Expiration: { Days: String(days) } });

/** Configures the provider as Pulumi's dynamic provider host does at the start of a run. */
const configureProvider = (config: Record<string, string>) => provider.configure!({ config: new Config(config, "nix-cache") });

/** The provider's clear error for a server that stored the rule without its size filter. */
const droppedFilterError = (days: number) => (error: Error) => {
    assert.match(error.message, /the server accepted the expiry rule but stored /);
    assert.ok(error.message.includes(JSON.stringify(asRgwStoresIt(days))), error.message);
    assert.match(error.message, /would expire nix-cache-info, so the rule was removed again/);
    assert.match(error.message, /do not support the lifecycle filter ObjectSizeGreaterThan/);
    return true;
};

describe("the bucket lifecycle provider against a real S3 server (Ceph RGW 16.2)", NEEDS_RGW, () => {
    const rgw = withRgwCluster();
    let bucketCount = 0;
    /** The program's default nix-cache-info, and the stack's rule for it (30 days), as the stack passes it. */
    let cacheInfo: string;
    let stackRule: BucketLifecycleState["rule"];
    before(async () => {
        cacheInfo = (await programOutputs()).cacheInfo;
        stackRule = expiryRule(30, cacheInfo);
    });

    /** A new bucket of the admin's (the stack's MinIO admin), with `rules` by other tools on it. */
    const freshBucket = async (rules: LifecycleRule[] = []): Promise<string> => {
        const bucket = `lifecycle-${++bucketCount}`;
        const admin = rgw.cluster.s3(rgw.admin);
        await admin.makeBucket(bucket);
        if (rules.length > 0) {
            await admin.setBucketLifecycle(bucket, { Rule: rules });
        }
        return bucket;
    };

    /** The bucket's whole lifecycle configuration as RGW answers it, or its error code. */
    const configuration = async (bucket: string): Promise<string> => {
        const answer = await rgw.cluster.request({ method: "GET", path: `/${bucket}`, query: "lifecycle", as: rgw.admin });
        return answer.status === 200 ? answer.body : `${answer.status} ${answer.code}`;
    };

    /** The stack's configuration as the engine passes it to the provider (namespaced keys). */
    const stackConfig = (credentials: Partial<Credentials> = rgw.admin): Record<string, string> => ({
        ...EXAMPLE_CONFIG,
        "minio:minioServer": `127.0.0.1:${rgw.cluster.port}`,
        "minio:minioSsl": "false",
        ...(credentials.accessKey === undefined ? {} : { "minio:minioUser": credentials.accessKey }),
        ...(credentials.secretKey === undefined ? {} : { "minio:minioPassword": credentials.secretKey }),
    });
    const configure = (config: Record<string, string> = stackConfig()) => configureProvider(config);

    /** Puts one rule's XML as the bucket's whole configuration, as the provider sends it (with Content-MD5). */
    const putRuleXml = async (bucket: string, rule: string): Promise<void> => {
        const body = `<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${rule}</LifecycleConfiguration>`;
        const headers = { "content-md5": createHash("md5").update(body).digest("base64") };
        const answer = await rgw.cluster.request({ method: "PUT", path: `/${bucket}`, query: "lifecycle", body, headers, as: rgw.admin });
        assert.equal(answer.status, 200, answer.body);
    };
    /** The stack's rule with a size filter, in the provider's XML. */
    const sizeRuleXml = (threshold: number, days: number) =>
        `<Rule><ID>${EXPIRY_RULE_ID}</ID><Status>Enabled</Status><Filter><ObjectSizeGreaterThan>${threshold}</ObjectSizeGreaterThan></Filter>` +
        `<Expiration><Days>${days}</Days></Expiration></Rule>`;

    test("create: RGW answers 200 and drops the size filter; the read-back catches it and removes the rule", async () => {
        // First RGW itself, without the provider: the rule as the provider sends it is accepted and
        // read back with an empty rule-level prefix, so it would expire every object.
        const bucket = await freshBucket();
        await putRuleXml(bucket, sizeRuleXml(Buffer.byteLength(cacheInfo), 30));
        const stored = await configuration(bucket);
        assert.match(stored, new RegExp(`<Rule><ID>${EXPIRY_RULE_ID}</ID><Prefix></Prefix><Status>Enabled</Status><Expiration><Days>30</Days></Expiration></Rule>`));
        assert.doesNotMatch(stored, /ObjectSizeGreaterThan|<Filter>/);

        // Then the provider, on a bucket without a configuration: it fails and deletes the configuration it made.
        const empty = await freshBucket();
        await configure();
        await assert.rejects(provider.create({ bucket: empty, rule: stackRule }), droppedFilterError(30));
        assert.equal(await configuration(empty), "404 NoSuchLifecycleConfiguration");
    });

    test("create: other tools' rules survive the failed create byte for byte", async () => {
        const bucket = await freshBucket([ABORT_UPLOADS, OLD_LOGS]);
        const before = await configuration(bucket);
        assert.match(before, /<ID>abort-incomplete-uploads<\/ID>.*<DaysAfterInitiation>7</);
        await configure();
        await assert.rejects(provider.create({ bucket, rule: stackRule }), droppedFilterError(30));
        assert.equal(await configuration(bucket), before);
    });

    test("read and diff: the rule with the stack's ID as RGW keeps it is drift; other rules are not looked at", async () => {
        const bucket = await freshBucket([ABORT_UPLOADS]);
        await configure();
        const state = { bucket, rule: stackRule };
        assert.deepEqual(await provider.read!(bucket, state), {}, "without the stack's rule the resource is gone");

        // Someone put the rule by hand (or a server stored the stack's rule without its filter).
        await rgw.cluster.s3(rgw.admin).setBucketLifecycle(bucket, {
            Rule: [ABORT_UPLOADS, HAND_MADE],
        });
        const refreshed = await provider.read!(bucket, state);
        assert.equal(refreshed.id, bucket);
        assert.deepEqual(refreshed.props?.rule, asRgwStoresIt(7));
        assert.deepEqual(await provider.diff!(bucket, refreshed.props!, state), { changes: true, replaces: [], deleteBeforeReplace: false });
        assert.deepEqual(await provider.diff!(bucket, state, state), { changes: false, replaces: [], deleteBeforeReplace: false });
    });

    test("update: fails with the clear error, leaves no rule with the stack's ID, keeps the others byte for byte", async () => {
        const bucket = await freshBucket([ABORT_UPLOADS, OLD_LOGS]);
        const others = await configuration(bucket);
        await rgw.cluster.s3(rgw.admin).setBucketLifecycle(bucket, { Rule: [ABORT_UPLOADS, OLD_LOGS, HAND_MADE] });
        await configure();
        const state = { bucket, rule: stackRule };
        const refreshed = await provider.read!(bucket, state);
        await assert.rejects(provider.update!(bucket, refreshed.props!, { bucket, rule: expiryRule(14, cacheInfo) }), droppedFilterError(14));
        assert.equal(await configuration(bucket), others);
        assert.deepEqual(await provider.read!(bucket, state), {});
    });

    test("delete: removes the stack's rule only, the configuration with the last rule; gone is no error", async () => {
        const bucket = await freshBucket([ABORT_UPLOADS, OLD_LOGS]);
        const others = await configuration(bucket);
        await rgw.cluster.s3(rgw.admin).setBucketLifecycle(bucket, { Rule: [ABORT_UPLOADS, HAND_MADE, OLD_LOGS] });
        await configure();
        const state = { bucket, rule: stackRule };
        await provider.delete!(bucket, state);
        assert.equal(await configuration(bucket), others);

        const alone = await freshBucket([HAND_MADE]);
        await provider.delete!(alone, { bucket: alone, rule: stackRule });
        assert.equal(await configuration(alone), "404 NoSuchLifecycleConfiguration");
        await provider.delete!(alone, { bucket: alone, rule: stackRule });
        assert.deepEqual(await provider.read!(alone, { bucket: alone, rule: stackRule }), {});
    });

    test("read and delete treat a bucket that is gone as 'gone' (RGW answers NoSuchBucket)", async () => {
        const bucket = `lifecycle-never-made-${++bucketCount}`;
        assert.equal(await configuration(bucket), "404 NoSuchBucket");
        await configure();
        assert.deepEqual(await provider.read!(bucket, { bucket, rule: stackRule }), {});
        await provider.delete!(bucket, { bucket, rule: stackRule });
    });

    test("configure: the connection from the stack's config, else the environment; wrong credentials refused by RGW", async () => {
        const bucket = await freshBucket([HAND_MADE]);
        const state = { bucket, rule: stackRule };

        const before = await configuration(bucket);
        await configure(stackConfig({ ...rgw.admin, secretKey: `${rgw.admin.secretKey}x` }));
        await assert.rejects(provider.delete!(bucket, state), /SignatureDoesNotMatch/);
        await configure(stackConfig({ ...rgw.admin, accessKey: "NOSUCHACCESSKEY00000" }));
        await assert.rejects(provider.delete!(bucket, state), /InvalidAccessKeyId/);
        assert.equal(await configuration(bucket), before);

        // Only the server in the config: user and password come from the `pulumi` process's environment.
        const saved = { MINIO_USER: process.env.MINIO_USER, MINIO_PASSWORD: process.env.MINIO_PASSWORD };
        try {
            Object.assign(process.env, { MINIO_USER: rgw.admin.accessKey, MINIO_PASSWORD: rgw.admin.secretKey });
            await configure(stackConfig({}));
            assert.deepEqual((await provider.read!(bucket, state)).props?.rule, asRgwStoresIt(7));
            process.env.MINIO_PASSWORD = "a-stale-environment-password";
            await configure();
            await provider.delete!(bucket, state);
            assert.equal(await configuration(bucket), "404 NoSuchLifecycleConfiguration", "minio:minioPassword wins over MINIO_PASSWORD");
        } finally {
            for (const [name, value] of Object.entries(saved)) {
                if (value === undefined) {
                    delete process.env[name];
                } else {
                    process.env[name] = value;
                }
            }
        }
    });

    // With `rgw lc debug interval = 10` (tests/rgwCluster.ts) RGW's lifecycle treats 10 s as a day
    // (ceph/ceph src/rgw/rgw_lc.cc, obj_has_expired: "Treat each rgw_lc_debug_interval seconds as a
    // day"), so rules of 1 day really delete objects within a test.
    test("expiry really happens on RGW: a prefix rule deletes its objects only; the rule RGW made of the size filter deletes nix-cache-info; the provider's failed create deletes nothing", async () => {
        const objects = [CACHE_INFO_KEY, "nar/0000.nar.zst", "0000.narinfo"];
        const admin = rgw.cluster.s3(rgw.admin);
        const filled = async () => {
            const bucket = await freshBucket();
            for (const key of objects) {
                await admin.putObject(bucket, key, key === CACHE_INFO_KEY ? cacheInfo : `${key} `.repeat(40));
            }
            return bucket;
        };
        const [byPrefix, bySize, byProvider] = [await filled(), await filled(), await filled()];
        await admin.setBucketLifecycle(byPrefix, { Rule: [{ ID: "nars", Status: "Enabled", Filter: { Prefix: "nar/" }, Expiration: { Days: 1 } }] });
        await putRuleXml(bySize, sizeRuleXml(Buffer.byteLength(cacheInfo), 1));
        await configure();
        await assert.rejects(provider.create({ bucket: byProvider, rule: expiryRule(1, cacheInfo) }), droppedFilterError(1));

        const keys = async (bucket: string) => (await admin.listObjectsV2(bucket, "", true).toArray()).map(({ name }) => name as string).sort();
        const deadline = Date.now() + 120_000;
        while ((await keys(bySize)).length > 0 || (await keys(byPrefix)).includes("nar/0000.nar.zst")) {
            assert.ok(Date.now() < deadline, `RGW's lifecycle did not run within 120 s: ${await keys(byPrefix)} / ${await keys(bySize)}`);
            await new Promise((resolve) => setTimeout(resolve, 1000));
        }
        assert.deepEqual(await keys(byPrefix), ["0000.narinfo", CACHE_INFO_KEY].sort());
        assert.deepEqual(await keys(byProvider), [...objects].sort(), "no rule of the stack's was left to expire anything");
    });
});

describe("the bucket lifecycle provider against RGW over TLS", [NEEDS_RGW, NEEDS_OPENSSL].find((o) => o.skip) ?? {}, () => {
    test("trusts RGW's certificate through minio:minioCacertFile or minio:minioInsecure, and not otherwise", () =>
        withLoopbackCertificate(async (identity) => {
            const cluster = await RgwCluster.start(identity);
            try {
                const admin = await cluster.createUser("admin", { admin: true });
                const bucket = "lifecycle-tls";
                await cluster.s3(admin).makeBucket(bucket);
                await cluster.s3(admin).setBucketLifecycle(bucket, { Rule: [ABORT_UPLOADS, HAND_MADE] });
                const tls = {
                    "minio:minioServer": new URL(cluster.httpsOrigin!).host,
                    "minio:minioSsl": "true",
                    "minio:minioUser": admin.accessKey,
                    "minio:minioPassword": admin.secretKey,
                };
                const state = { bucket, rule: expiryRule(30, "StoreDir: /nix/store\n") };
                await configureProvider(tls);
                await assert.rejects(provider.read!(bucket, state), /self.signed certificate/);
                await configureProvider({ ...tls, "minio:minioCacertFile": identity.certFile });
                assert.deepEqual((await provider.read!(bucket, state)).props?.rule, asRgwStoresIt(7));
                await configureProvider({ ...tls, "minio:minioInsecure": "true" });
                await provider.delete!(bucket, state);
                const left = await cluster.request({ method: "GET", path: `/${bucket}`, query: "lifecycle", as: admin });
                assert.deepEqual([...left.body.matchAll(/<ID>([^<]*)<\/ID>/g)].map(([, id]) => id), [ABORT_UPLOADS.ID]);
            } finally {
                await cluster.stop();
            }
        }));
});
