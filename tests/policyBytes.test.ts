// Policy JSON is byte-for-byte stable: MinIO re-serialises what it stores, so any drift in the bytes
// the program registers would show up as a diff on every `pulumi up`.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { registeredPolicies, STACK_CONFIG } from "./accessEvaluation";

const CONFIG = { ...STACK_CONFIG, "nix-cache:bucket": "cache.example" };

describe("registered policy bytes", () => {
    for (const [variant, config] of [
        ["default settings", CONFIG],
        ["anonymous listing", { ...CONFIG, "nix-cache:allowAnonymousList": "true" }],
    ] as const) {
        test(`${variant}: building the stack twice registers the same bytes`, async () => {
            const first = await registeredPolicies(config);
            const second = await registeredPolicies(config);
            assert.equal(second.bucketPolicy, first.bucketPolicy);
            assert.equal(second.writerPolicy, first.writerPolicy);
        });
    }

    test("settings that do not concern access leave the bytes alone", async () => {
        const base = await registeredPolicies(CONFIG);
        const other = await registeredPolicies({
            ...CONFIG,
            "nix-cache:publicUrl": "https://cache.example.org",
            "nix-cache:keyName": "cache.example.org-7",
            "nix-cache:priority": "10",
            "nix-cache:compression": "xz",
            "nix-cache:writerName": "pusher",
        });
        assert.equal(other.bucketPolicy, base.bucketPolicy);
        assert.equal(other.writerPolicy, base.writerPolicy);
    });

    test("the bytes are compact JSON in a fixed key order", async () => {
        const policies = await registeredPolicies({ ...CONFIG, "nix-cache:allowAnonymousList": "true" });
        assert.equal(
            policies.bucketPolicy,
            '{"Version":"2012-10-17","Statement":[' +
                '{"Sid":"AnonymousList","Effect":"Allow","Principal":{"AWS":["*"]},' +
                '"Action":["s3:GetBucketLocation","s3:ListBucket"],"Resource":["arn:aws:s3:::cache.example"]},' +
                '{"Sid":"AnonymousDownload","Effect":"Allow","Principal":{"AWS":["*"]},' +
                '"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::cache.example/*"]}]}',
        );
        assert.equal(
            policies.writerPolicy,
            '{"Version":"2012-10-17","Statement":[' +
                '{"Sid":"WriterBucket","Effect":"Allow",' +
                '"Action":["s3:GetBucketLocation","s3:ListBucket","s3:ListBucketMultipartUploads"],' +
                '"Resource":["arn:aws:s3:::cache.example"]},' +
                '{"Sid":"WriterObjects","Effect":"Allow",' +
                '"Action":["s3:GetObject","s3:PutObject","s3:AbortMultipartUpload","s3:ListMultipartUploadParts"],' +
                '"Resource":["arn:aws:s3:::cache.example/*"]}]}',
        );
    });
});
