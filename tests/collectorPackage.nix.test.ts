// The collector's Nix package (nixos/lib/nix-cache-gc-package.nix) and the flake that exposes it,
// checked with Debian's Nix 2.8 (no nixpkgs here). The package file is evaluated with stand-ins for
// buildNpmPackage, importNpmLock and lib.fileset that return their arguments, so what is checked is
// what the package hands nixpkgs, not a real build; the source it selects is run for real.
//
// Upstream behaviour relied on:
// - nixpkgs doc/languages-frameworks/javascript.section.md, "importNpmLock": no hash to give, it
//   "relies entirely on the integrity hashes already present in the package-lock.json file"; use
//   importNpmLock.npmConfigHook with it, not npmHooks.npmConfigHook; dontNpmBuild skips the build
//   script; the default installPhase installs what `npm pack --json --dry-run` lists and makes
//   the binaries of package.json's "bin".
// - nixpkgs pkgs/build-support/node/import-npm-lock/default.nix: `fetchModule` fetches a lock entry
//   only when it has `resolved` (fetchurl { url = resolved; hash = integrity; }), and
//   `mapPackageDependencies` reads `packageLock'.packages."node_modules/<name>".resolved` for every
//   dependency of package.json, so a lock written with npm's omit-lockfile-registry-resolved (npm/cli
//   PR #4874: "lock files without a resolved key for registry dependencies", as this one is) fails
//   evaluation with "attribute 'resolved' missing". Checked here by evaluating that function (with
//   fetchurl and runCommand stubbed) on package-lock.json: it fails as is and evaluates, with all
//   222 entries fetched, once the package file has filled in the registry URLs.
// - Its hooks/npm-config-hook.sh runs `npm install --ignore-scripts`, then `npm rebuild
//   $npmRebuildFlags`; npm installs only the optionalDependencies whose os/cpu/libc fit (so
//   @swc/core's binary for the build platform), but every entry of the lock is fetched first.
// - build-npm-package/hooks/npm-install-hook.sh: `makeWrapper <nodejs>/bin/node $out/bin/<bin>
//   --add-flags <package>/<bin path>` for each "bin" entry, then `npm prune --omit=dev`.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmod, cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, describe, test } from "node:test";
import { NEEDS_NIX, NixWorkspace } from "./nixSupport";

const REPOSITORY = join(__dirname, "..");
const FLAKE = join(REPOSITORY, "flake.nix");
const PACKAGE_FILE = join(REPOSITORY, "nixos", "lib", "nix-cache-gc-package.nix");

/** A Nix string literal (JSON's escapes are Nix's, except that `$` must not start `${`). */
const nixString = (text: string) => JSON.stringify(text).replace(/\$/g, "\\$");

// The package file called as pkgs.callPackage would, with stand-ins; paths become strings (toString
// does not copy them into the store). `lib.importJSON` is nixpkgs' definition (lib/trivial.nix).
const PACKAGE_EXPRESSION = `
  let
    lib = {
      importJSON = path: builtins.fromJSON (builtins.readFile path);
      fileset = { toSource = { root, fileset }: { inherit root fileset; }; unions = paths: paths; };
      licenses.mit = "mit";
    };
    importNpmLock = { __functor = self: args: args; npmConfigHook = "importNpmLock.npmConfigHook"; };
    built = import ${nixString(PACKAGE_FILE)} { inherit lib importNpmLock; buildNpmPackage = args: args; nodejs_22 = "nodejs_22"; };
    source = src: { root = toString src.root; fileset = map toString src.fileset; };
  in built // { src = source built.src; npmDeps = built.npmDeps // { npmRoot = source built.npmDeps.npmRoot; }; }`;

// flake.nix's outputs with a stand-in nixpkgs input; `lib.genAttrs` is nixpkgs' definition.
const FLAKE_EXPRESSION = `
  let
    flake = import ${nixString(FLAKE)};
    systems = [ "x86_64-linux" "aarch64-linux" ];
    nixpkgs = {
      lib.genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
      legacyPackages = builtins.listToAttrs (map (system: { name = system; value = {
        callPackage = file: overrides: { callPackage = toString file; inherit overrides system; };
        mkShell = args: args;
        nodejs_22 = "nodejs_22"; pulumi-bin = "pulumi-bin"; minio-client = "minio-client";
      }; }) systems);
    };
    outputs = flake.outputs { self = outputs; inherit nixpkgs; };
  in {
    inherit (flake) inputs;
    outputNames = builtins.attrNames outputs;
    inherit (outputs) packages devShells;
    nixosModules = builtins.mapAttrs (name: toString) outputs.nixosModules;
  }`;

