// Least privilege, proven by evaluating the policy documents the program registers (taken from the
// resources under the mock engine) with an independent IAM policy evaluator. Every row's expected
// decision is written out by hand; the last tests show each row can fail.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import {
    DOCUMENT_OF,
    isAllowed,
    policiesWithAndWithoutListing,
    STACK_CONFIG,
    type RegisteredPolicies,
    type Who,
} from "./accessEvaluation";

const BUCKET = "nix-cache";
const CONFIG = { ...STACK_CONFIG, "nix-cache:bucket": BUCKET };

interface Row {
    who: Who;
    action: string;
    /** `bucket/key`, `bucket`, or `*`. */
    target: string;
    /** With default settings. */
    allowed: boolean;
    /** With `nix-cache:allowAnonymousList true`. */
    allowedWithList: boolean;
}

const row = (who: Who, action: string, target: string, allowed: boolean, allowedWithList = allowed): Row => ({
    who,
    action,
    target,
    allowed,
    allowedWithList,
});

const NARINFO = `${BUCKET}/0c8n2p6z3v1q9x8f7d5b4a3s2w1e0r9t.narinfo`;
const NAR = `${BUCKET}/nar/1a2b3c4d5e6f7g8h9i0j1k2l3m4n5o6p7q8r9s0t1u2v3w4x5y6z.nar.zst`;
const CACHE_INFO = `${BUCKET}/nix-cache-info`;
const PIN = `${BUCKET}/pins/release-2026-12`;
// Other buckets, including ones a prefix wildcard (`nix-cache*`) would reach.
const OTHER = "other-bucket";
const SUFFIXED = `${BUCKET}-other`;
const APPENDED = `${BUCKET}x`;

