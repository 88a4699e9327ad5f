// Expiry's pure parts: the lifecycle configuration, the size threshold, the errors, the settings.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
    expiryRule,
    lifecycleMismatchError,
    lifecycleRequestError,
    liveRules,
    sameRule,
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

describe("the lifecycle rule", () => {
    test("everything larger than nix-cache-info expires after the given days", () => {
        assert.deepEqual(expiryRule(30, DEFAULT_CACHE_INFO), {
            ID: "nix-cache-expiry",
            Status: "Enabled",
            Filter: { ObjectSizeGreaterThan: 51 },
            Expiration: { Days: 30 },
        });
        assert.deepEqual(expiryRule(1, "StoreDir: /gnu/store\nWantMassQuery: 0\nPriority: 123456\n"), {
            ID: "nix-cache-expiry",
            Status: "Enabled",
            Filter: { ObjectSizeGreaterThan: 55 },
            Expiration: { Days: 1 },
        });
    });

    test("the threshold counts bytes, not characters", () => {
        assert.equal(expiryRule(7, "StoreDir: /nix/störe\n").Filter.ObjectSizeGreaterThan, 22);
    });

    test("days outside 1..36500 or fractional are refused", () => {
        for (const days of [0, -1, 1.5, 36501, Number.NaN]) {
            assert.throws(() => expiryRule(days, DEFAULT_CACHE_INFO), /expiry: must be a whole number of days from 1 to 36500/);
        }
        assert.equal(expiryRule(36500, DEFAULT_CACHE_INFO).Expiration.Days, 36500);
    });

    test("the threshold must stay under 200 bytes (checked against a narinfo real Nix writes in expiry.nix.test.ts)", () => {
        assert.equal(thresholdProblem("x".repeat(199)), undefined);
        assert.match(thresholdProblem("x".repeat(200)) ?? "", /nix-cache-info would be 200 bytes; .* under 200 bytes/);
        assert.throws(() => expiryRule(30, "x".repeat(250)), /nix-cache-info would be 250 bytes/);
    });
});

describe("the rules of a GetBucketLifecycleConfiguration answer", () => {
    // Shaped as MinIO and AWS answer (docs.aws.amazon.com, GetBucketLifecycleConfiguration, Response Syntax).
    const foreign =
        "<Rule>\n  <ID>007</ID>\n  <Filter><And><Prefix>log/0123 </Prefix><Tag><Key>a&amp;b</Key><Value>007</Value></Tag></And></Filter>" +
        "\n  <Status>Disabled</Status><Expiration><Days>90</Days></Expiration>\n</Rule>";
    const abort =
        "<Rule><ID>abort-uploads</ID><Status>Enabled</Status><Filter><Prefix></Prefix></Filter>" +
        "<AbortIncompleteMultipartUpload><DaysAfterInitiation>7</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>";
    const answer = (...rules: string[]) =>
        `<?xml version="1.0" encoding="UTF-8"?>\n<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${rules.join("\n")}</LifecycleConfiguration>`;

    test("each rule's element exactly as sent, so that it can be written back unchanged, and what it says", () => {
        const rules = liveRules(answer(foreign, abort));
        assert.deepEqual(rules.map((rule) => rule.xml), [foreign, abort]);
        assert.deepEqual(rules[0]!.parsed, {
            ID: "007",
            Filter: { And: { Prefix: "log/0123", Tag: { Key: "a&b", Value: "007" } } },
            Status: "Disabled",
            Expiration: { Days: "90" },
        });
        assert.equal(rules[1]!.parsed.ID, "abort-uploads");
        assert.deepEqual(liveRules(answer(abort)).map((rule) => rule.xml), [abort]);
        assert.deepEqual(liveRules(answer()), []);
    });

    test("an answer whose rules cannot all be split out unchanged is refused", () => {
        assert.throws(
            () => liveRules(answer(abort, "<Rule/>")),
            /has 2 rules, of which 1 could be kept as they are; nothing was changed/,
        );
    });
});

