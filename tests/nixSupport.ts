// Shared plumbing for tests that run Debian's Nix client (`apt-get install -y nix-bin`) against what
// the program produces: per-test Nix environments, a test closure, the program's outputs under the
// mock engine, and a bucket's files as a builder pushes them (`file://`). Tests that serve them
// over HTTP upload them to a real S3 server (tests/rgwCache.ts).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, before } from "node:test";
import { CACHE_INFO_KEY } from "../lib/cacheInfo";
import type { NixSettings } from "../lib/clientConfig";
import { buildStack } from "../stack";
import { installMocks, resetRegistrations, settle, valueOf } from "./harness";
import { needsTool } from "./requiredTools";

const NIX_INSTALL_HINT = "Debian's Nix client is not installed: apt-get install -y nix-bin";

/** Options for a `describe` whose tests need `nix`; every Nix call fails with the install hint. */
export const NEEDS_NIX = needsTool("nix", NIX_INSTALL_HINT);

export interface NixResult {
    status: number | null;
    stdout: string;
    stderr: string;
}

/** Nix's defaults for these tests: no network caches unless a test names one, no sandbox (Debian's). */
const BASE_NIX_CONF = "substituters =\nsandbox = false\nrequire-sigs = true\n";

/**
 * A temporary directory that is a whole Nix environment of its own: HOME, XDG dirs (Nix keeps its
 * binary cache metadata under XDG_CACHE_HOME), NIX_CONF_DIR, TMPDIR. Nix runs with only these and
 * PATH, so parallel test files and the machine's own configuration cannot leak in.
 */
export class NixWorkspace {
    private constructor(readonly dir: string) {}

    /** `nixConf` replaces the tests' default `nix.conf`. */
    static async create(nixConf = BASE_NIX_CONF): Promise<NixWorkspace> {
        const workspace = new NixWorkspace(await mkdtemp(join(tmpdir(), "nix-cache-test-")));
        for (const sub of ["home", "tmp", "cache", "config", "data", "state", "etc"]) {
            await mkdir(workspace.path(sub));
        }
        await writeFile(workspace.path("etc", "nix.conf"), nixConf);
        return workspace;
    }

    path(...parts: string[]): string {
        return join(this.dir, ...parts);
    }

    private env(): NodeJS.ProcessEnv {
        return {
            PATH: process.env.PATH,
            HOME: this.path("home"),
            TMPDIR: this.path("tmp"),
            XDG_CACHE_HOME: this.path("cache"),
            XDG_CONFIG_HOME: this.path("config"),
            XDG_CONFIG_DIRS: this.path("config"),
            XDG_DATA_HOME: this.path("data"),
            XDG_STATE_HOME: this.path("state"),
            NIX_CONF_DIR: this.path("etc"),
            NIX_CONFIG: "experimental-features = nix-command",
        };
    }

    /** Runs a Nix command; never throws for a non-zero exit (see `ok`). */
    run(command: string, args: string[], input?: string): Promise<NixResult> {
        return new Promise((done, fail) => {
            const child = spawn(command, args, { env: this.env(), cwd: this.dir, timeout: 60_000 });
            let stdout = "";
            let stderr = "";
            child.stdout.on("data", (chunk) => (stdout += chunk));
            child.stderr.on("data", (chunk) => (stderr += chunk));
            child.on("error", (error: NodeJS.ErrnoException) =>
                fail(error.code === "ENOENT" ? new Error(`${command}: ${NIX_INSTALL_HINT}`) : error),
            );
            child.on("close", (status) => done({ status, stdout, stderr }));
            // A command that exits without reading its input closes the pipe first: not a failure.
            child.stdin.on("error", (error: NodeJS.ErrnoException) => {
                if (error.code !== "EPIPE") {
                    fail(error);
                }
            });
            child.stdin.end(input ?? "");
        });
    }

    /** Runs a Nix command that must succeed; returns its stdout. */
    async ok(command: string, args: string[], input?: string): Promise<string> {
        const result = await this.run(command, args, input);
        assert.equal(result.status, 0, `${command} ${args.join(" ")} failed:\n${result.stderr}`);
        return result.stdout;
    }

