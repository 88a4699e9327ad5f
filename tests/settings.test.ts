import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { problemsFor } from "./settingsSupport";
import { parseSettings, SettingsError } from "../lib/settings";

const SERVER = { "minio:minioServer": "s3.example.org:9000" };
const OLD_PUBLIC_KEY = `cache.example.org-6:${Buffer.alloc(32, 6).toString("base64")}`;
const PRIVATE_CA = readFileSync(join(__dirname, "fixtures", "private-ca.pem"), "utf8");

describe("settings", () => {
    test("defaults follow the how-to, with the public URL derived from the provider settings", () => {
        assert.deepEqual(parseSettings(SERVER), {
            bucket: "nix-cache",
            publicUrl: "http://s3.example.org:9000",
            keyName: "s3.example.org-1",
            writerName: "nixbuilder",
            priority: 40,
            wantMassQuery: true,
            storeDir: "/nix/store",
            allowAnonymousList: false,
            region: "us-east-1",
            compression: "zstd",
            compressionLevel: 9,
            protect: true,
            retention: "gc",
            collectorName: "nixcollector",
            gcKeepDays: 30,
            gcGraceHours: 24,
            minio: {
                endPoint: "s3.example.org",
                port: 9000,
                useSSL: false,
                region: "us-east-1",
                accessKey: "",
                secretKey: "",
                insecure: false,
            },
            previousPublicKeys: [],
            verifyDeployment: true,
            builderHook: "/usr/local/bin/nix-cache-enqueue",
            builderSecretKeyFile: "/etc/nix/nix-cache-secret-key",
            builderCredentialsFile: "/etc/nix/nix-cache-credentials",
        });
    });

    test("minio:minioSsl true makes the derived public URL https", () => {
        assert.equal(parseSettings({ ...SERVER, "minio:minioSsl": "true" }).publicUrl, "https://s3.example.org:9000");
    });

    test("the public URL derives from the provider's environment like the provider's connection does", () => {
        const fromEnv = parseSettings({}, { MINIO_ENDPOINT: "minio.internal:9000", MINIO_ENABLE_HTTPS: "on" });
        assert.equal(fromEnv.publicUrl, "https://minio.internal:9000");
        assert.equal(fromEnv.keyName, "minio.internal-1");
        assert.deepEqual([fromEnv.minio.endPoint, fromEnv.minio.port, fromEnv.minio.useSSL], ["minio.internal", 9000, true]);

        assert.equal(parseSettings({}, { MINIO_ENDPOINT: "minio.internal" }).publicUrl, "http://minio.internal");
        // The config wins over the environment, for the endpoint and for TLS, as in the provider.
        const env = { MINIO_ENDPOINT: "minio.internal:9000", MINIO_ENABLE_HTTPS: "true" };
        assert.equal(parseSettings({ "minio:minioSsl": "false" }, env).publicUrl, "http://minio.internal:9000");
        assert.equal(parseSettings(SERVER, env).publicUrl, "https://s3.example.org:9000");
        assert.equal(parseSettings({ ...SERVER, "minio:minioSsl": "false" }, env).publicUrl, "http://s3.example.org:9000");
        assert.equal(parseSettings({ "nix-cache:publicUrl": "https://cache.example.org" }, env).publicUrl, "https://cache.example.org");
    });

    test("every setting can be overridden", () => {
        const settings = parseSettings({
            "nix-cache:bucket": "my.cache-01",
            "nix-cache:publicUrl": "https://cache.example.org/",
            "nix-cache:keyName": "cache.example.org-7",
            "nix-cache:writerName": "ci_builder",
            "nix-cache:writerSecret": "0123456789abcdefghijklmnopqrstuvwxyzABCD",
            "nix-cache:priority": "30",
            "nix-cache:wantMassQuery": "false",
            "nix-cache:storeDir": "/gnu/store",
            "nix-cache:allowAnonymousList": "true",
            "nix-cache:region": "eu-central-1",
            "nix-cache:compression": "xz",
            "nix-cache:compressionLevel": "2",
            "nix-cache:protect": "false",
            "nix-cache:retention": "gc",
            "nix-cache:collectorName": "ci.collector",
            "nix-cache:gcKeepDays": "90",
            "nix-cache:gcGraceHours": "6",
            "nix-cache:previousPublicKeys": JSON.stringify([OLD_PUBLIC_KEY]),
            "nix-cache:caCertificate": PRIVATE_CA,
            "nix-cache:verifyDeployment": "false",
            "nix-cache:builderHook": "/opt/nix-cache/enqueue",
            "nix-cache:builderSecretKeyFile": "/run/keys/cache-key",
            "nix-cache:builderCredentialsFile": "/run/keys/cache-credentials",
        });
        assert.deepEqual(settings, {
            bucket: "my.cache-01",
            publicUrl: "https://cache.example.org",
            keyName: "cache.example.org-7",
            writerName: "ci_builder",
            writerSecret: "0123456789abcdefghijklmnopqrstuvwxyzABCD",
            priority: 30,
            wantMassQuery: false,
            storeDir: "/gnu/store",
            allowAnonymousList: true,
            region: "eu-central-1",
            compression: "xz",
            compressionLevel: 2,
            protect: false,
            retention: "gc",
            collectorName: "ci.collector",
            gcKeepDays: 90,
            gcGraceHours: 6,
            minio: { endPoint: "", useSSL: false, region: "us-east-1", accessKey: "", secretKey: "", insecure: false },
            previousPublicKeys: [OLD_PUBLIC_KEY],
            caCertificate: PRIVATE_CA,
            verifyDeployment: false,
            builderHook: "/opt/nix-cache/enqueue",
            builderSecretKeyFile: "/run/keys/cache-key",
            builderCredentialsFile: "/run/keys/cache-credentials",
        });
    });

    const invalid: [string, Record<string, string>, RegExp][] = [
        ["bucket too short", { "nix-cache:bucket": "ab" }, /^nix-cache:bucket: must be 3 to 63 characters/],
        ["bucket too long", { "nix-cache:bucket": "a".repeat(64) }, /^nix-cache:bucket: must be 3 to 63 characters/],
        ["bucket uppercase", { "nix-cache:bucket": "Nix-Cache" }, /^nix-cache:bucket: may contain only lowercase/],
        ["bucket underscore", { "nix-cache:bucket": "nix_cache" }, /^nix-cache:bucket: may contain only lowercase/],
        ["bucket leading hyphen", { "nix-cache:bucket": "-nixcache" }, /^nix-cache:bucket: must start and end/],
        ["bucket trailing dot", { "nix-cache:bucket": "nixcache." }, /^nix-cache:bucket: must start and end/],
        ["bucket double dot", { "nix-cache:bucket": "nix..cache" }, /^nix-cache:bucket: must not contain two adjacent dots/],
        ["bucket IP address", { "nix-cache:bucket": "192.168.1.10" }, /^nix-cache:bucket: must not be formatted as an IP/],
        ["empty key name", { "nix-cache:keyName": "" }, /^nix-cache:keyName: must not be empty/],
        ["key name with colon", { "nix-cache:keyName": "cache:1" }, /^nix-cache:keyName: must not contain ':'/],
        ["key name with space", { "nix-cache:keyName": "cache 1" }, /^nix-cache:keyName: must not contain whitespace/],
        ["relative public URL", { "nix-cache:publicUrl": "s3.example.org" }, /^nix-cache:publicUrl: must be an absolute/],
        ["ftp public URL", { "nix-cache:publicUrl": "ftp://s3.example.org" }, /^nix-cache:publicUrl: must use http/],
        ["public URL with a path", { "nix-cache:publicUrl": "https://x.org/nix-cache" }, /^nix-cache:publicUrl: must be only scheme/],
        ["priority zero", { "nix-cache:priority": "0" }, /^nix-cache:priority: must be a positive whole number/],
        ["negative priority", { "nix-cache:priority": "-5" }, /^nix-cache:priority: must be a positive whole number/],
        ["fractional priority", { "nix-cache:priority": "1.5" }, /^nix-cache:priority: must be a positive whole number/],
        ["word priority", { "nix-cache:priority": "high" }, /^nix-cache:priority: must be a positive whole number/],
        ["relative store dir", { "nix-cache:storeDir": "nix/store" }, /^nix-cache:storeDir: must be an absolute path/],
        ["store dir with ..", { "nix-cache:storeDir": "/nix/../store" }, /^nix-cache:storeDir: must be a canonical path/],
        ["unknown compression", { "nix-cache:compression": "gzip" }, /^nix-cache:compression: must be one of zstd, xz, none/],
        ["word compression level", { "nix-cache:compressionLevel": "best" }, /^nix-cache:compressionLevel: must be a whole number, such as 9$/],
        ["negative compression level", { "nix-cache:compressionLevel": "-1" }, /^nix-cache:compressionLevel: must be a whole number, such as 9$/],
        ["zstd level 0", { "nix-cache:compressionLevel": "0" }, /^nix-cache:compressionLevel: must be from 1 to 22 for zstd \(Nix's default is 3; got 0\)$/],
        ["zstd level 23", { "nix-cache:compressionLevel": "23" }, /^nix-cache:compressionLevel: must be from 1 to 22 for zstd \(Nix's default is 3; got 23\)$/],
        [
            "xz level 10",
            { "nix-cache:compression": "xz", "nix-cache:compressionLevel": "10" },
            /^nix-cache:compressionLevel: must be from 0 to 9 for xz \(Nix's default is 6; got 10\)$/,
        ],
        ["writer name too short", { "nix-cache:writerName": "nb" }, /^nix-cache:writerName: must be 3 to 20 characters/],
        ["writer name too long", { "nix-cache:writerName": "n".repeat(21) }, /^nix-cache:writerName: must be 3 to 20 characters/],
        ["writer name with '='", { "nix-cache:writerName": "nix=builder" }, /^nix-cache:writerName: may contain only/],
        ["writer name with ','", { "nix-cache:writerName": "nix,builder" }, /^nix-cache:writerName: may contain only/],
        ["writer secret too short", { "nix-cache:writerSecret": "short" }, /^nix-cache:writerSecret: must be 8 to 40 characters/],
        ["writer secret too long", { "nix-cache:writerSecret": "s".repeat(41) }, /^nix-cache:writerSecret: must be 8 to 40 characters/],
        ["writer secret with a space", { "nix-cache:writerSecret": "pass word 123" }, /^nix-cache:writerSecret: may contain only letters, digits/],
        ["writer secret with '#'", { "nix-cache:writerSecret": "password#123" }, /^nix-cache:writerSecret: may contain only letters, digits/],
        ["writer secret with a quote", { "nix-cache:writerSecret": 'pass"word123' }, /^nix-cache:writerSecret: may contain only letters, digits/],
        ["non-boolean protect", { "nix-cache:protect": "yes" }, /^nix-cache:protect: must be true or false/],
        ["non-boolean wantMassQuery", { "nix-cache:wantMassQuery": "1" }, /^nix-cache:wantMassQuery: must be true or false/],
        ["non-boolean allowAnonymousList", { "nix-cache:allowAnonymousList": "on" }, /^nix-cache:allowAnonymousList: must be true or false/],
        ["bad region", { "nix-cache:region": "EU West" }, /^nix-cache:region: must be a region name/],
        ["misspelt setting", { "nix-cache:bukcet": "x-cache" }, /^nix-cache:bukcet: unknown setting; known settings: bucket,/],
        ["unknown retention", { "nix-cache:retention": "lru" }, /^nix-cache:retention: must be one of gc, expire, none$/],
        ["collector name too short", { "nix-cache:collectorName": "gc" }, /^nix-cache:collectorName: must be 3 to 20 characters/],
        ["collector name with '='", { "nix-cache:collectorName": "nix=gc" }, /^nix-cache:collectorName: may contain only/],
        ["gcKeepDays 0", { "nix-cache:gcKeepDays": "0" }, /^nix-cache:gcKeepDays: must be a whole number of days from 1 to 36500, such as 30$/],
        ["gcKeepDays fractional", { "nix-cache:gcKeepDays": "1.5" }, /^nix-cache:gcKeepDays: must be a whole number of days/],
        ["gcKeepDays with a leading zero", { "nix-cache:gcKeepDays": "030" }, /^nix-cache:gcKeepDays: must be a whole number of days/],
        ["gcKeepDays above 36500", { "nix-cache:gcKeepDays": "36501" }, /^nix-cache:gcKeepDays: must be a whole number of days/],
        ["gcKeepDays negative", { "nix-cache:gcKeepDays": "-1" }, /^nix-cache:gcKeepDays: must be a whole number of days/],
        ["gcGraceHours 0", { "nix-cache:gcGraceHours": "0" }, /^nix-cache:gcGraceHours: must be a whole number of hours from 1 to 8760, such as 24$/],
        ["gcGraceHours in days", { "nix-cache:gcGraceHours": "1d" }, /^nix-cache:gcGraceHours: must be a whole number of hours/],
        ["gcGraceHours above a year", { "nix-cache:gcGraceHours": "8761" }, /^nix-cache:gcGraceHours: must be a whole number of hours/],
        [
            "expireDays 0 with retention expire",
            { "nix-cache:retention": "expire", "nix-cache:expireDays": "0" },
            /^nix-cache:expireDays: must be a whole number of days from 1 to 36500, such as 30 \(no expiry at all: nix-cache:retention none\)$/,
        ],
    ];
    for (const [what, config, message] of invalid) {
        test(`rejects ${what}`, () => {
            const problems = problemsFor({ ...SERVER, ...config });
            assert.equal(problems.length, 1, `expected one problem, got ${JSON.stringify(problems)}`);
            assert.match(problems[0]!, message);
        });
    }

    test("compressionLevel: zstd's default is the measured level; xz and none get no level, that is Nix's default (none)", () => {
        assert.equal(parseSettings(SERVER).compressionLevel, 9);
        assert.equal(parseSettings({ ...SERVER, "nix-cache:compression": "zstd", "nix-cache:compressionLevel": "3" }).compressionLevel, 3);
        for (const compression of ["xz", "none"]) {
            assert.ok(!("compressionLevel" in parseSettings({ ...SERVER, "nix-cache:compression": compression })), compression);
        }
        // The ends of each range are accepted, as real Nix accepts them (tests/compressionLevel.nix234.rgw.test.ts).
        for (const [compression, level] of [["xz", 0], ["xz", 9], ["zstd", 1], ["zstd", 22]] as const) {
            const config = { ...SERVER, "nix-cache:compression": compression, "nix-cache:compressionLevel": String(level) };
            assert.equal(parseSettings(config).compressionLevel, level, `${compression} ${level}`);
        }
    });

    test("refuses a compression level with compression none, naming the setting and the fix", () => {
        // Nix 2.8 and 2.34 make a NoneSink for `none` without passing the level on (NixOS/nix
        // src/libutil/compression.cc, makeCompressionSink): the level would silently do nothing.
        assert.deepEqual(problemsFor({ ...SERVER, "nix-cache:compression": "none", "nix-cache:compressionLevel": "9" }), [
            "nix-cache:compressionLevel: applies only with nix-cache:compression zstd or xz, and compression is none (Nix ignores " +
                "a level for uncompressed NARs); remove it (pulumi config rm nix-cache:compressionLevel) or set nix-cache:compression zstd",
        ]);
    });

    test("retention expire: expireDays defaults to 30 and can be set; no collector settings", () => {
        const expire = parseSettings({ ...SERVER, "nix-cache:retention": "expire" });
        assert.equal(expire.retention, "expire");
        assert.equal(expire.expireDays, 30);
        assert.equal(parseSettings({ ...SERVER, "nix-cache:retention": "expire", "nix-cache:expireDays": "7" }).expireDays, 7);
        assert.deepEqual(
            ["collectorName", "gcKeepDays", "gcGraceHours"].filter((name) => name in expire),
            [],
        );
    });

    test("retention none: neither expiry nor collector settings", () => {
        const none = parseSettings({ ...SERVER, "nix-cache:retention": "none" });
        assert.equal(none.retention, "none");
        assert.deepEqual(
            ["collectorName", "gcKeepDays", "gcGraceHours", "expireDays"].filter((name) => name in none),
            [],
        );
    });

    // A setting that the chosen retention mode does not read would silently do nothing.
    const misplaced: [string, Record<string, string>, string][] = [
        [
            "expireDays while retention is gc by default (a stack from before gc, with expiry switched off)",
            { "nix-cache:expireDays": "0" },
            "nix-cache:expireDays: applies only with nix-cache:retention expire, and retention is gc (the default); " +
                "remove it (pulumi config rm nix-cache:expireDays) or set nix-cache:retention expire",
        ],
        [
            "expireDays with retention gc",
            { "nix-cache:retention": "gc", "nix-cache:expireDays": "30" },
            "nix-cache:expireDays: applies only with nix-cache:retention expire, and retention is gc; " +
                "remove it (pulumi config rm nix-cache:expireDays) or set nix-cache:retention expire",
        ],
        [
            "expireDays with retention none",
            { "nix-cache:retention": "none", "nix-cache:expireDays": "30" },
            "nix-cache:expireDays: applies only with nix-cache:retention expire, and retention is none; " +
                "remove it (pulumi config rm nix-cache:expireDays) or set nix-cache:retention expire",
        ],
        [
            "gcKeepDays with retention expire",
            { "nix-cache:retention": "expire", "nix-cache:gcKeepDays": "30" },
            "nix-cache:gcKeepDays: applies only with nix-cache:retention gc, and retention is expire; " +
                "remove it (pulumi config rm nix-cache:gcKeepDays) or set nix-cache:retention gc",
        ],
        [
            "gcGraceHours with retention none",
            { "nix-cache:retention": "none", "nix-cache:gcGraceHours": "24" },
            "nix-cache:gcGraceHours: applies only with nix-cache:retention gc, and retention is none; " +
                "remove it (pulumi config rm nix-cache:gcGraceHours) or set nix-cache:retention gc",
        ],
        [
            "collectorName with retention expire",
            { "nix-cache:retention": "expire", "nix-cache:collectorName": "nixcollector" },
            "nix-cache:collectorName: applies only with nix-cache:retention gc, and retention is expire; " +
                "remove it (pulumi config rm nix-cache:collectorName) or set nix-cache:retention gc",
        ],
    ];
    for (const [what, config, problem] of misplaced) {
        test(`refuses ${what}, naming the setting and the fix`, () => {
            assert.deepEqual(problemsFor({ ...SERVER, ...config }), [problem]);
        });
    }

    test("a misplaced setting is one problem, whatever its value; the mode's own settings are still checked", () => {
        assert.deepEqual(problemsFor({ ...SERVER, "nix-cache:retention": "expire", "nix-cache:gcKeepDays": "soon" }), [
            "nix-cache:gcKeepDays: applies only with nix-cache:retention gc, and retention is expire; " +
                "remove it (pulumi config rm nix-cache:gcKeepDays) or set nix-cache:retention gc",
        ]);
        assert.deepEqual(
            problemsFor({ ...SERVER, "nix-cache:retention": "expire", "nix-cache:gcKeepDays": "30", "nix-cache:expireDays": "-1" }).map(
                (problem) => problem.split(":").slice(0, 2).join(":"),
            ),
            ["nix-cache:gcKeepDays", "nix-cache:expireDays"],
        );
        // With an unknown retention nothing is misplaced: the retention itself is the one problem.
        assert.deepEqual(problemsFor({ ...SERVER, "nix-cache:retention": "lru", "nix-cache:expireDays": "30" }), [
            "nix-cache:retention: must be one of gc, expire, none",
        ]);
    });

    test("the collector must be another MinIO user than the writer", () => {
        const clash = (name: string) =>
            `nix-cache:collectorName: must differ from nix-cache:writerName ('${name}'): MinIO would make the ` +
            "writer and the collector one user, whose policy either uploads or deletes; choose another name";
        assert.deepEqual(problemsFor({ ...SERVER, "nix-cache:collectorName": "nixbuilder" }), [clash("nixbuilder")]);
        assert.deepEqual(problemsFor({ ...SERVER, "nix-cache:writerName": "nixcollector" }), [clash("nixcollector")]);
        // Without a collector there is nothing to clash with.
        assert.deepEqual(problemsFor({ ...SERVER, "nix-cache:writerName": "nixcollector", "nix-cache:retention": "expire" }), []);
    });

    test("never echoes the writer secret in an error", () => {
        const secret = "x y z secret value";
        const problems = problemsFor({ ...SERVER, "nix-cache:writerSecret": secret });
        assert.equal(problems.length, 1);
        assert.ok(!problems.join("\n").includes(secret));
    });

    test("reports every problem at once", () => {
        const problems = problemsFor({
            ...SERVER,
            "nix-cache:bucket": "A",
            "nix-cache:priority": "x",
            "nix-cache:compression": "lz4",
        });
        assert.deepEqual(
            problems.map((problem) => problem.split(":").slice(0, 2).join(":")),
            ["nix-cache:bucket", "nix-cache:priority", "nix-cache:compression"],
        );
    });

    test("without a public URL or a MinIO server it says how to set one", () => {
        const noServer =
            "nix-cache:publicUrl: not set, and there is no valid minio:minioServer (or MINIO_ENDPOINT) to derive it from; " +
            "set one: pulumi config set nix-cache:publicUrl https://s3.example.org";
        assert.deepEqual(problemsFor({}), [noServer]);
        assert.throws(() => parseSettings({}, { MINIO_ENABLE_HTTPS: "true" }), (error: SettingsError) => {
            assert.deepEqual(error.problems, [noServer]);
            return true;
        });
    });

    test("a MinIO server that makes no valid URL asks for an explicit public URL, and says what is wrong with it", () => {
        const expected = (got: string) => [
            "nix-cache:publicUrl: not set, and there is no valid minio:minioServer (or MINIO_ENDPOINT) to derive it from; " +
                "set one: pulumi config set nix-cache:publicUrl https://s3.example.org",
            `minio:minioServer: must be host or host:port without a scheme, e.g. s3.example.org:9000 (got '${got}')`,
        ];
        // With expiry off the connection matters only for the default public URL, and is still checked.
        const noExpiry = { "nix-cache:retention": "none" };
        assert.deepEqual(problemsFor({ "minio:minioServer": "https://s3.example.org" }), expected("https://s3.example.org"));
        assert.deepEqual(problemsFor({ "minio:minioServer": "https://s3.example.org", ...noExpiry }), expected("https://s3.example.org"));
        assert.throws(() => parseSettings(noExpiry, { MINIO_ENDPOINT: "s3.example.org/path" }), (error: SettingsError) => {
            assert.deepEqual(error.problems, expected("s3.example.org/path"));
            return true;
        });
        const [problem] = problemsFor({ "minio:minioServer": "[:::]:9000" });
        assert.match(problem ?? "", /^nix-cache:publicUrl: the default derived from the MinIO endpoint \('http:\/\/\[:::\]:9000'\) must be an absolute/);
    });

    test("a minioSsl that is neither true nor false is refused when the public URL derives from it", () => {
        assert.deepEqual(problemsFor({ ...SERVER, "minio:minioSsl": "yes" }), ["minio:minioSsl: must be true or false (got 'yes')"]);
        assert.deepEqual(problemsFor({ ...SERVER, "minio:minioSsl": "yes", "nix-cache:publicUrl": "https://c.example.org" }), []);
    });

    test("the upload region defaults to the minio provider's region (minio:minioRegion), which defaults to us-east-1", () => {
        // terraform-provider-minio minio/provider.go, Provider(): minio_region is Optional with
        // Default "us-east-1" and no environment variable; MinIO refuses a request signed for
        // another region than its own.
        assert.equal(parseSettings(SERVER).region, "us-east-1");
        assert.equal(parseSettings({ ...SERVER, "minio:minioRegion": "eu-central-1" }).region, "eu-central-1");
        assert.equal(parseSettings({ ...SERVER, "minio:minioRegion": "eu-central-1", "nix-cache:region": "homelab" }).region, "homelab");
        assert.deepEqual(problemsFor({ ...SERVER, "minio:minioRegion": "EU West" }), [
            "nix-cache:region: the default taken from minio:minioRegion ('EU West') must be a region name such as us-east-1; " +
                "fix minio:minioRegion or set nix-cache:region",
        ]);
        assert.deepEqual(problemsFor({ ...SERVER, "minio:minioRegion": "EU West", "nix-cache:region": "eu-west-1" }), []);
    });

    test("an IPv6 server needs an explicit key name", () => {
        const [problem] = problemsFor({ "minio:minioServer": "[::1]:9000" });
        assert.match(problem ?? "", /^nix-cache:keyName: the default derived from the public URL \('\[::1\]-1'\)/);
        assert.equal(parseSettings({ "minio:minioServer": "[::1]:9000", "nix-cache:keyName": "local-1" }).keyName, "local-1");
    });
});

describe("Pulumi.dev.yaml", () => {
    test("the example stack is valid", () => {
        const stack = parse(readFileSync(join(__dirname, "..", "Pulumi.dev.yaml"), "utf8"));
        const config = Object.fromEntries(Object.entries<unknown>(stack.config).map(([k, v]) => [k, String(v)]));
        assert.doesNotThrow(() => parseSettings(config));
        assert.ok(!Object.keys(config).some((key) => /password|secret/i.test(key)), "no secrets in the example stack");
    });
});
