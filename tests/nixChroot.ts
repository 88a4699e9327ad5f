// A current Nix beside Debian 12's 2.8: Debian testing's `nix-bin` (2.34) in a debootstrap chroot,
// built once into a cache dir (`node --import tsx tests/nixChroot.ts`, run by .ci/run) and reused.
// Each command runs in a mount namespace of its own with /proc and /dev/pts mounted into the
// chroot; the kernel unmounts both when the command ends, also if the test process is killed.
// The host's /nix is never bound in: Nix 2.34 may upgrade a store database that Nix 2.8 owns.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import type { TestOptions } from "node:test";
import type { NixResult } from "./nixSupport";
import { needsFile } from "./requiredTools";

export const CHROOT_DIR = process.env.NIX_CHROOT_DIR ?? "/var/cache/nix-cache-tests/testing-chroot";
/** Written last by the build, so a half-built chroot is never taken for a ready one. */
const READY_MARK = join(CHROOT_DIR, ".nix-cache-tests-ready");
const BUILD_HINT =
    "The Nix 2.34 chroot is not built: apt-get install -y --no-install-recommends debootstrap && node --import tsx tests/nixChroot.ts";

/** Options for a `describe` whose tests run Nix 2.34: fail in CI, skip loudly elsewhere. */
export const NEEDS_NIX_CHROOT: TestOptions = needsFile(READY_MARK, BUILD_HINT);

/**
 * The machine's own Debian mirror (its apt sources), so that the chroot comes from where the host's
 * packages come from; deb.debian.org on other systems or without one.
 */
function debianMirror(): string {
    if (!/^ID=debian$/m.test(readFileSync("/etc/os-release", "utf8"))) {
        return "http://deb.debian.org/debian";
    }
    const deb822 = "/etc/apt/sources.list.d";
    const sources = [
        ...(existsSync(deb822) ? readdirSync(deb822).filter((name) => name.endsWith(".sources")).map((name) => join(deb822, name)) : []),
        ...(existsSync("/etc/apt/sources.list") ? ["/etc/apt/sources.list"] : []),
    ].map((file) => readFileSync(file, "utf8"));
    for (const text of sources) {
        const uri = /^URIs:\s*(\S+)/m.exec(text)?.[1] ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)/m.exec(text)?.[1];
        if (uri !== undefined && !uri.includes("security")) {
            return uri;
        }
    }
    return "http://deb.debian.org/debian";
}

function runOrThrow(command: string, args: string[]): void {
    const result = spawnSync(command, args, { stdio: ["ignore", "inherit", "inherit"] });
    if (result.error !== undefined || result.status !== 0) {
        throw new Error(`${command} ${args.join(" ")} failed: ${result.error?.message ?? `exit ${result.status}`}`);
    }
}

/**
 * Builds the chroot unless it is ready: `debootstrap --variant=minbase` of testing plus
 * `nix-bin` without recommends (with them, a systemd setup package fails without /proc). Traps are
 * in ../shared/NOTES.md ("Nix 2.34"). Built beside the cache dir and renamed into place.
 */
export async function buildNixChroot(): Promise<void> {
    if (existsSync(READY_MARK)) {
        return;
    }
    const partial = `${CHROOT_DIR}.partial`;
    await rm(partial, { recursive: true, force: true });
    await mkdir(partial, { recursive: true });
    runOrThrow("debootstrap", ["--variant=minbase", "--include=ca-certificates", "testing", partial, debianMirror()]);
    runOrThrow("chroot", [partial, "apt-get", "install", "-y", "-q", "--no-install-recommends", "nix-bin"]);
    runOrThrow("chroot", [partial, "apt-get", "clean"]);
    await writeFile(join(partial, ".nix-cache-tests-ready"), "");
    await rm(CHROOT_DIR, { recursive: true, force: true });
    await rename(partial, CHROOT_DIR);
}

/** Nix settings every chroot run starts from: no network caches, no nixbld group, no sandbox. */
const CHROOT_NIX_CONF =
    "substituters =\nbuild-users-group =\nsandbox = false\nrequire-sigs = true\nexperimental-features = nix-command\n";

