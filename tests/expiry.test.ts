// Expiry's pure parts: the lifecycle configuration, the size threshold, the errors, the settings.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
    expiryLifecycle,
    lifecycleMismatchError,
    lifecycleWriteError,
    liveRules,
    sameConfiguration,
    thresholdProblem,
} from "../lib/lifecycle";
import { minioConnection, parseServer } from "../lib/minioConnection";
import { parseSettings, SettingsError } from "../lib/settings";

const DEFAULT_CACHE_INFO = "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n"; // 21 + 17 + 13 bytes
const SERVER = { "minio:minioServer": "s3.example.org:9000" };

function problemsFor(config: Record<string, string>, env: Record<string, string> = {}): string[] {
    try {
        parseSettings(config, env);
        return [];
    } catch (error) {
        assert.ok(error instanceof SettingsError, `expected a SettingsError, got ${error}`);
        return error.problems;
    }
}

describe("the lifecycle configuration", () => {
    test("one rule: everything larger than nix-cache-info expires after the given days", () => {
        assert.deepEqual(expiryLifecycle(30, DEFAULT_CACHE_INFO), {
            Rule: [
                {
                    ID: "nix-cache-expiry",
                    Status: "Enabled",
                    Filter: { ObjectSizeGreaterThan: 51 },
                    Expiration: { Days: 30 },
                },
            ],
        });
        assert.deepEqual(expiryLifecycle(1, "StoreDir: /gnu/store\nWantMassQuery: 0\nPriority: 123456\n").Rule[0], {
            ID: "nix-cache-expiry",
            Status: "Enabled",
            Filter: { ObjectSizeGreaterThan: 55 },
            Expiration: { Days: 1 },
        });
    });

    test("the threshold counts bytes, not characters", () => {
        assert.equal(expiryLifecycle(7, "StoreDir: /nix/störe\n").Rule[0]!.Filter.ObjectSizeGreaterThan, 22);
    });

    test("days outside 1..36500 or fractional are refused", () => {
        for (const days of [0, -1, 1.5, 36501, Number.NaN]) {
            assert.throws(() => expiryLifecycle(days, DEFAULT_CACHE_INFO), /expiry: must be a whole number of days from 1 to 36500/);
        }
        assert.equal(expiryLifecycle(36500, DEFAULT_CACHE_INFO).Rule[0]!.Expiration.Days, 36500);
    });

    test("the threshold must stay under 200 bytes", () => {
        assert.equal(thresholdProblem("x".repeat(199)), undefined);
        assert.match(thresholdProblem("x".repeat(200)) ?? "", /nix-cache-info would be 200 bytes; .* under 200 bytes/);
        assert.throws(() => expiryLifecycle(30, "x".repeat(250)), /nix-cache-info would be 250 bytes/);
    });

    test("the smallest narinfo Nix can write is larger than the 200-byte bound", () => {
        // Every line Nix always writes, each as short as it can be (store dir "/x", name "a").
        const smallest = [
            "StorePath: /x/00000000000000000000000000000000-a",
            "URL: nar/0000000000000000000000000000000000000000000000000000.nar",
            "Compression: none",
            "NarHash: sha256:0000000000000000000000000000000000000000000000000000",
            "NarSize: 0",
            "",
        ].join("\n");
        assert.equal(Buffer.byteLength(smallest), 213);
    });

    test("the live rules, as the SDK parses one or several <Rule> elements", () => {
        const rule = { ID: "a", Status: "Enabled" };
        assert.deepEqual(liveRules({ Rule: rule }), [rule]);
        assert.deepEqual(liveRules({ Rule: [rule, rule] }), [rule, rule]);
        assert.deepEqual(liveRules(undefined), []);
        assert.deepEqual(liveRules(""), []);
    });

    describe("a stored configuration is the wanted one when it expires the same objects", () => {
        const wanted = expiryLifecycle(30, DEFAULT_CACHE_INFO);
        // As the SDK parses GetBucketLifecycleConfiguration: a single <Rule> is an object, numbers are numbers.
        const rule = { ID: "nix-cache-expiry", Status: "Enabled", Filter: { ObjectSizeGreaterThan: 51 }, Expiration: { Days: 30 } };
        const storedAs = (changes: Record<string, unknown>) => ({ Rule: { ...rule, ...changes } });

        test("whatever the element order, extra defaults or an empty prefix", () => {
            for (const stored of [
                { Rule: { Expiration: { Days: 30 }, Filter: { ObjectSizeGreaterThan: 51 }, Status: "Enabled", ID: "nix-cache-expiry" } },
                { Rule: [rule] },
                storedAs({ Filter: { Prefix: "", ObjectSizeGreaterThan: 51 } }),
                storedAs({ Filter: { And: { Prefix: "", ObjectSizeGreaterThan: 51 } } }),
                storedAs({ Filter: { ObjectSizeGreaterThan: "51" }, Expiration: { Days: "30" } }),
                storedAs({ Prefix: "", Expiration: { Days: 30, ExpiredObjectDeleteMarker: false } }),
                storedAs({ NoncurrentVersionExpiration: "", Transition: "", DelMarkerExpiration: "" }),
            ]) {
                assert.equal(sameConfiguration(stored, wanted), true, JSON.stringify(stored));
            }
        });

        test("not when the size filter is gone, narrowed or changed", () => {
            for (const filter of [
                undefined,
                "",
                {},
                { Prefix: "" }, // what servers that drop unknown filter elements store
                { Prefix: "nar/", ObjectSizeGreaterThan: 51 },
                { Tag: { Key: "keep", Value: "no" }, ObjectSizeGreaterThan: 51 },
                { ObjectSizeGreaterThan: 51, ObjectSizeLessThan: 1000000 },
                { And: { Prefix: "nar/", ObjectSizeGreaterThan: 51 } },
                { And: { Tag: { Key: "keep", Value: "no" }, ObjectSizeGreaterThan: 51 } },
                { And: { Prefix: "" } },
                { ObjectSizeGreaterThan: 52 },
                { ObjectSizeGreaterThan: 0 },
                { ObjectSizeGreaterThan: "51 bytes" },
                { ObjectSizeGreaterThan: [51, 51] },
                { ObjectSizeGreaterThan: 51, And: { ObjectSizeGreaterThan: 51 } },
                { ObjectSizeGreaterThan: 51, Unknown: "" },
            ]) {
                assert.equal(sameConfiguration(storedAs({ Filter: filter }), wanted), false, JSON.stringify(filter));
            }
            assert.equal(sameConfiguration(storedAs({ Prefix: "nar/" }), wanted), false, "a rule-level prefix narrows too");
        });

        test("not for other days, status, id or rules", () => {
            for (const changes of [
                { Expiration: { Days: 7 } },
                { Expiration: { Date: "2030-01-01T00:00:00Z" } },
                { Expiration: "" },
                { Status: "Disabled" },
                { ID: "other" },
            ]) {
                assert.equal(sameConfiguration(storedAs(changes), wanted), false, JSON.stringify(changes));
            }
            assert.equal(sameConfiguration({ Rule: [rule, { ...rule, ID: "other" }] }, wanted), false);
            assert.equal(sameConfiguration({ Rule: [rule, rule] }, wanted), false);
            assert.equal(sameConfiguration(undefined, wanted), false);
            const twoRules = { Rule: [wanted.Rule[0]!, { ...wanted.Rule[0]!, ID: "second" }] };
            assert.equal(sameConfiguration({ Rule: [rule] }, twoRules), false);
            assert.equal(sameConfiguration({ Rule: [{ ...rule, ID: "second" }, rule] }, twoRules), true, "rule order does not matter");
        });

        test("two rules that both do something else are not the same", () => {
            const narrowed = { ...rule, Filter: { Prefix: "nar/" } };
            assert.equal(sameConfiguration({ Rule: narrowed }, { Rule: [narrowed] } as unknown as typeof wanted), false);
        });
    });
});