    /** Writes a file readable by its owner only (secret keys); it goes when the workspace does. */
    async writePrivateFile(name: string, content: string): Promise<string> {
        const file = this.path(name);
        await writeFile(file, content, { mode: 0o600 });
        return file;
    }

    async remove(): Promise<void> {
        // Store paths in chroot stores are read-only; make them deletable for a non-root user too.
        spawnSync("chmod", ["-R", "u+w", this.dir]);
        await rm(this.dir, { recursive: true, force: true });
    }
}

export interface TestClosure {
    /** An input-addressed store path whose content refers to `dependency`. */
    top: string;
    dependency: string;
    /** A Nix file that evaluates to the derivation of `top`. */
    expressionFile: string;
    /** Deletes both paths and their derivations from the machine's /nix/store. */
    remove(): Promise<void>;
}

/**
 * Builds two input-addressed paths in the machine's /nix/store, one referring to the other.
 * Content-addressed paths would prove nothing: Nix accepts them without a signature. A random nonce
 * makes both paths new on every run, so signatures and copies always start from nothing.
 */
export async function buildTestClosure(workspace: NixWorkspace): Promise<TestClosure> {
    const expressionFile = workspace.path(`test-closure-${randomUUID()}.nix`);
    await writeFile(
        expressionFile,
        `let
          dependency = derivation {
            name = "nix-cache-test-dependency"; system = builtins.currentSystem;
            builder = "/bin/sh"; args = [ "-c" "echo ${randomUUID()} > $out" ];
          };
        in derivation {
          name = "nix-cache-test-top"; system = builtins.currentSystem;
          builder = "/bin/sh"; args = [ "-c" "echo \${dependency} > $out" ];
        }
`,
    );
    const topDrv = (await workspace.ok("nix-instantiate", [expressionFile])).trim();
    const derivations = (await workspace.ok("nix-store", ["--query", "--requisites", topDrv])).trim().split("\n");
    const top = (await workspace.ok("nix-store", ["--realise", topDrv])).trim();
    const references = (await workspace.ok("nix-store", ["--query", "--references", top])).trim().split("\n");
    assert.equal(references.length, 1, `${top} should refer to exactly one path, got ${references.join(", ")}`);
    const dependency = references[0]!;
    return {
        top,
        dependency,
        expressionFile,
        remove: async () => {
            await workspace.ok("nix-store", ["--delete", top, dependency, ...derivations]);
        },
    };
}

/** Signs a closure with a Nix secret key and pushes it to `file://cacheDir`, as a builder pushes to the bucket. */
export async function signAndPush(
    workspace: NixWorkspace,
    closure: TestClosure,
    secretKey: string,
    cacheDir: string,
    compression: string,
): Promise<void> {
    const keyFile = await workspace.writePrivateFile(`signing-key-${randomUUID()}`, secretKey);
    await workspace.ok("nix", ["store", "sign", "--key-file", keyFile, "--recursive", closure.top]);
    await workspace.ok("nix", ["copy", "--to", `file://${cacheDir}?compression=${compression}`, closure.top]);
}

/**
 * Fills `<root>/<bucket>` as the deployed bucket would be: the program's `nix-cache-info` first
 * (the program creates it), then the closure signed with the exported key and pushed with the
 * upload URL's compression. Returns the bucket's directory.
 */
export async function fillBucket(
    workspace: NixWorkspace,
    closure: TestClosure,
    program: ProgramOutputs,
    root: string,
): Promise<string> {
    const bucket = bucketDir(root, program.substituterUrl);
    await mkdir(bucket, { recursive: true });
    await writeFile(join(bucket, CACHE_INFO_KEY), program.cacheInfo);
    await signAndPush(workspace, closure, program.secretKey, bucket, program.uploadCompression);
    return bucket;
}