const TABLE: Row[] = [
    // Anonymous clients: download by key, nothing else.
    row("anonymous", "s3:GetObject", CACHE_INFO, true),
    row("anonymous", "s3:GetObject", NARINFO, true),
    row("anonymous", "s3:GetObject", NAR, true),
    row("anonymous", "s3:ListBucket", BUCKET, false, true),
    row("anonymous", "s3:GetBucketLocation", BUCKET, false, true),
    row("anonymous", "s3:PutObject", NARINFO, false),
    row("anonymous", "s3:PutObject", CACHE_INFO, false),
    row("anonymous", "s3:DeleteObject", CACHE_INFO, false),
    row("anonymous", "s3:DeleteObject", NAR, false),
    row("anonymous", "s3:AbortMultipartUpload", NAR, false),
    row("anonymous", "s3:ListBucketMultipartUploads", BUCKET, false),
    row("anonymous", "s3:GetBucketPolicy", BUCKET, false),
    row("anonymous", "s3:PutBucketPolicy", BUCKET, false),
    row("anonymous", "s3:DeleteBucketPolicy", BUCKET, false),
    row("anonymous", "s3:PutLifecycleConfiguration", BUCKET, false),
    row("anonymous", "s3:DeleteBucket", BUCKET, false),
    row("anonymous", "s3:ListAllMyBuckets", "*", false),
    row("anonymous", "s3:GetObject", `${SUFFIXED}/nix-cache-info`, false),
    row("anonymous", "s3:GetObject", `${APPENDED}/nix-cache-info`, false),
    row("anonymous", "s3:GetObject", `${OTHER}/secret.txt`, false),
    row("anonymous", "s3:ListBucket", APPENDED, false),
    row("anonymous", "s3:ListBucket", OTHER, false),
    row("anonymous", "s3:PutObject", `${APPENDED}/x.narinfo`, false),
    // The writer: upload (multipart included), read and list this bucket; never delete or administer.
    row("writer", "s3:PutObject", NARINFO, true),
    row("writer", "s3:PutObject", NAR, true),
    // nix-cache-info is the stack's: a writer that rewrote it could make every client refuse the cache.
    // Denied by an explicit Deny, which MinIO checks before any Allow (minio/pkg policy/policy.go,
    // Policy.IsAllowed: "Check all deny statements") as AWS does.
    row("writer", "s3:PutObject", CACHE_INFO, false),
    row("writer", "s3:GetObject", CACHE_INFO, true),
    row("writer", "s3:PutObject", `${BUCKET}/nix-cache-info.narinfo`, true),
    row("writer", "s3:GetObject", NARINFO, true),
    row("writer", "s3:ListBucket", BUCKET, true),
    row("writer", "s3:GetBucketLocation", BUCKET, true),
    row("writer", "s3:ListBucketMultipartUploads", BUCKET, true),
    row("writer", "s3:ListMultipartUploadParts", NAR, true),
    row("writer", "s3:AbortMultipartUpload", NAR, true),
    row("writer", "s3:DeleteObject", NARINFO, false),
    row("writer", "s3:DeleteObject", CACHE_INFO, false),
    row("writer", "s3:DeleteObjectVersion", NAR, false),
    row("writer", "s3:DeleteBucket", BUCKET, false),
    row("writer", "s3:PutBucketPolicy", BUCKET, false),
    row("writer", "s3:DeleteBucketPolicy", BUCKET, false),
    row("writer", "s3:GetBucketPolicy", BUCKET, false),
    row("writer", "s3:PutLifecycleConfiguration", BUCKET, false),
    row("writer", "s3:PutBucketVersioning", BUCKET, false),
    row("writer", "s3:PutObject", `${SUFFIXED}/x.narinfo`, false),
    row("writer", "s3:PutObject", `${APPENDED}/x.narinfo`, false),
    row("writer", "s3:PutObject", `${OTHER}/x.narinfo`, false),
    row("writer", "s3:GetObject", `${APPENDED}/nix-cache-info`, false),
    row("writer", "s3:ListBucket", APPENDED, false),
    row("writer", "s3:ListBucket", OTHER, false),
    row("writer", "s3:ListAllMyBuckets", "*", false),
    row("writer", "s3:CreateBucket", OTHER, false),
    row("writer", "admin:ServerInfo", "*", false),
    row("writer", "admin:CreateUser", "*", false),
    row("writer", "admin:AttachUserOrGroupPolicy", "*", false),
    // Pins are the writers' to add (their upload grant covers pins/), and anyone may read them.
    row("writer", "s3:PutObject", PIN, true),
    row("writer", "s3:DeleteObject", PIN, false),
    row("anonymous", "s3:GetObject", PIN, true),
    row("anonymous", "s3:PutObject", PIN, false),
    // The collector: list, read and delete what no root reaches; never upload, never delete
    // nix-cache-info or a pin (an explicit Deny, checked before any Allow as for the writer).
    row("collector", "s3:ListBucket", BUCKET, true),
    row("collector", "s3:GetBucketLocation", BUCKET, true),
    row("collector", "s3:GetObject", NARINFO, true),
    row("collector", "s3:GetObject", PIN, true),
    row("collector", "s3:GetObject", CACHE_INFO, true),
    row("collector", "s3:DeleteObject", NARINFO, true),
    row("collector", "s3:DeleteObject", NAR, true),
    row("collector", "s3:DeleteObject", `${BUCKET}/0c8n2p6z3v1q9x8f7d5b4a3s2w1e0r9t.ls`, true),
    row("collector", "s3:DeleteObject", CACHE_INFO, false),
    row("collector", "s3:DeleteObject", PIN, false),
    row("collector", "s3:DeleteObject", `${BUCKET}/pins/nested/pin`, false),
    row("collector", "s3:DeleteObject", `${BUCKET}/pins.narinfo`, true),
    row("collector", "s3:PutObject", NARINFO, false),
    row("collector", "s3:PutObject", NAR, false),
    row("collector", "s3:PutObject", PIN, false),
    row("collector", "s3:PutObject", CACHE_INFO, false),
    row("collector", "s3:AbortMultipartUpload", NAR, false),
    row("collector", "s3:ListBucketMultipartUploads", BUCKET, false),
    row("collector", "s3:DeleteObjectVersion", NAR, false),
    row("collector", "s3:PutObjectAcl", NARINFO, false),
    row("collector", "s3:DeleteBucket", BUCKET, false),
    row("collector", "s3:PutBucketPolicy", BUCKET, false),
    row("collector", "s3:PutLifecycleConfiguration", BUCKET, false),
    row("collector", "s3:PutBucketVersioning", BUCKET, false),
    row("collector", "s3:DeleteObject", `${SUFFIXED}/x.narinfo`, false),
    row("collector", "s3:DeleteObject", `${APPENDED}/x.narinfo`, false),
    row("collector", "s3:DeleteObject", `${OTHER}/secret.txt`, false),
    row("collector", "s3:ListBucket", APPENDED, false),
    row("collector", "s3:ListBucket", OTHER, false),
    row("collector", "s3:ListAllMyBuckets", "*", false),
    row("collector", "admin:ServerInfo", "*", false),
    row("collector", "admin:CreateUser", "*", false),
];

