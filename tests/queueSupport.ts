// Shared by the tests of the builder's upload queue (scripts/enqueue, scripts/drain) and of the
// NixOS module that runs it: running the scripts, reading the queue, building and checking paths.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { basename, dirname, join, resolve } from "node:path";
import { narInfoIsSignedBy, parseNarInfo } from "../lib/narinfo";
import type { NixResult, NixWorkspace } from "./nixSupport";

export const SCRIPTS = join(__dirname, "..", "scripts");
export const ENQUEUE = join(SCRIPTS, "enqueue");
export const DRAIN = join(SCRIPTS, "drain");

export type Environment = Record<string, string>;

/** Runs a command with extra environment variables on top of the workspace's own. */
export function runWith(workspace: NixWorkspace, env: Environment, command: string, args: string[] = []): Promise<NixResult> {
    return workspace.run("env", [...Object.entries(env).map(([name, value]) => `${name}=${value}`), command, ...args]);
}

export interface Queue {
    pending: string[];
    inflight: string[];
    failed: string[];
    tmp: string[];
}

async function entries(dir: string): Promise<string[]> {
    return existsSync(dir) ? (await readdir(dir)).sort() : [];
}

export async function queueState(queueDir: string): Promise<Queue> {
    return {
        pending: await entries(join(queueDir, "pending")),
        inflight: await entries(join(queueDir, "inflight")),
        failed: await entries(join(queueDir, "failed")),
        tmp: await entries(join(queueDir, "tmp")),
    };
}

/** Base names of store paths, sorted: how the queue names its entries. */
export const names = (paths: string[]) => paths.map((path) => basename(path)).sort();

/** A queue holding `pending` and nothing else. */
export const onlyPending = (paths: string[]): Queue => ({ pending: names(paths), inflight: [], failed: [], tmp: [] });

/**
 * Builds `count` input-addressed paths (Nix accepts content-addressed ones without a signature, so
 * they would prove nothing) with a nonce, so every run starts from paths no cache has seen.
 */
export async function buildPaths(workspace: NixWorkspace, count: number, outputs = ["out"]): Promise<{ paths: string[]; drvs: string[] }> {
    const file = workspace.path(`paths-${randomUUID()}.nix`);
    const commands = outputs.map((output) => `echo ${randomUUID()} $i > $${output}`).join("; ");
    await writeFile(
        file,
        `map (i: derivation {
          name = "nix-cache-queue-test-\${toString i}"; system = builtins.currentSystem;
          outputs = ${JSON.stringify(outputs).replace(/,/g, " ")};
          builder = "/bin/sh"; args = [ "-c" "i=\${toString i}; ${commands}" ];
        }) (builtins.genList (i: i) ${count})
`,
    );
    const drvs = (await workspace.ok("nix-instantiate", [file])).trim().split("\n");
    const paths = (await workspace.ok("nix-store", ["--realise", ...drvs])).trim().split("\n");
    assert.equal(paths.length, count * outputs.length);
    return { paths, drvs };
}

export async function deletePaths(workspace: NixWorkspace, built: { paths: string[]; drvs: string[] }): Promise<void> {
    await workspace.ok("nix-store", ["--delete", ...built.paths, ...built.drvs]);
}

export interface Signer {
    keyFile: string;
    publicKey: string;
}

export async function makeSigner(workspace: NixWorkspace, name: string): Promise<Signer> {
    const secretKey = await workspace.ok("nix", ["key", "generate-secret", "--key-name", name]);
    const keyFile = await workspace.writePrivateFile(`${name}.secret`, secretKey);
    const publicKey = (await workspace.ok("nix", ["key", "convert-secret-to-public"], secretKey)).trim();
    return { keyFile, publicKey };
}

/** Checks that the cache holds exactly `paths`, one narinfo each with one valid signature by `signer`. */
export async function assertCacheHoldsExactly(workspace: NixWorkspace, cacheDir: string, paths: string[], signer: Signer) {
    const storeDir = dirname(paths[0]!);
    const narInfos = (await readdir(cacheDir)).filter((file) => file.endsWith(".narinfo")).sort();
    assert.deepEqual(narInfos, paths.map((path) => `${basename(path).slice(0, 32)}.narinfo`).sort());
    const otherKey = (await makeSigner(workspace, "someone-else-1")).publicKey;
    for (const file of narInfos) {
        const info = parseNarInfo(await readFile(join(cacheDir, file), "utf8"));
        assert.ok(paths.includes(info.storePath), `${file} describes ${info.storePath}`);
        assert.equal(info.signatures.length, 1, `${file}: ${info.signatures.join(", ")}`);
        assert.ok(narInfoIsSignedBy(info, storeDir, [signer.publicKey]), `${file} is signed with the configured key`);
        assert.ok(!narInfoIsSignedBy(info, storeDir, [otherKey]), `${file} does not verify under another key`);
    }
    // And Nix itself, trusting only the configured key, accepts every path from the cache.
    await workspace.ok("nix", ["store", "verify", "--store", `file://${cacheDir}`, "--trusted-public-keys", signer.publicKey, ...paths]);
}

export interface WritableCache {
    /** `http://127.0.0.1:PORT`: a binary cache URL for `nix copy --to` and `--from`. */
    url: string;
    close(): Promise<void>;
}

/**
 * A binary cache over loopback HTTP that takes uploads: PUT writes `<root>/<path>`, GET and HEAD
 * read it, 404 when it is missing. Nix's HTTP binary cache store uploads with PUT (upsertFile) and,
 * unlike its file:// store, sets `diskCache` in its constructor, so it remembers narinfos for
 * `narinfo-cache-positive-ttl` as its S3 store does (NixOS/nix src/libstore/http-binary-cache-store.cc).
 */
export async function serveWritableCache(root: string): Promise<WritableCache> {
    const server = createServer(async (request, response) => {
        const file = resolve(root, `.${decodeURIComponent(new URL(request.url ?? "/", "http://loopback").pathname)}`);
        if (!file.startsWith(`${root}/`)) {
            response.writeHead(400).end();
        } else if (request.method === "PUT") {
            const chunks: Buffer[] = [];
            for await (const chunk of request) {
                chunks.push(chunk as Buffer);
            }
            await mkdir(dirname(file), { recursive: true });
            await writeFile(file, Buffer.concat(chunks));
            response.writeHead(200).end();
        } else {
            const content = await readFile(file).catch(() => undefined);
            response.writeHead(content === undefined ? 404 : 200).end(request.method === "HEAD" ? undefined : content);
        }
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        close: async () => {
            server.closeAllConnections();
            server.close();
            await once(server, "close");
        },
    };
}
