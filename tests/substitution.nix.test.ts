// End to end, as a NixOS machine uses the cache: a closure signed with the exported key, pushed
// under the program's nix-cache-info, served at the program's substituter URL (host swapped for a
// loopback stand-in for MinIO's anonymous GET), fetched by a fresh client that requires signatures.
import assert from "node:assert/strict";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import * as ed from "@noble/ed25519";
import { narInfoFingerprint, parseNarInfo } from "../lib/narinfo";
import { parseNixSecretKey } from "../lib/nixKeys";
import {
    absentStorePath,
    bucketDir,
    narInfoKey,
    NEEDS_NIX,
    onLoopback,
    serveCopy,
    trustOnly,
    withFilledBucket,
    type ServedCopy,
} from "./nixSupport";
import { zip215OnlySignature } from "./zip215Vector";

describe("substitution from the cache by a fresh client", NEEDS_NIX, () => {
    const cache = withFilledBucket();

    const narInfoFile = (copyRoot: string, storePath: string) =>
        join(bucketDir(copyRoot, cache.program.substituterUrl), narInfoKey(storePath));

    /** `nix copy --from` the served substituter URL into the client's store, trusting `trustedKey` only. */
    const copyFromCache = ({ client, clientStore, server }: ServedCopy, trustedKey = cache.program.publicKey) =>
        client.run("nix", [
            "copy",
            "--from",
            onLoopback(cache.program.substituterUrl, server),
            "--to",
            clientStore,
            ...trustOnly(trustedKey),
            cache.closure.top,
        ]);

    const validPaths = async ({ client, clientStore }: ServedCopy, path: string) => {
        const result = await client.run("nix", ["path-info", "--store", clientStore, "--recursive", path]);
        return result.status === 0 ? result.stdout.trim().split("\n").sort() : [];
    };

    test("receives the whole closure, signed with the exported key", async (t) => {
        const served = await serveCopy(t, cache.root);
        const result = await copyFromCache(served);
        assert.equal(result.status, 0, result.stderr);
        assert.deepEqual(await validPaths(served, cache.closure.top), [cache.closure.dependency, cache.closure.top].sort());
        const copied = await readFile(join(served.clientStore, cache.closure.top), "utf8");
        assert.equal(copied, `${cache.closure.dependency}\n`);
        // Exactly the requests MinIO's anonymous GetObject answers: the bucket root is never listed.
        assert.ok(served.server.log.every((line) => /^(GET|HEAD) \/nix-cache\/[^/]/.test(line)), served.server.log.join("\n"));
        assert.ok(served.server.log.includes("GET /nix-cache/nix-cache-info 200"));
    });

    test("refuses the closure when another key is trusted", async (t) => {
        const served = await serveCopy(t, cache.root);
        const otherSecret = (await served.client.ok("nix", ["key", "generate-secret", "--key-name", "s3.example.org-1"])).trim();
        const otherPublic = (await served.client.ok("nix", ["key", "convert-secret-to-public"], otherSecret)).trim();
        const result = await copyFromCache(served, otherPublic);
        assert.notEqual(result.status, 0);
        assert.match(result.stderr, /lacks a valid signature/);
        assert.deepEqual(await validPaths(served, cache.closure.top), []);
    });

    const tampering: [string, (narInfo: string) => string][] = [
        ["its reference list emptied", (text) => text.replace(/^References: .*$/m, "References: ")],
        ["its NarSize changed", (text) => text.replace(/^NarSize: (\d+)$/m, (_, size) => `NarSize: ${Number(size) + 1}`)],
    ];
    for (const [what, tamper] of tampering) {
        test(`refuses a narinfo with ${what}`, async (t) => {
            const served = await serveCopy(t, cache.root, async (copyRoot) => {
                const file = narInfoFile(copyRoot, cache.closure.top);
                const original = await readFile(file, "utf8");
                assert.notEqual(tamper(original), original, "the tampering should change the narinfo");
                await writeFile(file, tamper(original));
            });
            const result = await copyFromCache(served);
            assert.notEqual(result.status, 0);
            assert.match(result.stderr, /lacks a valid signature/);
            assert.deepEqual(await validPaths(served, cache.closure.top), []);
        });
    }

    test("refuses a narinfo whose signature only ZIP-215 verification accepts (libsodium is strict)", async (t) => {
        const served = await serveCopy(t, cache.root, async (copyRoot) => {
            const file = narInfoFile(copyRoot, cache.closure.top);
            const original = await readFile(file, "utf8");
            const message = new TextEncoder().encode(narInfoFingerprint(parseNarInfo(original), "/nix/store"));
            const key = parseNixSecretKey(cache.program.secretKey);
            const signature = zip215OnlySignature(message, Buffer.from(key.seed), Buffer.from(key.publicKey));
            assert.equal(ed.verify(signature, message, key.publicKey, { zip215: true }), true, "the vector should pass ZIP-215 verification");
            await writeFile(file, original.replace(/^Sig: .*$/m, `Sig: ${key.name}:${signature.toString("base64")}`));
        });
        const result = await copyFromCache(served);
        assert.notEqual(result.status, 0);
        assert.match(result.stderr, /lacks a valid signature/);
        assert.deepEqual(await validPaths(served, cache.closure.top), []);
    });

    test("fails when a dependency is missing from the cache", async (t) => {
        const served = await serveCopy(t, cache.root, (copyRoot) => rm(narInfoFile(copyRoot, cache.closure.dependency)));
        const result = await copyFromCache(served);
        assert.notEqual(result.status, 0);
        assert.match(result.stderr, new RegExp(`${cache.closure.dependency}.* is not valid`));
        assert.deepEqual(await validPaths(served, cache.closure.top), []);
        assert.ok(served.server.log.includes(`GET /nix-cache/${narInfoKey(cache.closure.dependency)} 403`));
    });

    test("treats a path absent from the cache as an ordinary miss and still serves the others", async (t) => {
        const served = await serveCopy(t, cache.root);
        const absent = absentStorePath();
        // Substitution as nix-daemon does it, for both paths in one run; --keep-going so the miss
        // does not stop the other path.
        const result = await served.client.run("nix-store", [
            "--store",
            served.clientStore,
            "--realise",
            "--keep-going",
            absent,
            cache.closure.top,
            "--option",
            "substituters",
            onLoopback(cache.program.substituterUrl, served.server),
            ...trustOnly(cache.program.publicKey),
        ]);
        assert.notEqual(result.status, 0, "the absent path cannot be realised");
        assert.match(result.stderr, new RegExp(`don't know how to build these paths:\\s+${absent}`));
        // Nix's messages for an HTTP answer it does not take as a miss (NixOS/nix 2.8
        // src/libstore/filetransfer.cc: "unable to %s '%s': HTTP error %d"; http-binary-cache-store.cc
        // `maybeDisable`: "disabling binary cache"). Not the bare digits: stderr holds a random store
        // hash, which may contain "403".
        assert.doesNotMatch(result.stderr, /unable to download|HTTP error|disabling binary cache/);
        assert.deepEqual(await validPaths(served, cache.closure.top), [cache.closure.dependency, cache.closure.top].sort());
        // The miss (MinIO's 403) came first; the cache was used after it.
        const log = served.server.log;
        const miss = log.indexOf(`GET /nix-cache/${narInfoKey(absent)} 403`);
        const firstNar = log.findIndex((line) => /^GET \/nix-cache\/nar\//.test(line));
        assert.ok(miss >= 0 && firstNar > miss, log.join("\n"));
    });
});
