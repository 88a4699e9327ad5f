// index.ts itself, loaded as Pulumi loads it: config from the stack, outputs as module exports.
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { installMocks, setConfig, settle, valueOf } from "./harness";

before(installMocks);

test("index.ts reads the stack config and exports exactly the documented outputs", async () => {
    setConfig({ "minio:minioServer": "minio.internal:9000", "nix-cache:publicUrl": "https://cache.example.org", "nix-cache:bucket": "builds" });
    // index.ts assigns module.exports, which is what Pulumi's runtime reads as the stack's outputs.
    const outputs = require("../index") as Record<string, any>;
    assert.deepEqual(Object.keys(outputs).sort(), [
        "awsCredentials",
        "bucketName",
        "builderDrainEnv",
        "builderNixConf",
        "collectorAccessKey",
        "collectorEnv",
        "collectorSecretKey",
        "nixConf",
        "nixSettings",
        "nixosClient",
        "publicKey",
        "secretKey",
        "substituterUrl",
        "uploadUrl",
        "writerAccessKey",
        "writerSecretKey",
    ]);
    await settle(outputs);
    assert.equal(await valueOf(outputs.substituterUrl), "https://cache.example.org/builds");
    assert.match(await valueOf(outputs.publicKey), /^cache\.example\.org-1:[A-Za-z0-9+/]{43}=$/);
    assert.equal(
        await valueOf(outputs.uploadUrl),
        "s3://builds?endpoint=https://cache.example.org&region=us-east-1&profile=nixbuilder&compression=zstd&compression-level=9",
    );
});
