// The builder's upload queue (scripts/enqueue, scripts/drain) run for real: Debian's Nix builds
// input-addressed paths, Nix runs the hook, and `nix copy` uploads to a file:// cache, the same
// code path as an s3:// one up to the transport. Expected values are written out here or read from
// what Nix itself produced, never from the scripts.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { chmod, mkdir, readdir, readFile, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { builderNixSettings } from "../lib/builderConfig";
import { renderNixConf } from "../lib/clientConfig";
import { absentStorePath, NEEDS_NIX, NixWorkspace, type NixResult } from "./nixSupport";
import {
    assertCacheHoldsExactly,
    buildPaths,
    deletePaths,
    DRAIN,
    ENQUEUE,
    makeSigner,
    names,
    onlyPending,
    queueState,
    runWith,
    serveWritableCache,
    type Environment,
    type Signer,
} from "./queueSupport";
import { needsTool } from "./requiredTools";

/**
 * A stand-in for `nix` (NIX_CACHE_NIX) that records each `nix copy` call's arguments and runs the
 * real nix (other commands, such as the drainer's check that Nix can open the upload URL, just run).
 * On call number $HOLD_CALL it stops, before or after the real upload ($HOLD_WHEN), and reports the
 * drainer's process id (with setsid, also its process group's), so that the test can SIGKILL the
 * drainer at exactly that moment. A call naming $REJECT_PATH fails, as a destination that refuses
 * that one path would; so do the calls numbered in $FAIL_CALLS, as at a destination that is down.
 */
async function writeNixWrapper(workspace: NixWorkspace): Promise<string> {
    const wrapper = workspace.path("nix-wrapper");
    await writeFile(
        wrapper,
        `#!/bin/sh
[ "$3" = copy ] || exec nix "$@"
calls="$WRAPPER_DIR/calls"
call=$(( $(cat "$calls" 2>/dev/null || echo 0) + 1 ))
echo "$call" > "$calls"
echo "$*" > "$WRAPPER_DIR/call-$call"
hold() { echo "$PPID" > "$WRAPPER_DIR/held.tmp"; mv "$WRAPPER_DIR/held.tmp" "$WRAPPER_DIR/held"; exec sleep 600; }
if [ "$call" = "\${HOLD_CALL:-}" ] && [ "$HOLD_WHEN" = before ]; then hold; fi
case " \${FAIL_CALLS:-} " in *" $call "*) echo "nix-wrapper: the destination is down" >&2; exit 1;; esac
for arg in "$@"; do
  if [ -n "\${REJECT_PATH:-}" ] && [ "$arg" = "\${REJECT_PATH}" ]; then echo "nix-wrapper: the destination refuses $arg" >&2; exit 1; fi
done
nix "$@" || exit
if [ "$call" = "\${HOLD_CALL:-}" ]; then hold; fi
`,
    );
    await chmod(wrapper, 0o755);
    return wrapper;
}

/** The store paths given to each recorded `nix copy` call, by call number. */
async function copiedPaths(wrapperDir: string, storeDir: string): Promise<Map<number, string[]>> {
    const calls = new Map<number, string[]>();
    for (const file of await readdir(wrapperDir)) {
        const match = /^call-([0-9]+)$/.exec(file);
        if (match) {
            const args = (await readFile(join(wrapperDir, file), "utf8")).trim().split(" ");
            assert.equal(args[2], "copy");
            calls.set(Number(match[1]), args.filter((arg) => arg.startsWith(`${storeDir}/`)));
        }
    }
    return calls;
}

const STRACE_HINT = "strace is not installed: apt-get install -y strace";