export interface FilledBucket {
    program: ProgramOutputs;
    /** The workspace the closure was built, signed and pushed from. */
    builder: NixWorkspace;
    closure: TestClosure;
    /** The directory the bucket was filled under; the bucket is `bucketDir(root, program.substituterUrl)`. */
    root: string;
}

/**
 * For a `describe` block: before its tests, runs the program with `EXAMPLE_CONFIG`, builds a test
 * closure and fills a bucket with it (`fillBucket`); after them, deletes the closure and the bucket.
 * The fields are set once the `before` hook has run.
 */
export function withFilledBucket(): FilledBucket {
    const fixture = {} as FilledBucket;
    before(async () => {
        fixture.program = await programOutputs();
        fixture.builder = await NixWorkspace.create();
        fixture.closure = await buildTestClosure(fixture.builder);
        fixture.root = fixture.builder.path("buckets");
        await fillBucket(fixture.builder, fixture.closure, fixture.program, fixture.root);
    });
    after(async () => {
        await fixture.closure?.remove();
        await fixture.builder?.remove();
    });
    return fixture;
}

/** Client options: require signatures, and trust this one key only (not cache.nixos.org's). */
export function trustOnly(publicKey: string): string[] {
    return ["--option", "trusted-public-keys", publicKey, "--option", "require-sigs", "true"];
}

/** The object key of a store path's narinfo in a binary cache: `<hash part>.narinfo`. */
export function narInfoKey(storePath: string): string {
    return `${basename(storePath).slice(0, 32)}.narinfo`;
}

/** A store path name that no cache has: a random hash part in Nix's base32 alphabet. */
export function absentStorePath(storeDir = "/nix/store"): string {
    const alphabet = "0123456789abcdfghijklmnpqrsvwxyz";
    const hash = Array.from({ length: 32 }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join("");
    return `${storeDir}/${hash}-nix-cache-test-absent`;
}

/** Where a bucket filled under `root` keeps the objects behind a substituter URL (`<root>/<bucket>`). */
export function bucketDir(root: string, substituterUrl: string): string {
    return join(root, new URL(substituterUrl).pathname);
}

/** The provider config the Nix tests deploy against (never contacted: the mock engine answers). */
export const EXAMPLE_CONFIG = { "minio:minioServer": "s3.example.org:9000", "minio:minioSsl": "true" };

export interface ProgramOutputs {
    secretKey: string;
    publicKey: string;
    nixConf: string;
    nixSettings: NixSettings;
    substituterUrl: string;
    /** The program's `uploadUrl` output, as builders' `nix copy --to` takes it. */
    uploadUrl: string;
    /** The `compression` the program's upload URL tells writers to use. */
    uploadCompression: string;
    /** The `nix-cache-info` content the program registers as an S3 object. */
    cacheInfo: string;
}

/** Runs the program under the mock engine with `EXAMPLE_CONFIG` plus `config`, and reads its outputs. */
export async function programOutputs(config: Record<string, string> = {}): Promise<ProgramOutputs> {
    await installMocks();
    resetRegistrations();
    const outputs = buildStack({ ...EXAMPLE_CONFIG, ...config });
    const registered = await settle(outputs);
    const cacheInfoObjects = registered.filter(
        (resource) => resource.type === "minio:index/s3Object:S3Object" && resource.inputs.objectName === CACHE_INFO_KEY,
    );
    assert.equal(cacheInfoObjects.length, 1, "the program should register exactly one nix-cache-info object");
    const uploadUrl = await valueOf(outputs.uploadUrl);
    const uploadCompression = new URL(uploadUrl).searchParams.get("compression");
    assert.ok(uploadCompression, "the upload URL should name a compression");
    return {
        secretKey: await valueOf(outputs.secretKey),
        publicKey: await valueOf(outputs.publicKey),
        nixConf: await valueOf(outputs.nixConf),
        nixSettings: await valueOf(outputs.nixSettings),
        substituterUrl: await valueOf(outputs.substituterUrl),
        uploadUrl,
        uploadCompression,
        cacheInfo: cacheInfoObjects[0]!.inputs.content,
    };
}