describe("a stored rule is the stack's rule when it expires the same objects", () => {
    const wanted = expiryRule(30, DEFAULT_CACHE_INFO);
    // As parsed from the server's XML (text) or as recorded in state (numbers).
    const rule = { ID: "nix-cache-expiry", Status: "Enabled", Filter: { ObjectSizeGreaterThan: "51" }, Expiration: { Days: "30" } };
    const storedAs = (changes: Record<string, unknown>) => ({ ...rule, ...changes });

    test("whatever the element order, extra defaults or an empty prefix", () => {
        for (const stored of [
            rule,
            wanted,
            { Expiration: { Days: 30 }, Filter: { ObjectSizeGreaterThan: 51 }, Status: "Enabled", ID: "nix-cache-expiry" },
            storedAs({ Filter: { Prefix: "", ObjectSizeGreaterThan: "51" } }),
            storedAs({ Filter: { And: { Prefix: "", ObjectSizeGreaterThan: "51" } } }),
            storedAs({ Prefix: "", Expiration: { Days: "30", ExpiredObjectDeleteMarker: "false" } }),
            storedAs({ NoncurrentVersionExpiration: "", Transition: "", DelMarkerExpiration: "" }),
        ]) {
            assert.equal(sameRule(stored, wanted), true, JSON.stringify(stored));
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
            assert.equal(sameRule(storedAs({ Filter: filter }), wanted), false, JSON.stringify(filter));
        }
        assert.equal(sameRule(storedAs({ Prefix: "nar/" }), wanted), false, "a rule-level prefix narrows too");
    });

    test("not for other days, status or id, nor without a rule", () => {
        for (const changes of [
            { Expiration: { Days: 7 } },
            { Expiration: { Date: "2030-01-01T00:00:00Z" } },
            { Expiration: "" },
            { Status: "Disabled" },
            { ID: "other" },
        ]) {
            assert.equal(sameRule(storedAs(changes), wanted), false, JSON.stringify(changes));
        }
        assert.equal(sameRule(undefined, wanted), false);
    });

    test("two rules that both do something else are not the same", () => {
        const narrowed = { ...rule, Filter: { Prefix: "nar/" } };
        assert.equal(sameRule(narrowed, narrowed as unknown as typeof wanted), false);
    });
});

describe("errors from the server", () => {
    const writeError = (error: unknown, bucket: string) => lifecycleRequestError(error, bucket, "writing");

    test("MinIO's refusal of the size filter becomes the upgrade message", () => {
        for (const code of ["InvalidArgument", "InvalidRequest"]) {
            const error = writeError({ code, message: "unknown XML Tag" }, "nix-cache");
            assert.match(error.message, new RegExp(`^bucket 'nix-cache': the server refused the expiry rule \\(${code}: unknown XML Tag\\)`));
            assert.match(error.message, /MinIO releases before December 2023 \(RELEASE\.2023-12-02T10-51-33Z\) do not support/);
            assert.match(error.message, /Upgrade MinIO .* or set nix-cache:retention gc/);
        }
        assert.match(writeError({ code: "MalformedXML", message: "The XML ..." }, "b").message, /do not support/);
    });

    test("other errors are reported as they are", () => {
        const error = writeError({ code: "AccessDenied", message: "Access Denied." }, "nix-cache");
        assert.equal(error.message, "bucket 'nix-cache': writing the lifecycle configuration failed (AccessDenied: Access Denied.)");
        assert.doesNotMatch(writeError({ code: "InvalidArgument", message: "Days must be positive" }, "b").message, /upgrade/i);
        assert.match(writeError(new Error("connect ECONNREFUSED"), "b").message, /failed \(error: connect ECONNREFUSED\)/);
    });

    test("a rule stored without the filter is named in the error", () => {
        const error = lifecycleMismatchError("nix-cache", { ID: "nix-cache-expiry", Filter: "" });
        assert.match(error.message, /stored \{"ID":"nix-cache-expiry","Filter":""\} instead/);
        assert.match(error.message, /the rule was removed again/);
        assert.match(lifecycleMismatchError("b", undefined).message, /stored null instead/);
    });

    test("a failed read names the server's code, and is never mistaken for a refused rule", () => {
        assert.equal(
            lifecycleRequestError({ code: "AccessDenied", message: "Access Denied." }, "nix-cache", "reading").message,
            "bucket 'nix-cache': reading the lifecycle configuration failed (AccessDenied: Access Denied.)",
        );
        assert.doesNotMatch(lifecycleRequestError({ code: "MalformedXML", message: "..." }, "b", "reading").message, /refused/);
    });
});

