// Substitution from a real S3 server: the program's bucket policy and writer policy (from the
// mock-engine run) applied to a Ceph RGW bucket, `nix-cache-info` put there by the admin as the
// stack does, a closure signed with the exported key uploaded with the writer's credentials, then
// fetched anonymously at the stack's substituter URL (path-style, host swapped for RGW's) by real
// Nix clients: Debian 12's 2.8 and Debian testing's 2.34 (tests/nixChroot.ts). Narinfos tampered
// with, and keys deleted, by the admin for one test at a time; RGW's own access log shows what Nix
// asked for and what RGW answered.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, test } from "node:test";
import { NIX_CLIENTS, type NixClient } from "./nixClients";
import * as ed from "@noble/ed25519";
import { narInfoFingerprint, parseNarInfo } from "../lib/narinfo";
import { parseNixSecretKey } from "../lib/nixKeys";
import { absentStorePath, narInfoKey, NEEDS_NIX, trustOnly } from "./nixSupport";
import { alterObject, requestLog, withFilledRgwCache } from "./rgwCache";
import { NEEDS_RGW, withRgwCluster } from "./rgwCluster";
import { zip215OnlySignature } from "./zip215Vector";

describe("substitution from a real S3 server (Ceph RGW), anonymous and path-style", [NEEDS_NIX, NEEDS_RGW].find((o) => o.skip) ?? {}, () => {
    const rgw = withRgwCluster();
    const filled = withFilledRgwCache(rgw);

    for (const { version, options, refusal, create } of NIX_CLIENTS) {
        describe(`by Nix ${version}`, options, () => {
            const copyFromCache = (client: NixClient, trustedKey: string) =>
                client.run("nix", ["copy", "--from", filled.cache.substituter, "--to", client.store, ...trustOnly(trustedKey), filled.closure.top]);
            const validPaths = async (client: NixClient) => {
                const result = await client.run("nix", ["path-info", "--store", client.store, "--recursive", filled.closure.top]);
                return result.status === 0 ? result.stdout.trim().split("\n").sort() : [];
            };

            test(`is this Nix version`, async (t) => {
                const client = await create(t);
                const result = await client.run("nix", ["--version"]);
                assert.match(result.stdout, new RegExp(`^nix \\(Nix\\) ${version.replace(".", "\\.")}\\.`), result.stderr);
            });

            test("receives the whole closure, signed with the exported key", async (t) => {
                const client = await create(t);
                const requests = await requestLog(rgw);
                const result = await copyFromCache(client, filled.cache.program.publicKey);
                assert.equal(result.status, 0, result.stderr);
                assert.deepEqual(await validPaths(client), [filled.closure.dependency, filled.closure.top].sort());
                assert.equal(await readFile(client.hostPath("store", filled.closure.top), "utf8"), `${filled.closure.dependency}\n`);
                // Only anonymous GetObject is needed: the bucket itself is never listed.
                const log = await requests();
                assert.ok(log.includes(`GET /${filled.cache.bucket}/nix-cache-info 200`), log.join("\n"));
                const objectRequest = new RegExp(`^(GET|HEAD) /${filled.cache.bucket}/[^?\\s]+ \\d+$`);
                assert.ok(log.every((line) => objectRequest.test(line)), log.join("\n"));
            });

            test("refuses the closure when another key is trusted", async (t) => {
                const client = await create(t);
                const otherSecret = (await client.run("nix", ["key", "generate-secret", "--key-name", "s3.example.org-1"])).stdout;
                const otherPublic = (await client.run("nix", ["key", "convert-secret-to-public"], otherSecret)).stdout.trim();
                assert.match(otherPublic, /^s3\.example\.org-1:/);
                const result = await copyFromCache(client, otherPublic);
                assert.notEqual(result.status, 0);
                assert.match(result.stderr, refusal);
                assert.deepEqual(await validPaths(client), []);
            });

            const tampering: [string, (narInfo: string) => string][] = [
                ["its reference list emptied", (text) => text.replace(/^References: .*$/m, "References: ")],
                ["its NarSize changed", (text) => text.replace(/^NarSize: (\d+)$/m, (_, size) => `NarSize: ${Number(size) + 1}`)],
                // libsodium, which both versions verify with, is strict (tests/zip215Vector.ts).
                ["a signature only ZIP-215 verification accepts", (text) => {
                    const message = new TextEncoder().encode(narInfoFingerprint(parseNarInfo(text), "/nix/store"));
                    const key = parseNixSecretKey(filled.cache.program.secretKey);
                    const signature = zip215OnlySignature(message, Buffer.from(key.seed), Buffer.from(key.publicKey));
                    assert.equal(ed.verify(signature, message, key.publicKey, { zip215: true }), true, "the vector should pass ZIP-215 verification");
                    return text.replace(/^Sig: .*$/m, `Sig: ${key.name}:${signature.toString("base64")}`);
                }],
            ];
            for (const [what, tamper] of tampering) {
                test(`refuses a narinfo tampered with on the server: ${what}`, async (t) => {
                    await alterObject(rgw, t, filled.cache.bucket, narInfoKey(filled.closure.top), tamper);
                    const client = await create(t);
                    const result = await copyFromCache(client, filled.cache.program.publicKey);
                    assert.notEqual(result.status, 0);
                    assert.match(result.stderr, refusal);
                    assert.deepEqual(await validPaths(client), []);
                });
            }

            test("fails when a dependency is missing from the cache (RGW answers 403 without ListBucket)", async (t) => {
                await alterObject(rgw, t, filled.cache.bucket, narInfoKey(filled.closure.dependency), () => undefined);
                const client = await create(t);
                const requests = await requestLog(rgw);
                const result = await copyFromCache(client, filled.cache.program.publicKey);
                assert.notEqual(result.status, 0);
                assert.match(result.stderr, new RegExp(`${filled.closure.dependency}.* is not valid`));
                assert.deepEqual(await validPaths(client), []);
                assert.ok((await requests()).includes(`GET /${filled.cache.bucket}/${narInfoKey(filled.closure.dependency)} 403`));
            });

            test("treats a path absent from the cache as an ordinary miss and still serves the others", async (t) => {
                const client = await create(t);
                const absent = absentStorePath();
                const requests = await requestLog(rgw);
                // Substitution as nix-daemon does it, for both paths in one run; --keep-going so the
                // miss does not stop the other path.
                const result = await client.run("nix-store", [
                    "--store",
                    client.store,
                    "--realise",
                    "--keep-going",
                    absent,
                    filled.closure.top,
                    "--option",
                    "substituters",
                    filled.cache.substituter,
                    ...trustOnly(filled.cache.program.publicKey),
                ]);
                assert.notEqual(result.status, 0, "the absent path cannot be realised");
                assert.match(result.stderr, new RegExp(`don't know how to build these paths:\\s+${absent}`));
                // Nix's messages for an HTTP answer it does not take as a miss (NixOS/nix
                // src/libstore/filetransfer.cc: "unable to %s '%s': HTTP error %d";
                // http-binary-cache-store.cc `maybeDisable`: "disabling binary cache"). Not the bare
                // digits: stderr holds a random store hash, which may contain "403".
                assert.doesNotMatch(result.stderr, /unable to download|HTTP error|disabling binary cache/);
                assert.deepEqual(await validPaths(client), [filled.closure.dependency, filled.closure.top].sort());
                // RGW's 403 for the missing key came first; the cache was used after it.
                const log = await requests();
                const miss = log.indexOf(`GET /${filled.cache.bucket}/${narInfoKey(absent)} 403`);
                const firstNar = log.findIndex((line) => line.startsWith(`GET /${filled.cache.bucket}/nar/`));
                assert.ok(miss >= 0 && firstNar > miss, log.join("\n"));
            });
        });
    }
});