describe("errors from the server", () => {
    test("MinIO's refusal of the size filter becomes the upgrade message", () => {
        for (const code of ["InvalidArgument", "InvalidRequest"]) {
            const error = lifecycleWriteError({ code, message: "unknown XML Tag" }, "nix-cache");
            assert.match(error.message, new RegExp(`^bucket 'nix-cache': the server refused the expiry rule \\(${code}: unknown XML Tag\\)`));
            assert.match(error.message, /MinIO releases before December 2023 \(RELEASE\.2023-12-02T10-51-33Z\) do not support/);
            assert.match(error.message, /Upgrade MinIO .* or set nix-cache:expireDays to 0/);
        }
        assert.match(lifecycleWriteError({ code: "MalformedXML", message: "The XML ..." }, "b").message, /do not support/);
    });

    test("other errors are reported as they are", () => {
        const error = lifecycleWriteError({ code: "AccessDenied", message: "Access Denied." }, "nix-cache");
        assert.equal(error.message, "bucket 'nix-cache': writing the lifecycle configuration failed (AccessDenied: Access Denied.)");
        assert.doesNotMatch(lifecycleWriteError({ code: "InvalidArgument", message: "Days must be positive" }, "b").message, /upgrade/i);
        assert.match(lifecycleWriteError(new Error("connect ECONNREFUSED"), "b").message, /failed \(error: connect ECONNREFUSED\)/);
    });

    test("a configuration stored without the filter is named in the error", () => {
        const error = lifecycleMismatchError("nix-cache", { Rule: { ID: "nix-cache-expiry", Filter: "" } });
        assert.match(error.message, /stored \[\{"ID":"nix-cache-expiry","Filter":""\}\] instead/);
        assert.match(error.message, /the rule was removed again/);
    });
});