describe("the expireDays setting (retention expire)", () => {
    const EXPIRE = { ...SERVER, "nix-cache:retention": "expire" };

    test("defaults to 30 and accepts 1 to 36500", () => {
        assert.equal(parseSettings(EXPIRE, {}).expireDays, 30);
        for (const days of ["1", "7", "36500"]) {
            assert.equal(parseSettings({ ...EXPIRE, "nix-cache:expireDays": days }, {}).expireDays, Number(days));
        }
    });

    test("every invalid value stops the program naming the setting", () => {
        for (const days of ["0", "-1", "1.5", "0.5", "30d", "abc", "", " 30", "1e3", "0x10", "036", "36501", "100000", "99999999999"]) {
            assert.deepEqual(
                problemsFor({ ...EXPIRE, "nix-cache:expireDays": days }),
                ["nix-cache:expireDays: must be a whole number of days from 1 to 36500, such as 30 (no expiry at all: nix-cache:retention none)"],
                `expireDays '${days}'`,
            );
        }
    });

    test("a store dir long enough to push nix-cache-info to 200 bytes is refused while expiry is on", () => {
        // "StoreDir: " + dir + "\n" is 11 bytes more than the dir; the other two lines are 30 bytes.
        const storeDir = `/${"s".repeat(158)}`;
        const [problem, ...others] = problemsFor({ ...EXPIRE, "nix-cache:storeDir": storeDir });
        assert.match(problem ?? "", /^nix-cache:retention: expire: nix-cache-info would be 200 bytes; .*shorten nix-cache:storeDir or set nix-cache:retention gc$/);
        assert.deepEqual(others, []);
        assert.deepEqual(problemsFor({ ...EXPIRE, "nix-cache:storeDir": `/${"s".repeat(157)}` }), []);
        assert.deepEqual(problemsFor({ ...SERVER, "nix-cache:storeDir": storeDir }), []);
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
        const expiring = { "nix-cache:publicUrl": "https://cache.example.org", "nix-cache:retention": "expire" };
        assert.deepEqual(
            problemsFor({ ...expiring, "minio:minioServer": "https://s3.example.org" }),
            ["minio:minioServer: must be host or host:port without a scheme, e.g. s3.example.org:9000 (got 'https://s3.example.org')"],
        );
        assert.deepEqual(problemsFor(expiring, { MINIO_ENDPOINT: "https://s3" }), [
            "minio:minioServer: must be host or host:port without a scheme, e.g. s3.example.org:9000 (got 'https://s3')",
        ]);
        // Without an endpoint the provider (and expiry, see bucketLifecycle.test.ts) refuses to run.
        assert.deepEqual(problemsFor(expiring), []);
        assert.deepEqual(problemsFor({ ...SERVER, "minio:minioSsl": "yes" }).filter((p) => p.startsWith("minio:")), [
            "minio:minioSsl: must be true or false (got 'yes')",
        ]);
        assert.deepEqual(problemsFor({ "nix-cache:publicUrl": "https://cache.example.org", "minio:minioServer": "https://s3.example.org" }), []);
    });
});