/**
 * A whole Nix environment of its own inside the chroot (HOME, XDG dirs, NIX_CONF_DIR, TMPDIR under
 * the chroot's /tmp), as NixWorkspace is on the host; commands see only these and PATH.
 */
export class ChrootNixWorkspace {
    private constructor(
        /** The workspace's directory as the host sees it. */
        readonly hostDir: string,
    ) {}

    static async create(): Promise<ChrootNixWorkspace> {
        if (!existsSync(READY_MARK)) {
            throw new Error(BUILD_HINT);
        }
        const workspace = new ChrootNixWorkspace(await mkdtemp(join(CHROOT_DIR, "tmp", "nix-cache-test-")));
        for (const sub of ["home", "tmp", "cache", "config", "data", "state", "etc"]) {
            await mkdir(join(workspace.hostDir, sub));
        }
        await writeFile(join(workspace.hostDir, "etc", "nix.conf"), CHROOT_NIX_CONF);
        return workspace;
    }

    /** A path in the workspace as commands in the chroot see it. */
    path(...parts: string[]): string {
        return join("/", relative(CHROOT_DIR, this.hostDir), ...parts);
    }

    /** The same path as the host sees it, for writing files the chroot's commands read. */
    hostPath(...parts: string[]): string {
        return join(this.hostDir, ...parts);
    }

    /** Runs a command in the chroot that must succeed; returns its stdout. */
    async ok(command: string, args: string[], input?: string): Promise<string> {
        const result = await this.run(command, args, input);
        assert.equal(result.status, 0, `${command} ${args.join(" ")} failed in the chroot:\n${result.stderr}`);
        return result.stdout;
    }

    /** Runs a command in the chroot; never throws for a non-zero exit. */
    run(command: string, args: string[], input?: string): Promise<NixResult> {
        const env = [
            "PATH=/usr/bin:/bin:/usr/sbin:/sbin",
            `HOME=${this.path("home")}`,
            `TMPDIR=${this.path("tmp")}`,
            `XDG_CACHE_HOME=${this.path("cache")}`,
            `XDG_CONFIG_HOME=${this.path("config")}`,
            `XDG_CONFIG_DIRS=${this.path("config")}`,
            `XDG_DATA_HOME=${this.path("data")}`,
            `XDG_STATE_HOME=${this.path("state")}`,
            `NIX_CONF_DIR=${this.path("etc")}`,
        ];
        // util-linux unshare(1): a private mount namespace, so the mounts end with the command.
        // Without CAP_SYS_ADMIN (an unprivileged container) neither works: a clear error, not a Nix one.
        const script =
            '{ mount -t proc proc "$0/proc" && mount --bind /dev/pts "$0/dev/pts"; } || exit 97; exec chroot "$0" env -i "$@"';
        return new Promise((done, fail) => {
            const child = spawn(
                "unshare",
                ["--mount", "--propagation", "private", "sh", "-c", script, CHROOT_DIR, ...env, command, ...args],
                { timeout: 60_000 },
            );
            let stdout = "";
            let stderr = "";
            child.stdout.on("data", (chunk) => (stdout += chunk));
            child.stderr.on("data", (chunk) => (stderr += chunk));
            child.on("error", fail);
            child.on("close", (status) =>
                status === 97 || /^unshare: /m.test(stderr)
                    ? fail(new Error(`cannot mount /proc and /dev/pts into ${CHROOT_DIR} (needs CAP_SYS_ADMIN):\n${stderr}`))
                    : done({ status, stdout, stderr }),
            );
            child.stdin.on("error", (error: NodeJS.ErrnoException) => {
                if (error.code !== "EPIPE") {
                    fail(error);
                }
            });
            child.stdin.end(input ?? "");
        });
    }

    async remove(): Promise<void> {
        spawnSync("chmod", ["-R", "u+w", this.hostDir]);
        await rm(this.hostDir, { recursive: true, force: true });
    }
}

if (require.main === module) {
    buildNixChroot().catch((error) => {
        console.error(error);
        process.exit(1);
    });
}