const arnOf = (target: string): string => (target === "*" ? "*" : `arn:aws:s3:::${target}`);
const label = (entry: Row): string => `${entry.who} ${entry.action} ${entry.target}`;
const decide = (policies: RegisteredPolicies, entry: Row): Promise<boolean> =>
    isAllowed(policies, entry.who, entry.action, arnOf(entry.target));

type Document = { Version: string; Statement: Record<string, unknown>[] };
const documentOf = (policies: RegisteredPolicies, who: Who): Document => JSON.parse(policies[DOCUMENT_OF[who]]);
const withDocument = (policies: RegisteredPolicies, who: Who, document: Document): RegisteredPolicies => ({
    ...policies,
    [DOCUMENT_OF[who]]: JSON.stringify(document),
});
const EVERYONE = { AWS: ["*"] };

let defaults: RegisteredPolicies;
let withList: RegisteredPolicies;

before(async () => {
    ({ defaults, withList } = await policiesWithAndWithoutListing(CONFIG));
});

describe("who may do what, evaluated on the registered policy documents", () => {
    test("the table is large enough and covers every principal, allowed and denied", () => {
        assert.ok(TABLE.length >= 30, `only ${TABLE.length} rows`);
        for (const who of ["anonymous", "writer", "collector"] as const) {
            assert.ok(TABLE.some((entry) => entry.who === who && entry.allowed), `${who}: no allowed row`);
            assert.ok(TABLE.some((entry) => entry.who === who && !entry.allowed), `${who}: no denied row`);
        }
        assert.equal(new Set(TABLE.map(label)).size, TABLE.length, "duplicate rows");
    });

    test("default settings: every row decides as written", async () => {
        const wrong: string[] = [];
        for (const entry of TABLE) {
            const actual = await decide(defaults, entry);
            if (actual !== entry.allowed) {
                wrong.push(`${label(entry)}: expected ${entry.allowed ? "allowed" : "denied"}`);
            }
        }
        assert.deepEqual(wrong, []);
    });

    test("allowAnonymousList: every row decides as written", async () => {
        const wrong: string[] = [];
        for (const entry of TABLE) {
            const actual = await decide(withList, entry);
            if (actual !== entry.allowedWithList) {
                wrong.push(`${label(entry)}: expected ${entry.allowedWithList ? "allowed" : "denied"}`);
            }
        }
        assert.deepEqual(wrong, []);
    });
});