interface LockEntry {
    version?: string;
    integrity?: string;
    resolved?: string;
}

describe("the collector's Nix package and the flake, evaluated by Nix", NEEDS_NIX, () => {
    let workspace: NixWorkspace;
    before(async () => (workspace = await NixWorkspace.create()));
    after(() => workspace.remove());

    const evaluate = async (expression: string): Promise<any> =>
        JSON.parse(await workspace.ok("nix-instantiate", ["--eval", "--strict", "--json", "-E", expression]));

    test("flake.nix and the package file parse", async () => {
        for (const file of [FLAKE, PACKAGE_FILE]) {
            const result = await workspace.run("nix-instantiate", ["--parse", file]);
            assert.equal(result.status, 0, result.stderr);
        }
    });

    test("the flake exposes packages.<system>.nix-cache-gc, the package file called by callPackage, beside its modules and shell", async () => {
        const flake = await evaluate(FLAKE_EXPRESSION);
        assert.deepEqual(flake.inputs, { nixpkgs: { url: "github:NixOS/nixpkgs/nixos-25.05" } });
        assert.deepEqual(flake.outputNames, ["devShells", "nixosModules", "packages"]);
        for (const system of ["x86_64-linux", "aarch64-linux"]) {
            assert.deepEqual(flake.packages[system], { "nix-cache-gc": { callPackage: PACKAGE_FILE, overrides: {}, system } });
            assert.deepEqual(flake.devShells[system].default.packages, ["nodejs_22", "pulumi-bin", "minio-client"]);
        }
        assert.deepEqual(flake.nixosModules, {
            builder: join(REPOSITORY, "nixos", "builder.nix"),
            substituter: join(REPOSITORY, "nixos", "substituter.nix"),
        });
    });

    test("buildNpmPackage gets importNpmLock's dependencies and hook, Node.js 22, no build, no install scripts, and a start-up check", async () => {
        const built = await evaluate(PACKAGE_EXPRESSION);
        const packageJson = JSON.parse(await readFile(join(REPOSITORY, "package.json"), "utf8"));
        assert.equal(built.pname, "nix-cache-gc");
        assert.equal(built.version, packageJson.version);
        // package.json's engines (^20.19.0 || >=22.12.0) and the wrapper the install hook makes from "bin".
        assert.equal(packageJson.engines.node, "^20.19.0 || >=22.12.0");
        assert.equal(built.nodejs, "nodejs_22");
        assert.deepEqual(packageJson.bin, { "nix-cache-gc": "tools/nix-cache-gc" });
        assert.equal(built.npmConfigHook, "importNpmLock.npmConfigHook");
        assert.equal(built.dontNpmBuild, true);
        assert.deepEqual(built.npmRebuildFlags, ["--ignore-scripts"]);
        assert.equal(built.doInstallCheck, true);
        assert.equal(built.meta.mainProgram, "nix-cache-gc");
        // ts-node and swc compile the collector at start-up, so they must survive `npm prune --omit=dev`.
        for (const runtime of ["ts-node", "@swc/core", "typescript"]) {
            assert.ok(runtime in packageJson.dependencies, `${runtime} is a runtime dependency`);
        }
        assert.deepEqual(built.npmDeps.npmRoot, built.src);
        assert.deepEqual(Object.keys(built.npmDeps).sort(), ["npmRoot", "packageLock"]);
    });

    test("every locked package gets its registry tarball URL, the rest of the lock unchanged, so importNpmLock can fetch it by its integrity", async () => {
        const { npmDeps } = await evaluate(PACKAGE_EXPRESSION);
        const lock = JSON.parse(await readFile(join(REPOSITORY, "package-lock.json"), "utf8"));
        const given: Record<string, LockEntry> = npmDeps.packageLock.packages;
        assert.deepEqual(Object.keys(given).sort(), Object.keys(lock.packages).sort());
        // The root is the project itself: nothing to fetch.
        assert.deepEqual(given[""], lock.packages[""]);
        const version = (path: string) => (lock.packages[path] as LockEntry).version;
        // A scoped platform binary (swc's, from @swc/core's optionalDependencies), a package nested
        // under another, and an unscoped one; each URL as registry.npmjs.org serves it.
        const swcBinary = "node_modules/@swc/core-linux-x64-gnu";
        const nested = "node_modules/@opentelemetry/otlp-transformer/node_modules/@opentelemetry/core";
        assert.equal(given[swcBinary]!.resolved, `https://registry.npmjs.org/@swc/core-linux-x64-gnu/-/core-linux-x64-gnu-${version(swcBinary)}.tgz`);
        assert.equal(given[nested]!.resolved, `https://registry.npmjs.org/@opentelemetry/core/-/core-${version(nested)}.tgz`);
        assert.equal(given["node_modules/minio"]!.resolved, "https://registry.npmjs.org/minio/-/minio-8.0.7.tgz");
        for (const [path, entry] of Object.entries<LockEntry>(lock.packages)) {
            if (path === "") {
                continue;
            }
            const { resolved, ...rest } = given[path]!;
            assert.deepEqual(rest, entry, `${path}: only resolved added`);
            assert.ok(entry.integrity?.startsWith("sha512-"), `${path} has the integrity fetchurl checks`);
            assert.ok(resolved?.startsWith("https://registry.npmjs.org/") && resolved.endsWith(`-${entry.version}.tgz`), `${path}: ${resolved}`);
        }
        // Every platform's swc binary is locked (and so fetched); npm installs the one that fits.
        const swcPlatforms = Object.keys(given).filter((path) => path.startsWith("node_modules/@swc/core-"));
        assert.ok(swcPlatforms.includes(swcBinary) && swcPlatforms.includes("node_modules/@swc/core-linux-arm64-gnu"), swcPlatforms.join(" "));
    });

    describe("the package's source", () => {
        let copy: string;
        before(async () => (copy = await mkdtemp(join(tmpdir(), "nix-cache-gc-source-"))));
        after(() => rm(copy, { recursive: true, force: true }));

        /** The source the package selects, copied with the repository's node_modules beside it. */
        const copySource = async (directory: string, fileset: string[]) => {
            await mkdir(directory);
            for (const path of fileset) {
                await cp(path, join(directory, relative(REPOSITORY, path)), { recursive: true });
            }
            await symlink(join(REPOSITORY, "node_modules"), join(directory, "node_modules"));
        };

        /** The package's installCheckPhase, run by bash with `$out/bin/nix-cache-gc` as npmInstallHook makes it. */
        const runInstallCheck = async (phase: string, packageDirectory: string) => {
            const out = join(packageDirectory, "out");
            await mkdir(join(out, "bin"), { recursive: true });
            await writeFile(join(out, "bin", "nix-cache-gc"), `#!/bin/sh\nexec ${process.execPath} ${join(packageDirectory, "tools", "nix-cache-gc")} "$@"\n`);
            await chmod(join(out, "bin", "nix-cache-gc"), 0o755);
            return spawnSync("bash", ["-e", "-c", `runHook() { :; }\nout=${JSON.stringify(out)}\n${phase}`], { cwd: packageDirectory, encoding: "utf8" });
        };

        test("holds what the command loads: it starts, and the install check passes; without lib/ the check fails", async () => {
            const built = await evaluate(PACKAGE_EXPRESSION);
            const fileset: string[] = built.src.fileset;
            assert.equal(built.src.root, REPOSITORY);
            const complete = join(copy, "complete");
            await copySource(complete, fileset);
            // No arguments: every module loads (through ts-node and swc), then exit 2 with the usage.
            const started = spawnSync(process.execPath, [join(complete, "tools", "nix-cache-gc")], { cwd: complete, encoding: "utf8" });
            assert.equal(started.status, 2, started.stderr);
            assert.match(started.stderr, /^usage: nix-cache-gc --endpoint URL/m);
            const passed = await runInstallCheck(built.installCheckPhase, complete);
            assert.equal(passed.status, 0, passed.stdout + passed.stderr);

            const withoutLib = join(copy, "without-lib");
            await copySource(withoutLib, fileset.filter((path) => path !== join(REPOSITORY, "lib")));
            const failed = await runInstallCheck(built.installCheckPhase, withoutLib);
            assert.equal(failed.status, 1);
            assert.match(failed.stderr, /nix-cache-gc without arguments exited 1 instead of 2 with its usage/);
        });
    });
});