describe("the expireDays setting", () => {
    test("defaults to 30 and accepts 0 (no expiry) to 36500", () => {
        assert.equal(parseSettings(SERVER, {}).expireDays, 30);
        for (const days of ["0", "1", "7", "36500"]) {
            assert.equal(parseSettings({ ...SERVER, "nix-cache:expireDays": days }, {}).expireDays, Number(days));
        }
    });

    test("every invalid value stops the program naming the setting", () => {
        for (const days of ["-1", "1.5", "0.5", "30d", "abc", "", " 30", "1e3", "0x10", "036", "36501", "100000", "99999999999"]) {
            assert.deepEqual(
                problemsFor({ ...SERVER, "nix-cache:expireDays": days }),
                ["nix-cache:expireDays: must be a whole number of days from 0 (no expiry) to 36500, such as 30"],
                `expireDays '${days}'`,
            );
        }
    });

    test("a store dir long enough to push nix-cache-info to 200 bytes is refused while expiry is on", () => {
        // "StoreDir: " + dir + "\n" is 11 bytes more than the dir; the other two lines are 30 bytes.
        const storeDir = `/${"s".repeat(158)}`;
        const [problem, ...others] = problemsFor({ ...SERVER, "nix-cache:storeDir": storeDir });
        assert.match(problem ?? "", /^nix-cache:expireDays: nix-cache-info would be 200 bytes; .*shorten nix-cache:storeDir or set nix-cache:expireDays to 0$/);
        assert.deepEqual(others, []);
        assert.deepEqual(problemsFor({ ...SERVER, "nix-cache:storeDir": `/${"s".repeat(157)}` }), []);
        assert.deepEqual(problemsFor({ ...SERVER, "nix-cache:storeDir": storeDir, "nix-cache:expireDays": "0" }), []);
    });
});

describe("the minio provider's connection", () => {
    test("comes from the minio:* config", () => {
        const settings = parseSettings(
            {
                "minio:minioServer": "s3.example.org:9000",
                "minio:minioSsl": "true",
                "minio:minioUser": "admin",
                "minio:minioPassword": "secret-password",
                "minio:minioRegion": "eu-central-1",
                "minio:minioCacertFile": "/etc/ssl/private-ca.pem",
            },
            { MINIO_USER: "ignored", MINIO_PASSWORD: "ignored", MINIO_ENABLE_HTTPS: "false" },
        );
        assert.deepEqual(settings.minio, {
            endPoint: "s3.example.org",
            port: 9000,
            useSSL: true,
            region: "eu-central-1",
            accessKey: "admin",
            secretKey: "secret-password",
            caCertFile: "/etc/ssl/private-ca.pem",
            insecure: false,
        });
    });

    test("falls back to the provider's environment variables (defaults: see settings.test.ts)", () => {
        const { connection, problems } = minioConnection(
            {},
            {
                MINIO_ENDPOINT: "minio.internal",
                MINIO_USER: "env-user",
                MINIO_PASSWORD: "env-password",
                MINIO_ENABLE_HTTPS: "on",
                MINIO_CACERT_FILE: "/ca.pem",
                MINIO_INSECURE: "1",
            },
        );
        assert.deepEqual(problems, []);
        assert.deepEqual(connection, {
            endPoint: "minio.internal",
            useSSL: true,
            region: "us-east-1",
            accessKey: "env-user",
            secretKey: "env-password",
            caCertFile: "/ca.pem",
            insecure: true,
        });
    });

    test("server addresses: host, host:port, [IPv6]:port; nothing else", () => {
        assert.deepEqual(parseServer("s3.example.org"), { endPoint: "s3.example.org" });
        assert.deepEqual(parseServer("10.0.0.5:9000"), { endPoint: "10.0.0.5", port: 9000 });
        assert.deepEqual(parseServer("[::1]:9000"), { endPoint: "::1", port: 9000 });
        for (const bad of ["https://s3.example.org", "s3.example.org:0", "s3.example.org:70000", "s3.example.org/", "host:port", ""]) {
            assert.equal(parseServer(bad), undefined, bad);
        }
    });

    test("with expiry on, a malformed server or TLS flag stops the program naming the setting", () => {
        assert.deepEqual(
            problemsFor({ "nix-cache:publicUrl": "https://cache.example.org", "minio:minioServer": "https://s3.example.org" }),
            ["minio:minioServer: must be host or host:port without a scheme, e.g. s3.example.org:9000 (got 'https://s3.example.org')"],
        );
        assert.deepEqual(problemsFor({ "nix-cache:publicUrl": "https://cache.example.org" }, { MINIO_ENDPOINT: "https://s3" }), [
            "minio:minioServer: must be host or host:port without a scheme, e.g. s3.example.org:9000 (got 'https://s3')",
        ]);
        // Without an endpoint the provider (and expiry, see bucketLifecycle.test.ts) refuses to run.
        assert.deepEqual(problemsFor({ "nix-cache:publicUrl": "https://cache.example.org" }), []);
        assert.deepEqual(problemsFor({ ...SERVER, "minio:minioSsl": "yes" }).filter((p) => p.startsWith("minio:")), [
            "minio:minioSsl: must be true or false (got 'yes')",
        ]);
        assert.deepEqual(problemsFor({ "nix-cache:publicUrl": "https://cache.example.org", "nix-cache:expireDays": "0" }), []);
    });
});
