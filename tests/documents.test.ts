import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { renderCacheInfo } from "../lib/cacheInfo";
import { nixSettings, renderNixConf, substituterUrl, uploadUrl } from "../lib/clientConfig";
import { anonymousReadPolicy, renderPolicy, writerPolicy } from "../lib/policies";
import { ANONYMOUS_DOWNLOAD_POLICY_FOR_NIX_CACHE, WRITER_POLICY_FOR_NIX_CACHE } from "./expectedPolicies";

describe("policy documents", () => {
    test("the writer policy splits bucket-level and object-level actions, with no Principal or Id", () => {
        assert.equal(
            renderPolicy(writerPolicy("nix-cache")),
            WRITER_POLICY_FOR_NIX_CACHE,
        );
    });

    test("anonymous access is object download only by default", () => {
        assert.equal(
            renderPolicy(anonymousReadPolicy("nix-cache", false)),
            ANONYMOUS_DOWNLOAD_POLICY_FOR_NIX_CACHE,
        );
    });

    test("allowAnonymousList adds exactly what `mc anonymous set download` grants on the bucket", () => {
        assert.equal(
            renderPolicy(anonymousReadPolicy("my.cache", true)),
            '{"Version":"2012-10-17","Statement":[' +
                '{"Sid":"AnonymousList","Effect":"Allow","Principal":{"AWS":["*"]},' +
                '"Action":["s3:GetBucketLocation","s3:ListBucket"],"Resource":["arn:aws:s3:::my.cache"]},' +
                '{"Sid":"AnonymousDownload","Effect":"Allow","Principal":{"AWS":["*"]},' +
                '"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::my.cache/*"]}]}',
        );
    });

    test("rendering does not depend on the key order of the input", () => {
        const document = writerPolicy("nix-cache");
        const shuffled = {
            Statement: document.Statement.map(({ Resource, Action, Effect, Sid }) => ({ Resource, Action, Effect, Sid })),
            Version: document.Version,
        };
        assert.equal(renderPolicy(shuffled), renderPolicy(document));
    });
});

describe("nix-cache-info", () => {
    test("renders the three lines Nix reads", () => {
        assert.equal(
            renderCacheInfo({ storeDir: "/nix/store", wantMassQuery: true, priority: 40 }),
            "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n",
        );
        assert.equal(
            renderCacheInfo({ storeDir: "/gnu/store", wantMassQuery: false, priority: 7 }),
            "StoreDir: /gnu/store\nWantMassQuery: 0\nPriority: 7\n",
        );
    });
});

describe("client configuration", () => {
    test("the substituter is the bucket under the public URL (path-style)", () => {
        assert.equal(substituterUrl("https://s3.example.org", "nix-cache"), "https://s3.example.org/nix-cache");
    });

    test("the upload URL keeps the endpoint's scheme and names the writer's profile", () => {
        assert.equal(
            uploadUrl({
                bucket: "nix-cache",
                publicUrl: "https://s3.example.org:9000",
                region: "eu-west-1",
                profile: "nixbuilder",
                compression: "zstd",
            }),
            "s3://nix-cache?endpoint=https://s3.example.org:9000&region=eu-west-1&profile=nixbuilder&compression=zstd",
        );
    });

    test("the upload URL names a compression level only when there is one", () => {
        const target = { bucket: "b", publicUrl: "https://s3.example.org", region: "us-east-1", profile: "w", compression: "xz" } as const;
        assert.equal(uploadUrl({ ...target, compressionLevel: 0 }), "s3://b?endpoint=https://s3.example.org&region=us-east-1&profile=w&compression=xz&compression-level=0");
        assert.equal(uploadUrl({ ...target, compressionLevel: undefined }), "s3://b?endpoint=https://s3.example.org&region=us-east-1&profile=w&compression=xz");
    });

    test("nix.settings and nix.conf carry the substituter and every trusted key", () => {
        const settings = nixSettings("https://s3.example.org/nix-cache", ["a-1:AAAA", "a-2:BBBB"]);
        assert.deepEqual(settings, {
            "extra-substituters": ["https://s3.example.org/nix-cache"],
            "extra-trusted-public-keys": ["a-1:AAAA", "a-2:BBBB"],
        });
        assert.equal(
            renderNixConf(settings),
            "extra-substituters = https://s3.example.org/nix-cache\nextra-trusted-public-keys = a-1:AAAA a-2:BBBB\n",
        );
    });
});
