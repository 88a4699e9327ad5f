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
            protect: true,
            expireDays: 30,
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
            "nix-cache:protect": "false",
            "nix-cache:expireDays": "7",
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
            protect: false,
            expireDays: 7,
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
    ];
    for (const [what, config, message] of invalid) {
        test(`rejects ${what}`, () => {
            const problems = problemsFor({ ...SERVER, ...config });
            assert.equal(problems.length, 1, `expected one problem, got ${JSON.stringify(problems)}`);
            assert.match(problems[0]!, message);
        });
    }

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
        const noExpiry = { "nix-cache:expireDays": "0" };
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
        assert.deepEqual(problemsFor({ ...SERVER, "minio:minioSsl": "yes", "nix-cache:expireDays": "0" }), [
            "minio:minioSsl: must be true or false (got 'yes')",
        ]);
        assert.deepEqual(
            problemsFor({ ...SERVER, "minio:minioSsl": "yes", "nix-cache:expireDays": "0", "nix-cache:publicUrl": "https://c.example.org" }),
            [],
        );
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
