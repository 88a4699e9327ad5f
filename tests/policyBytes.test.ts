// Policy JSON is byte-for-byte stable: MinIO re-serialises what it stores, so any drift in the bytes
// the program registers would show up as a diff on every `pulumi up`.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { anonymousReadPolicy, renderPolicy, writerPolicy } from "../lib/policies";
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

    // The bytes themselves are written out once, in tests/documents.test.ts; here they only have to
    // reach the resources unchanged.
    test("the registered bytes are lib's rendering of the documents for the configured bucket", async () => {
        for (const allowAnonymousList of [false, true]) {
            const policies = await registeredPolicies({ ...CONFIG, "nix-cache:allowAnonymousList": String(allowAnonymousList) });
            assert.equal(policies.bucketPolicy, renderPolicy(anonymousReadPolicy("cache.example", allowAnonymousList)));
            assert.equal(policies.writerPolicy, renderPolicy(writerPolicy("cache.example")));
        }
    });
});