async function waitForFile(file: string, timeoutMs = 60_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!existsSync(file)) {
        assert.ok(Date.now() < deadline, `timed out waiting for ${file}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return readFile(file, "utf8");
}

/** Waits until no process has the id `pid` (a killed child of this process is gone once reaped). */
async function waitUntilGone(pid: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        try {
            process.kill(pid, 0);
        } catch {
            return;
        }
        assert.ok(Date.now() < deadline, `process ${pid} is still there`);
        await new Promise((resolve) => setTimeout(resolve, 50));
    }
}

describe("enqueue (the post-build-hook)", NEEDS_NIX, () => {
    let workspace: NixWorkspace;
    before(async () => (workspace = await NixWorkspace.create()));
    after(() => workspace.remove());

    test("concurrent writers leave one complete entry per path, and nothing half-written", async () => {
        const queueDir = workspace.path("concurrent-queue");
        const paths = Array.from({ length: 24 }, () => absentStorePath());
        // Eight hooks at once, each queueing an overlapping third of the paths (every path 2 or 3 times).
        const writers = Array.from({ length: 8 }, (_, writer) =>
            runWith(workspace, { NIX_CACHE_QUEUE_DIR: queueDir, OUT_PATHS: paths.filter((_, i) => i % 3 !== writer % 3).join(" ") }, ENQUEUE),
        );
        for (const result of await Promise.all(writers)) {
            assert.deepEqual([result.status, result.stderr], [0, ""]);
        }
        const queue = await queueState(queueDir);
        assert.deepEqual(queue, onlyPending(paths));
        for (const path of paths) {
            assert.equal(await readFile(join(queueDir, "pending", basename(path)), "utf8"), `${path}\n`);
        }
    });

    test("each entry reaches the disk before it is renamed into pending/, and the renames before the hook exits", needsTool("strace", STRACE_HINT), async () => {
        const queueDir = workspace.path("durable-queue");
        await mkdir(join(queueDir, "pending"), { recursive: true });
        await mkdir(join(queueDir, "tmp"));
        const paths = [absentStorePath(), absentStorePath()];
        const traceFile = workspace.path("enqueue.trace");
        // -y names the file behind each descriptor, so every fsync shows what it flushed.
        const traced = await runWith(workspace, { NIX_CACHE_QUEUE_DIR: queueDir }, "strace", [
            "-f", "-qq", "-y", "-e", "trace=fsync,fdatasync,rename,renameat,renameat2", "-e", "signal=none", "-o", traceFile, ENQUEUE, ...paths,
        ]);
        assert.deepEqual([traced.status, traced.stderr], [0, ""], traced.status === 127 ? STRACE_HINT : traced.stderr);
        assert.deepEqual((await queueState(queueDir)).pending, names(paths));
        type Event = { flushed?: string; from?: string; to?: string };
        const events = (await readFile(traceFile, "utf8")).split("\n").flatMap((line): Event[] => {
            const flushed = /\bf(?:data)?sync\(\d+<([^>]+)>\) = 0$/.exec(line);
            const renamed = /\brename(?:at2?)?\((?:AT_FDCWD(?:<[^>]*>)?, )?"([^"]+)", (?:AT_FDCWD(?:<[^>]*>)?, )?"([^"]+)".*\) = 0$/.exec(line);
            return flushed ? [{ flushed: flushed[1]! }] : renamed ? [{ from: renamed[1]!, to: renamed[2]! }] : [];
        });
        const flushedAt = (file: string) => events.findIndex((event) => event.flushed === file);
        let lastRename = -1;
        for (const path of paths) {
            const at = events.findIndex((event) => event.to === join(queueDir, "pending", basename(path)));
            assert.notEqual(at, -1, `${path} was renamed into pending/:\n${JSON.stringify(events)}`);
            const staged = events[at]!.from!;
            assert.ok(staged.startsWith(join(queueDir, "tmp") + "/"), staged);
            assert.ok(flushedAt(staged) !== -1 && flushedAt(staged) < at, `${staged} was flushed before its rename:\n${JSON.stringify(events)}`);
            lastRename = Math.max(lastRename, at);
        }
        assert.ok(
            events.slice(lastRename + 1).some((event) => event.flushed === join(queueDir, "pending")),
            `pending/ was flushed after the last rename:\n${JSON.stringify(events)}`,
        );
    });

    test("an unwritable queue is reported on stderr and still exits 0", async () => {
        const blocker = workspace.path("a-file");
        await writeFile(blocker, "not a directory\n");
        const path = absentStorePath();
        const result = await runWith(workspace, { NIX_CACHE_QUEUE_DIR: join(blocker, "queue"), OUT_PATHS: path }, ENQUEUE);
        assert.equal(result.status, 0);
        assert.match(result.stderr, new RegExp(`NOT queued.*${path}`));
    });

    test("something that is not a store path is refused without failing", async () => {
        const queueDir = workspace.path("refusing-queue");
        const good = absentStorePath();
        const result = await runWith(workspace, { NIX_CACHE_QUEUE_DIR: queueDir }, ENQUEUE, ["/etc/passwd", good]);
        assert.equal(result.status, 0);
        assert.match(result.stderr, /not a store path: '\/etc\/passwd'/);
        assert.deepEqual((await queueState(queueDir)).pending, [basename(good)]);
    });

    test("hashes with e, o, t or u or of the wrong length, and names with a space or '/', are refused as store paths", async () => {
        const queueDir = workspace.path("malformed-queue");
        const good = absentStorePath();
        const hash = basename(good).slice(0, 32);
        // Nix's base32 omits e, o, t and u (NixOS/nix src/libutil/include/nix/util/base-nix-32.hh,
        // BaseNix32::characters; src/libstore/path.cc, StorePath refuses them), a store path's hash
        // part is 32 of those characters, and a name only has letters, digits and +-._?= (path.cc, checkName).
        const refused = [
            ...["e", "o", "t", "u"].map((letter) => `/nix/store/${letter}${hash.slice(1)}-nix-cache-test`),
            `/nix/store/${hash.slice(1)}-nix-cache-test`,
            `/nix/store/${hash}0-nix-cache-test`,
            `/nix/store/${hash}-nix cache-test`,
            `/nix/store/${hash}-nix-cache-test/bin`,
        ];
        const result = await runWith(workspace, { NIX_CACHE_QUEUE_DIR: queueDir }, ENQUEUE, [...refused, good]);
        assert.equal(result.status, 0);
        for (const path of refused) {
            assert.ok(result.stderr.includes(`not a store path: '${path}'`), `${path} is refused:\n${result.stderr}`);
        }
        assert.deepEqual(await queueState(queueDir), onlyPending([good]));
    });

    test("with OUT_PATHS empty (Nix 2.8.0's bug) it queues the outputs DRV_PATH names", async () => {
        const built = await buildPaths(workspace, 1, ["out", "dev"]);
        try {
            const queueDir = workspace.path("drv-queue");
            const result = await runWith(workspace, { NIX_CACHE_QUEUE_DIR: queueDir, OUT_PATHS: "", DRV_PATH: built.drvs[0]! }, ENQUEUE);
            assert.deepEqual([result.status, result.stderr], [0, ""]);
            assert.deepEqual((await queueState(queueDir)).pending, names(built.paths));
        } finally {
            await deletePaths(workspace, built);
        }
    });
});

describe("builderNixConf on a real Nix: every build is queued, and no queue problem fails a build", NEEDS_NIX, () => {
    let workspace: NixWorkspace;
    before(async () => {
        // The tests' base settings plus exactly what the stack exports for builders, with this checkout's hook.
        const builderConf = renderNixConf(builderNixSettings({ postBuildHook: ENQUEUE }));
        workspace = await NixWorkspace.create(`substituters =\nsandbox = false\n${builderConf}`);
    });
    after(() => workspace.remove());

    test("Nix reads the settings, and keeps its narinfo cache (the drainer alone asks the cache afresh)", async () => {
        const config = await workspace.ok("nix", ["show-config"]);
        assert.match(config, new RegExp(`^post-build-hook = ${ENQUEUE}$`, "m"));
        // Nix's default, 30 days (NixOS/nix src/libstore/globals.hh, ttlPositiveNarInfoCache).
        assert.match(config, /^narinfo-cache-positive-ttl = 2592000$/m);
    });

    test("a build queues all its outputs through the hook", async () => {
        const queueDir = workspace.path("hook-queue");
        const file = workspace.path("hooked.nix");
        await writeFile(
            file,
            `derivation { name = "nix-cache-hook-test"; system = builtins.currentSystem; outputs = [ "out" "dev" ];
              builder = "/bin/sh"; args = [ "-c" "echo ${randomUUID()} > $out; echo > $dev" ]; }`,
        );
        const drv = (await workspace.ok("nix-instantiate", [file])).trim();
        const result = await runWith(workspace, { NIX_CACHE_QUEUE_DIR: queueDir }, "nix-store", ["--realise", drv]);
        const outputs = (await workspace.ok("nix-store", ["--query", "--outputs", drv])).trim().split("\n");
        try {
            assert.equal(result.status, 0, result.stderr);
            assert.match(result.stderr, /running post-build-hook/);
            assert.deepEqual((await queueState(queueDir)).pending, names(outputs));
        } finally {
            await workspace.ok("nix-store", ["--delete", ...outputs, drv]);
        }
    });

    test("a build succeeds when the queue cannot be written", async () => {
        const blocker = workspace.path("blocker");
        await writeFile(blocker, "");
        const file = workspace.path("unqueued.nix");
        await writeFile(
            file,
            `derivation { name = "nix-cache-hook-test"; system = builtins.currentSystem;
              builder = "/bin/sh"; args = [ "-c" "echo ${randomUUID()} > $out" ]; }`,
        );
        const drv = (await workspace.ok("nix-instantiate", [file])).trim();
        const result = await runWith(workspace, { NIX_CACHE_QUEUE_DIR: join(blocker, "queue") }, "nix-store", ["--realise", drv]);
        const out = result.stdout.trim();
        try {
            assert.equal(result.status, 0, result.stderr);
            assert.match(result.stderr, /NOT queued/);
            assert.ok(existsSync(out), `${out} was built`);
        } finally {
            await workspace.ok("nix-store", ["--delete", out, drv]);
        }
    });
});

describe("drain: uploads the queue, signed, exactly once, surviving a kill", NEEDS_NIX, () => {
    let workspace: NixWorkspace;
    let signer: Signer;
    let wrapper: string;
    before(async () => {
        workspace = await NixWorkspace.create();
        signer = await makeSigner(workspace, "builder-test-1");
        wrapper = await writeNixWrapper(workspace);
    });
    after(() => workspace.remove());

    /** A fresh queue, cache and call log, and the drainer's environment for them. */
    function setup(name: string, overrides: Environment = {}) {
        const queueDir = workspace.path(`${name}-queue`);
        const cacheDir = workspace.path(`${name}-cache`);
        const wrapperDir = workspace.path(`${name}-calls`);
        const env: Environment = {
            NIX_CACHE_QUEUE_DIR: queueDir,
            NIX_CACHE_UPLOAD_URL: `file://${cacheDir}?compression=zstd`,
            NIX_CACHE_SECRET_KEY_FILE: signer.keyFile,
            NIX_CACHE_NIX: wrapper,
            WRAPPER_DIR: wrapperDir,
            ...overrides,
        };
        return { queueDir, cacheDir, wrapperDir, env };
    }

    async function enqueue(queueDir: string, paths: string[]): Promise<void> {
        const result = await runWith(workspace, { NIX_CACHE_QUEUE_DIR: queueDir, OUT_PATHS: paths.join(" ") }, ENQUEUE);
        assert.deepEqual([result.status, result.stderr], [0, ""]);
    }

    for (const when of ["before", "after"] as const) {
        test(`killed with SIGKILL mid-run (${when} a batch's upload), restarted: every path arrives once, nothing is lost`, { timeout: 180_000 }, async () => {
            const { queueDir, cacheDir, wrapperDir, env } = setup(`kill-${when}`, { NIX_CACHE_BATCH_SIZE: "3" });
            await mkdir(wrapperDir);
            const built = await buildPaths(workspace, 10);
            const [first, late] = [built.paths.slice(0, 8), built.paths.slice(8)];
            let running: Promise<NixResult> | undefined;
            let group: number | undefined;
            try {
                // Three concurrent hooks queue the first eight paths, overlapping.
                await Promise.all([enqueue(queueDir, first.slice(0, 5)), enqueue(queueDir, first.slice(3)), enqueue(queueDir, first.slice(2, 6))]);
                assert.deepEqual((await queueState(queueDir)).pending, names(first));

                // The drainer, in a process group of its own, stops in its second `nix copy`.
                running = runWith(workspace, { ...env, HOLD_CALL: "2", HOLD_WHEN: when }, "setsid", [DRAIN]);
                group = Number((await waitForFile(join(wrapperDir, "held"))).trim());
                const heldQueue = await queueState(queueDir);
                const acked = (await copiedPaths(wrapperDir, dirname(first[0]!))).get(1)!;
                const held = (await copiedPaths(wrapperDir, dirname(first[0]!))).get(2)!;
                assert.equal(acked.length, 3);
                assert.deepEqual(heldQueue.inflight, names(held));
                assert.equal((await readdir(cacheDir)).filter((file) => file.endsWith(".narinfo")).length, when === "before" ? 3 : 6);

                // Meanwhile: a second drainer leaves the queue to the running one; builds queue new paths,
                // one already uploaded and one being uploaded.
                const second = await runWith(workspace, { ...env, WRAPPER_DIR: workspace.path("unused") }, DRAIN);
                assert.deepEqual([second.status, /another drainer holds/.test(second.stderr)], [0, true]);
                await Promise.all([enqueue(queueDir, late), enqueue(queueDir, [acked[0]!, held[0]!])]);

                process.kill(-group, "SIGKILL");
                assert.equal((await running).status, null, "the drainer died by the signal");
                running = undefined;

                // Nothing lost: every path not yet acknowledged is still queued, once.
                const killed = await queueState(queueDir);
                const stillQueued = [...first.filter((path) => !acked.includes(path)), ...late, acked[0]!];
                assert.deepEqual([...new Set([...killed.pending, ...killed.inflight])].sort(), names(stillQueued));

                const restarted = await runWith(workspace, env, DRAIN);
                assert.equal(restarted.status, 0, restarted.stderr);
                assert.match(restarted.stderr, /requeueing 3 entries claimed by a drainer that did not finish/);
                assert.deepEqual(await queueState(queueDir), onlyPending([]));

                const calls = await copiedPaths(wrapperDir, dirname(first[0]!));
                const afterRestart = [...calls].filter(([call]) => call > 2).flatMap(([, paths]) => paths);
                assert.deepEqual([...afterRestart].sort(), [...stillQueued].sort(), "each queued path is copied exactly once after the restart");
                await assertCacheHoldsExactly(workspace, cacheDir, built.paths, signer);
            } finally {
                if (running !== undefined && group !== undefined) {
                    process.kill(-group, "SIGKILL");
                }
                await running;
                await deletePaths(workspace, built);
            }
        });
    }

    test("SIGKILL of the drainer alone, while its `nix copy` runs on, does not keep the lock: the next drainer uploads", { timeout: 120_000 }, async () => {
        const { queueDir, cacheDir, wrapperDir, env } = setup("orphan");
        await mkdir(wrapperDir);
        const built = await buildPaths(workspace, 2);
        let running: Promise<NixResult> | undefined;
        let group: number | undefined;
        try {
            await enqueue(queueDir, built.paths);
            running = runWith(workspace, { ...env, HOLD_CALL: "1", HOLD_WHEN: "before" }, "setsid", [DRAIN]);
            const drainer = Number((await waitForFile(join(wrapperDir, "held"))).trim());
            group = drainer;
            process.kill(drainer, "SIGKILL");
            await waitUntilGone(drainer);
            // Its `nix copy` (the wrapper, now a sleep) lives on with the descriptors it was given.
            assert.doesNotThrow(() => process.kill(-group!, 0), "the orphaned nix copy still runs");

            const next = await runWith(workspace, { ...env, WRAPPER_DIR: workspace.path("orphan-next-calls") }, DRAIN);
            assert.equal(next.status, 0, next.stderr);
            assert.doesNotMatch(next.stderr, /another drainer holds/);
            assert.match(next.stderr, /requeueing 2 entries claimed by a drainer that did not finish/);
            assert.deepEqual(await queueState(queueDir), onlyPending([]));
            await assertCacheHoldsExactly(workspace, cacheDir, built.paths, signer);
        } finally {
            if (group !== undefined) {
                process.kill(-group, "SIGKILL");
            }
            await running;
            await deletePaths(workspace, built);
        }
    });

    test("a path the cache lost after an earlier upload is uploaded again (the drainer's nix copy does not trust Nix's narinfo cache)", { timeout: 60_000 }, async () => {
        const root = workspace.path("lost-cache");
        await mkdir(root);
        const cache = await serveWritableCache(root);
        const { queueDir, env } = setup("lost", { NIX_CACHE_UPLOAD_URL: `${cache.url}?compression=zstd` });
        const built = await buildPaths(workspace, 1);
        const narInfo = join(root, `${basename(built.paths[0]!).slice(0, 32)}.narinfo`);
        try {
            await enqueue(queueDir, built.paths);
            const first = await runWith(workspace, env, DRAIN);
            assert.equal(first.status, 0, first.stderr);
            await assertCacheHoldsExactly(workspace, root, built.paths, signer);
            // The cache loses it (expiry, deletion); Nix's disk cache (the workspace's XDG_CACHE_HOME,
            // kept between the runs) still remembers it as present.
            await rm(narInfo);
            await enqueue(queueDir, built.paths);
            const again = await runWith(workspace, env, DRAIN);
            assert.equal(again.status, 0, again.stderr);
            assert.deepEqual(await queueState(queueDir), onlyPending([]));
            assert.ok(existsSync(narInfo), "the narinfo is back");
            await assertCacheHoldsExactly(workspace, root, built.paths, signer);
        } finally {
            await cache.close();
            await deletePaths(workspace, built);
        }
    });

    test("staging files in tmp/ older than an hour are removed at start, fresh ones stay", async () => {
        const { queueDir, env } = setup("stale-tmp");
        await mkdir(join(queueDir, "tmp"), { recursive: true });
        const minutesAgo = (minutes: number) => new Date(Date.now() - minutes * 60_000);
        for (const [name, age] of [["stale.abc123", 61], ["fresh.def456", 59]] as const) {
            await writeFile(join(queueDir, "tmp", name), `${absentStorePath()}\n`);
            await utimes(join(queueDir, "tmp", name), minutesAgo(age), minutesAgo(age));
        }
        const result = await runWith(workspace, env, DRAIN);
        assert.equal(result.status, 0, result.stderr);
        assert.deepEqual((await queueState(queueDir)).tmp, ["fresh.def456"]);
    });

    test("a failing destination keeps every entry queued, after retries with exponential backoff", { timeout: 120_000 }, async () => {
        const blocker = workspace.path("not-a-directory");
        await writeFile(blocker, "");
        const { queueDir, cacheDir, wrapperDir, env } = setup("failing", {
            NIX_CACHE_UPLOAD_URL: `file://${blocker}/cache`,
            NIX_CACHE_ATTEMPTS: "4",
            NIX_CACHE_RETRY_DELAY: "1",
            NIX_CACHE_MAX_RETRY_DELAY: "2",
        });
        await mkdir(wrapperDir);
        const built = await buildPaths(workspace, 5);
        try {
            await enqueue(queueDir, built.paths);
            const started = Date.now();
            const failed = await runWith(workspace, env, DRAIN);
            const waited = Date.now() - started;
            assert.equal(failed.status, 1, failed.stderr);
            assert.deepEqual(
                [...failed.stderr.matchAll(/failed \(attempt ([0-9]) of 4\); retrying in ([0-9]+)s/g)].map((match) => [match[1], match[2]]),
                [["1", "1"], ["2", "2"], ["3", "2"]],
            );
            assert.match(failed.stderr, /uploading 5 path\(s\) to \S+ failed 4 time\(s\)/);
            assert.ok(waited >= 5_000, `waited ${waited} ms between attempts, expected at least 1 + 2 + 2 s`);
            // Then each path alone, once, until 4 paths in a row have failed: the destination is down.
            const calls = await copiedPaths(wrapperDir, dirname(built.paths[0]!));
            assert.deepEqual([...calls.keys()].sort(), [1, 2, 3, 4, 5, 6, 7, 8]);
            assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8].map((call) => calls.get(call)!.length), [5, 5, 5, 5, 1, 1, 1, 1]);
            assert.match(failed.stderr, /4 paths in a row failed to upload alone: the destination is unreachable or refuses every upload/);
            assert.match(failed.stderr, /5 entries stay queued for the next run/);
            assert.deepEqual(await queueState(queueDir), onlyPending(built.paths));

            // Once the destination works, the same queue drains.
            const recovered = await runWith(workspace, { ...env, NIX_CACHE_UPLOAD_URL: `file://${cacheDir}` }, DRAIN);
            assert.equal(recovered.status, 0, recovered.stderr);
            assert.deepEqual(await queueState(queueDir), onlyPending([]));
            await assertCacheHoldsExactly(workspace, cacheDir, built.paths, signer);
        } finally {
            await deletePaths(workspace, built);
        }
    });

    test("entries whose path left the store are dropped; entries the store refuses are set aside in failed/", { timeout: 60_000 }, async () => {
        const { queueDir, cacheDir, env } = setup("collected");
        const built = await buildPaths(workspace, 1);
        try {
            const collected = absentStorePath(dirname(built.paths[0]!));
            await enqueue(queueDir, [...built.paths, collected]);
            // Entries written by hand: one names no store path, one is not even a path, one is empty.
            await writeFile(join(queueDir, "pending", "by-hand"), "/nonexistent/path\n");
            await writeFile(join(queueDir, "pending", "relative"), "result\n");
            await writeFile(join(queueDir, "pending", "empty"), "");
            const result = await runWith(workspace, env, DRAIN);
            assert.equal(result.status, 3, result.stderr);
            assert.match(result.stderr, new RegExp(`${collected} is not a valid path in the local store`));
            assert.match(result.stderr, /\/nonexistent\/path: the local store refuses it .*; moved to \S+\/failed\/by-hand \(queue it again with: mv /);
            assert.match(result.stderr, /result: it is not an absolute path; moved to \S+\/failed\/relative/);
            assert.match(result.stderr, /queue entry empty is empty; dropping it/);
            assert.match(result.stderr, /2 path\(s\) moved to \S+\/failed; once the cause is fixed, queue them again with: mv /);
            assert.deepEqual(await queueState(queueDir), { pending: [], inflight: [], failed: ["by-hand", "relative"], tmp: [] });
            assert.equal(await readFile(join(queueDir, "failed", "by-hand"), "utf8"), "/nonexistent/path\n");
            await assertCacheHoldsExactly(workspace, cacheDir, built.paths, signer);
        } finally {
            await deletePaths(workspace, built);
        }
    });

    test("a local store that cannot be asked keeps every entry queued and exits 1, uploading nothing", { timeout: 60_000 }, async () => {
        const built = await buildPaths(workspace, 2);
        try {
            // No daemon listens on that socket; Nix cannot open a store of that scheme at all.
            for (const [what, store] of [["daemon", `unix://${workspace.path("no-daemon.socket")}`], ["unknown", "bogus://store"]]) {
                const { queueDir, cacheDir, wrapperDir, env } = setup(`unaskable-${what}`);
                await enqueue(queueDir, built.paths);
                const result = await runWith(workspace, { ...env, NIX_REMOTE: store }, DRAIN);
                assert.equal(result.status, 1, result.stderr);
                assert.match(result.stderr, /cannot ask the local store which queued paths still exist/, what);
                assert.doesNotMatch(result.stderr, /dropping it/, what);
                assert.match(result.stderr, /2 entries stay queued for the next run/, what);
                assert.deepEqual(await queueState(queueDir), onlyPending(built.paths), what);
                assert.equal(existsSync(wrapperDir), false, `${what}: nix copy never ran`);
                // Only the check that Nix can open the upload URL touched the cache: no path in it.
                assert.deepEqual((existsSync(cacheDir) ? readdirSync(cacheDir) : []).filter((file) => file.endsWith(".narinfo")), [], what);
            }
        } finally {
            await deletePaths(workspace, built);
        }
    });

    test("a path the destination refuses goes to failed/ after failing alone in NIX_CACHE_SET_ASIDE_AFTER runs; the rest of its batches upload; --retry-failed queues it again", { timeout: 180_000 }, async () => {
        const { queueDir, cacheDir, wrapperDir, env } = setup("refused", { NIX_CACHE_ATTEMPTS: "2", NIX_CACHE_RETRY_DELAY: "1", NIX_CACHE_SET_ASIDE_AFTER: "2" });
        await mkdir(wrapperDir);
        const built = await buildPaths(workspace, 6);
        const [refused, ...others] = built.paths as [string, ...string[]];
        const [firstRun, secondRun] = [others.slice(0, 3), others.slice(3)];
        const entry = join(queueDir, "pending", basename(refused));
        try {
            await enqueue(queueDir, [refused, ...firstRun]);
            // The newest entry (the drainer takes the oldest first), so that it fails alone after the others uploaded.
            const later = new Date(Date.now() + 60_000);
            await utimes(entry, later, later);
            const first = await runWith(workspace, { ...env, REJECT_PATH: refused }, DRAIN);
            assert.equal(first.status, 1, first.stderr);
            const calls = await copiedPaths(wrapperDir, dirname(refused));
            assert.deepEqual(calls.get(6), [refused]);
            // The batch twice, then each path alone, once.
            assert.deepEqual([calls.get(1), calls.get(2)].map((paths) => [...paths!].sort()), [[refused, ...firstRun].sort(), [refused, ...firstRun].sort()]);
            assert.deepEqual([...calls].filter(([call]) => call > 2).map(([, paths]) => paths).sort(), [refused, ...firstRun].map((path) => [path]).sort());
            assert.match(first.stderr, new RegExp(`${refused} failed to upload alone, while other paths uploaded \\(run 1 of 2 before it is set aside\\); it stays queued for the next run`));
            assert.match(first.stderr, /uploaded 3 path\(s\); 1 entries stay queued for the next run/);
            assert.deepEqual(await queueState(queueDir), onlyPending([refused]));
            assert.equal(await readFile(entry, "utf8"), `${refused}\nfailed-alone-runs=1\n`);
            await assertCacheHoldsExactly(workspace, cacheDir, firstRun, signer);

            // A second run, with more paths to compare with: the second time it fails alone, it is set aside.
            await enqueue(queueDir, secondRun);
            const second = await runWith(workspace, { ...env, REJECT_PATH: refused }, DRAIN);
            assert.equal(second.status, 3, second.stderr);
            assert.match(second.stderr, new RegExp(`${refused}: it failed to upload alone, while other paths uploaded, in 2 separate run\\(s\\); moved to ${queueDir}/failed/${basename(refused)} \\(queue it again with: mv ${queueDir}/failed/${basename(refused)} ${queueDir}/pending/\\)`));
            assert.deepEqual(await queueState(queueDir), { pending: [], inflight: [], failed: [basename(refused)], tmp: [] });
            await assertCacheHoldsExactly(workspace, cacheDir, others, signer);

            // Queued again by the drainer's own flag, to a destination that takes it.
            const again = await runWith(workspace, env, DRAIN, ["--retry-failed"]);
            assert.equal(again.status, 0, again.stderr);
            assert.match(again.stderr, /queueing the 1 entries in \S+\/failed again/);
            assert.deepEqual(await queueState(queueDir), onlyPending([]));
            await assertCacheHoldsExactly(workspace, cacheDir, built.paths, signer);
        } finally {
            await deletePaths(workspace, built);
        }
    });

    test("a path that failed alone while the destination was down goes back to the queue, not to failed/, and uploads in the next run", { timeout: 120_000 }, async () => {
        const { queueDir, cacheDir, wrapperDir, env } = setup("outage", { NIX_CACHE_ATTEMPTS: "2", NIX_CACHE_RETRY_DELAY: "1" });
        await mkdir(wrapperDir);
        const built = await buildPaths(workspace, 4);
        try {
            await enqueue(queueDir, built.paths);
            // Down for the batch's two attempts and the first single upload, then up again.
            const outage = await runWith(workspace, { ...env, FAIL_CALLS: "1 2 3" }, DRAIN);
            assert.equal(outage.status, 1, outage.stderr);
            const [unlucky] = (await copiedPaths(wrapperDir, dirname(built.paths[0]!))).get(3)!;
            assert.ok(unlucky !== undefined);
            assert.deepEqual(await queueState(queueDir), onlyPending([unlucky]));
            await assertCacheHoldsExactly(workspace, cacheDir, built.paths.filter((path) => path !== unlucky), signer);

            const next = await runWith(workspace, env, DRAIN);
            assert.equal(next.status, 0, next.stderr);
            assert.deepEqual(await queueState(queueDir), onlyPending([]));
            await assertCacheHoldsExactly(workspace, cacheDir, built.paths, signer);
        } finally {
            await deletePaths(workspace, built);
        }
    });

    test("a refused path first in the queue holds up nothing, even alone in its batch", { timeout: 120_000 }, async () => {
        const { queueDir, cacheDir, wrapperDir, env } = setup("refused-first", {
            NIX_CACHE_ATTEMPTS: "2",
            NIX_CACHE_RETRY_DELAY: "1",
            NIX_CACHE_BATCH_SIZE: "1",
            // Set aside the first time it fails alone while others upload.
            NIX_CACHE_SET_ASIDE_AFTER: "1",
        });
        await mkdir(wrapperDir);
        const built = await buildPaths(workspace, 3);
        const [refused, ...others] = built.paths as [string, ...string[]];
        try {
            // Alone in the queue, a refused path cannot be told from a destination that is down.
            await enqueue(queueDir, [refused]);
            const alone = await runWith(workspace, { ...env, REJECT_PATH: refused }, DRAIN);
            assert.equal(alone.status, 1, alone.stderr);
            assert.match(alone.stderr, /no other queued path shows whether the destination works/);
            assert.deepEqual(await queueState(queueDir), onlyPending([refused]));

            // Builds queue more paths after it, so it is the oldest entry and its batch comes first.
            await enqueue(queueDir, others);
            const result = await runWith(workspace, { ...env, REJECT_PATH: refused }, DRAIN);
            assert.equal(result.status, 3, result.stderr);
            assert.deepEqual(await queueState(queueDir), { pending: [], inflight: [], failed: [basename(refused)], tmp: [] });
            await assertCacheHoldsExactly(workspace, cacheDir, others, signer);
        } finally {
            await deletePaths(workspace, built);
        }
    });

    test("missing settings stop the drainer with a message naming the variable, and leave the queue alone", async () => {
        const { queueDir, env } = setup("unconfigured");
        const path = absentStorePath();
        await enqueue(queueDir, [path]);
        const { NIX_CACHE_SECRET_KEY_FILE: _key, ...withoutKey } = env;
        const noKey = await runWith(workspace, withoutKey, DRAIN);
        assert.equal(noKey.status, 2);
        assert.match(noKey.stderr, /NIX_CACHE_SECRET_KEY_FILE is not set/);
        const badAttempts = await runWith(workspace, { ...env, NIX_CACHE_ATTEMPTS: "0" }, DRAIN);
        assert.equal(badAttempts.status, 2);
        assert.match(badAttempts.stderr, /NIX_CACHE_ATTEMPTS must be a positive whole number/);
        // Without Nix's commands the drainer could not tell a collected path from an unreachable store.
        const bin = workspace.path("bin-without-nix");
        await mkdir(bin);
        await symlink("/bin/bash", join(bin, "bash"));
        const noNix = await runWith(workspace, { ...env, PATH: bin }, DRAIN);
        assert.equal(noNix.status, 2);
        assert.match(noNix.stderr, /drain: nix: command not found; put Nix's bin directory on PATH/);
        await symlink((await workspace.ok("sh", ["-c", "command -v nix"])).trim(), join(bin, "nix"));
        const noNixStore = await runWith(workspace, { ...env, PATH: bin }, DRAIN);
        assert.equal(noNixStore.status, 2);
        assert.match(noNixStore.stderr, /drain: nix-store: command not found; put Nix's bin directory on PATH/);
        assert.deepEqual((await queueState(queueDir)).pending, [basename(path)]);
    });

    test("a Nix that cannot open s3:// stores at all stops the drainer with exit 2, naming the cause and the fix", async () => {
        const { queueDir, env } = setup("no-s3");
        const path = absentStorePath();
        await enqueue(queueDir, [path]);
        // Debian's Nix has no S3 store. NixOS/nix says "don't know how to open Nix store '<url>'" (2.8:
        // src/libstore/store-api.cc, openStore), in current versions "... with scheme 's3'"
        // (src/libstore/store-registration.cc, resolveStoreConfig); openStore then calls init(), as for
        // every upload. `nix store ping` is kept as an alias of `nix store info` (src/nix/store.cc).
        const result = await runWith(workspace, { ...env, NIX_CACHE_UPLOAD_URL: "s3://nix-cache?endpoint=https://127.0.0.1:9&region=us-east-1" }, DRAIN);
        assert.equal(result.status, 2, result.stderr);
        assert.match(result.stderr, /drain: nix \(Nix\) [0-9.]+ cannot open s3:\/\/ stores \(Nix says: error: don't know how to open Nix store/);
        assert.match(result.stderr, /Debian's and Ubuntu's nix-bin are built without S3 support: upload with NixOS's Nix or the upstream installer's/);
        assert.deepEqual(await queueState(queueDir), onlyPending([path]));
    });

    test("a destination that is merely unreachable is no configuration error: the entries stay queued, exit 1", { timeout: 60_000 }, async () => {
        const closed = await serveWritableCache(workspace.path("closed-cache"));
        await closed.close();
        const { queueDir, env } = setup("unreachable", { NIX_CACHE_UPLOAD_URL: closed.url, NIX_CACHE_ATTEMPTS: "1" });
        await mkdir(workspace.path("unreachable-calls"));
        const built = await buildPaths(workspace, 1);
        try {
            await enqueue(queueDir, built.paths);
            const result = await runWith(workspace, env, DRAIN);
            assert.equal(result.status, 1, result.stderr);
            assert.match(result.stderr, /cannot open http:\/\/127\.0\.0\.1:[0-9]+ now \(Nix's error is above\); trying the uploads anyway, with retries/);
            assert.match(result.stderr, /1 entries stay queued for the next run/);
            assert.deepEqual(await queueState(queueDir), onlyPending(built.paths));
        } finally {
            await deletePaths(workspace, built);
        }
    });

    test("an unreadable AWS_SHARED_CREDENTIALS_FILE, or one without the upload URL's profile, stops the drainer with exit 2 naming it", async () => {
        const { queueDir, env } = setup("credentials");
        const path = absentStorePath();
        await enqueue(queueDir, [path]);
        const s3Env = { ...env, NIX_CACHE_UPLOAD_URL: "s3://nix-cache?endpoint=https://127.0.0.1:9&region=us-east-1&profile=nixbuilder" };
        // Nix's S3 client reads `profile=` from AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials: with
        // aws-sdk-cpp (Nix up to 2.32, src/libstore/s3-binary-cache-store.cc: ProfileConfigFileAWSCredentialsProvider;
        // aws/aws-sdk-cpp src/aws-cpp-sdk-core/source/auth/AWSCredentialsProvider.cpp, GetCredentialsProfileFilename)
        // and with aws-crt (2.33+, src/libstore/aws-creds.cc: CreateCredentialsProviderProfile;
        // awslabs/aws-c-sdkutils source/aws_profile.c, s_credentials_file_path_env_variable_name).
        const missing = workspace.path("no-such-credentials");
        const unreadable = await runWith(workspace, { ...s3Env, AWS_SHARED_CREDENTIALS_FILE: missing }, DRAIN);
        assert.equal(unreadable.status, 2, unreadable.stderr);
        assert.match(unreadable.stderr, new RegExp(`cannot read the AWS credentials file ${missing} \\(AWS_SHARED_CREDENTIALS_FILE`));
        // Unset, the file is ~/.aws/credentials (HOME is the workspace's).
        const byDefault = await runWith(workspace, s3Env, DRAIN);
        assert.equal(byDefault.status, 2, byDefault.stderr);
        assert.match(byDefault.stderr, new RegExp(`cannot read the AWS credentials file ${workspace.path("home", ".aws", "credentials")} `));

        const credentials = workspace.path("credentials");
        await writeFile(credentials, "[someone-else]\naws_access_key_id = A\naws_secret_access_key = B\n\n[ nixbuilder-old ]\naws_access_key_id = C\n");
        const noProfile = await runWith(workspace, { ...s3Env, AWS_SHARED_CREDENTIALS_FILE: credentials }, DRAIN);
        assert.equal(noProfile.status, 2, noProfile.stderr);
        assert.match(noProfile.stderr, new RegExp(`the AWS credentials file ${credentials} has no profile \\[nixbuilder\\], which the upload URL names \\(profile=nixbuilder\\)`));

        // With the profile the check passes, and the next one speaks: Debian's Nix has no S3 store.
        await writeFile(credentials, "[someone-else]\naws_access_key_id = A\n\n  [ nixbuilder ]  \r\naws_access_key_id = C\naws_secret_access_key = D\n");
        const withProfile = await runWith(workspace, { ...s3Env, AWS_SHARED_CREDENTIALS_FILE: credentials }, DRAIN);
        assert.equal(withProfile.status, 2, withProfile.stderr);
        assert.doesNotMatch(withProfile.stderr, /credentials file/);
        assert.match(withProfile.stderr, /cannot open s3:\/\/ stores/);
        assert.deepEqual(await queueState(queueDir), onlyPending([path]));
    });
});