describe("each row can fail", () => {
    // Adding exactly the grant a denied row forbids (or an explicit Deny for an allowed row) must
    // flip that row: no row passes because the request is malformed or never evaluated.
    test("a grant (or Deny) of exactly the row's request flips each row", async () => {
        const inert: string[] = [];
        for (const entry of TABLE) {
            const document = documentOf(defaults, entry.who);
            if (!entry.allowed) {
                // A row denied by an explicit Deny flips only without it: an Allow never beats a Deny.
                document.Statement = document.Statement.filter((statement) => statement.Effect !== "Deny");
            }
            document.Statement.push({
                Effect: entry.allowed ? "Deny" : "Allow",
                ...(entry.who === "anonymous" ? { Principal: EVERYONE } : {}),
                Action: [entry.action],
                Resource: [arnOf(entry.target)],
            });
            if ((await decide(withDocument(defaults, entry.who, document), entry)) === entry.allowed) {
                inert.push(label(entry));
            }
        }
        assert.deepEqual(inert, []);
    });

    // Plausible ways to widen each document, and the row that must catch each one.
    const widenings: { name: string; who: Who; widen: (document: Document) => void; caughtBy: string }[] = [
        {
            name: "anonymous upload",
            who: "anonymous",
            widen: (document) => (document.Statement[0]!.Action as string[]).push("s3:PutObject"),
            caughtBy: `anonymous s3:PutObject ${NARINFO}`,
        },
        {
            name: "anonymous s3:* on objects",
            who: "anonymous",
            widen: (document) => (document.Statement[0]!.Action = ["s3:*"]),
            caughtBy: `anonymous s3:DeleteObject ${CACHE_INFO}`,
        },
        {
            name: "anonymous s3:Get* on everything in the bucket",
            who: "anonymous",
            widen: (document) => {
                document.Statement[0]!.Action = ["s3:Get*"];
                document.Statement[0]!.Resource = [`arn:aws:s3:::${BUCKET}`, `arn:aws:s3:::${BUCKET}/*`];
            },
            caughtBy: `anonymous s3:GetBucketPolicy ${BUCKET}`,
        },
        {
            name: "anonymous listing without opting in",
            who: "anonymous",
            widen: (document) =>
                document.Statement.push({
                    Effect: "Allow",
                    Principal: EVERYONE,
                    Action: ["s3:ListBucket"],
                    Resource: [`arn:aws:s3:::${BUCKET}`],
                }),
            caughtBy: `anonymous s3:ListBucket ${BUCKET}`,
        },
        {
            name: "anonymous bucket-name prefix wildcard",
            who: "anonymous",
            widen: (document) => (document.Statement[0]!.Resource = [`arn:aws:s3:::${BUCKET}*`]),
            caughtBy: `anonymous s3:GetObject ${APPENDED}/nix-cache-info`,
        },
        {
            name: "anonymous read of every bucket",
            who: "anonymous",
            widen: (document) => (document.Statement[0]!.Resource = ["arn:aws:s3:::*"]),
            caughtBy: `anonymous s3:GetObject ${OTHER}/secret.txt`,
        },
        {
            name: "writer delete",
            who: "writer",
            widen: (document) => (document.Statement[1]!.Action as string[]).push("s3:DeleteObject"),
            caughtBy: `writer s3:DeleteObject ${NARINFO}`,
        },
        {
            name: "writer s3:* on objects",
            who: "writer",
            widen: (document) => (document.Statement[1]!.Action = ["s3:*"]),
            caughtBy: `writer s3:DeleteObjectVersion ${NAR}`,
        },
        {
            name: "writer s3:* on the bucket",
            who: "writer",
            widen: (document) => (document.Statement[0]!.Action = ["s3:*"]),
            caughtBy: `writer s3:DeleteBucket ${BUCKET}`,
        },
        {
            name: "writer without the Deny that keeps nix-cache-info",
            who: "writer",
            widen: (document) => document.Statement.splice(2, 1),
            caughtBy: `writer s3:PutObject ${CACHE_INFO}`,
        },
        {
            name: "writer bucket configuration",
            who: "writer",
            widen: (document) => (document.Statement[0]!.Action as string[]).push("s3:PutBucket*"),
            caughtBy: `writer s3:PutBucketPolicy ${BUCKET}`,
        },
        {
            name: "writer lifecycle rules",
            who: "writer",
            widen: (document) => (document.Statement[0]!.Action as string[]).push("s3:PutLifecycleConfiguration"),
            caughtBy: `writer s3:PutLifecycleConfiguration ${BUCKET}`,
        },
        {
            name: "writer bucket-name prefix wildcard on objects",
            who: "writer",
            widen: (document) => (document.Statement[1]!.Resource = [`arn:aws:s3:::${BUCKET}*/*`]),
            caughtBy: `writer s3:PutObject ${APPENDED}/x.narinfo`,
        },
        {
            name: "writer bucket-name prefix wildcard on the bucket",
            who: "writer",
            widen: (document) => (document.Statement[0]!.Resource = [`arn:aws:s3:::${BUCKET}*`]),
            caughtBy: `writer s3:ListBucket ${APPENDED}`,
        },
        {
            name: "writer on every bucket",
            who: "writer",
            widen: (document) => (document.Statement[1]!.Resource = ["arn:aws:s3:::*"]),
            caughtBy: `writer s3:PutObject ${OTHER}/x.narinfo`,
        },
        {
            name: "writer admin:*",
            who: "writer",
            widen: (document) =>
                document.Statement.push({ Effect: "Allow", Action: ["admin:*"], Resource: ["arn:aws:s3:::*"] }),
            caughtBy: "writer admin:CreateUser *",
        },
        {
            name: "writer * on its own bucket's objects (admin actions ignore Resource in MinIO)",
            who: "writer",
            widen: (document) => (document.Statement[1]!.Action = ["*"]),
            caughtBy: "writer admin:ServerInfo *",
        },
        {
            name: "collector upload",
            who: "collector",
            widen: (document) => (document.Statement[1]!.Action as string[]).push("s3:PutObject"),
            caughtBy: `collector s3:PutObject ${NARINFO}`,
        },
        {
            name: "collector upload of pins only",
            who: "collector",
            widen: (document) =>
                document.Statement.push({ Effect: "Allow", Action: ["s3:PutObject"], Resource: [`arn:aws:s3:::${BUCKET}/pins/*`] }),
            caughtBy: `collector s3:PutObject ${PIN}`,
        },
        {
            name: "collector multipart uploads",
            who: "collector",
            widen: (document) => (document.Statement[1]!.Action as string[]).push("s3:AbortMultipartUpload"),
            caughtBy: `collector s3:AbortMultipartUpload ${NAR}`,
        },
        {
            name: "collector without the Deny that keeps nix-cache-info and the pins",
            who: "collector",
            widen: (document) => document.Statement.splice(2, 1),
            caughtBy: `collector s3:DeleteObject ${CACHE_INFO}`,
        },
        {
            name: "collector Deny that keeps nix-cache-info but not the pins",
            who: "collector",
            widen: (document) => ((document.Statement[2]!.Resource as string[]).length = 1),
            caughtBy: `collector s3:DeleteObject ${PIN}`,
        },
        {
            name: "collector Deny that names one pin instead of pins/*",
            who: "collector",
            widen: (document) => ((document.Statement[2]!.Resource as string[])[1] = `arn:aws:s3:::${PIN}`),
            caughtBy: `collector s3:DeleteObject ${BUCKET}/pins/nested/pin`,
        },
        {
            name: "collector s3:* on objects",
            who: "collector",
            widen: (document) => (document.Statement[1]!.Action = ["s3:*"]),
            caughtBy: `collector s3:DeleteObjectVersion ${NAR}`,
        },
        {
            name: "collector s3:Delete* on the bucket",
            who: "collector",
            widen: (document) => (document.Statement[0]!.Action as string[]).push("s3:Delete*"),
            caughtBy: `collector s3:DeleteBucket ${BUCKET}`,
        },
        {
            name: "collector lifecycle rules",
            who: "collector",
            widen: (document) => (document.Statement[0]!.Action as string[]).push("s3:PutLifecycleConfiguration"),
            caughtBy: `collector s3:PutLifecycleConfiguration ${BUCKET}`,
        },
        {
            name: "collector bucket-name prefix wildcard on objects",
            who: "collector",
            widen: (document) => (document.Statement[1]!.Resource = [`arn:aws:s3:::${BUCKET}*/*`]),
            caughtBy: `collector s3:DeleteObject ${APPENDED}/x.narinfo`,
        },
        {
            name: "collector on every bucket",
            who: "collector",
            widen: (document) => (document.Statement[0]!.Resource = ["arn:aws:s3:::*"]),
            caughtBy: `collector s3:ListBucket ${OTHER}`,
        },
        {
            name: "collector admin:*",
            who: "collector",
            widen: (document) => document.Statement.push({ Effect: "Allow", Action: ["admin:*"], Resource: ["arn:aws:s3:::*"] }),
            caughtBy: "collector admin:CreateUser *",
        },
        {
            name: "collector with the writer's grants (one policy for both)",
            who: "collector",
            widen: (document) => (document.Statement[1]!.Action as string[]).push("s3:PutObject", "s3:ListMultipartUploadParts"),
            caughtBy: `collector s3:PutObject ${NAR}`,
        },
    ];

    for (const { name, who, widen, caughtBy } of widenings) {
        test(`widening '${name}' is caught by '${caughtBy}'`, async () => {
            const entry = TABLE.find((candidate) => label(candidate) === caughtBy);
            assert.ok(entry, `no row '${caughtBy}'`);
            assert.equal(entry.allowed, false);
            const document = documentOf(defaults, who);
            widen(document);
            assert.equal(await decide(withDocument(defaults, who, document), entry), true);
        });
    }
});
