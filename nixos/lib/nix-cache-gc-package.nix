# The collector's command, nix-cache-gc (package.json "bin": tools/nix-cache-gc, which runs
# lib/gc/cli.ts transpiled by swc as it loads), built from package-lock.json with importNpmLock: every
# dependency is fetched by the integrity hash the lock file already holds, so no hash is guessed.
# Used by the flake (packages.<system>.nix-cache-gc) and as the default of
# services.nix-binary-cache.builder.collector.package; call it with pkgs.callPackage.
{ lib, buildNpmPackage, importNpmLock, nodejs_22 }:
let
  # Only what the command loads: a change elsewhere in the repository does not rebuild it.
  src = lib.fileset.toSource {
    root = ../..;
    fileset = lib.fileset.unions [
      ../../package.json
      ../../package-lock.json
      ../../tsconfig.json
      ../../tools/nix-cache-gc
      ../../lib
    ];
  };

  package = lib.importJSON ../../package.json;

  # importNpmLock fetches only lock entries with a `resolved` URL and fails on a dependency of
  # package.json without one; npm leaves `resolved` out when omit-lockfile-registry-resolved is set.
  # Such an entry is a registry package: its tarball is the registry's <name>/-/<basename>-<version>.tgz.
  # A wrong URL cannot slip through: fetchurl checks the download against the entry's integrity.
  registryTarball = path: entry:
    let
      name = entry.name or (builtins.head (builtins.match ".*node_modules/(.+)" path));
      baseName = builtins.elemAt (builtins.match "(@[^/]+/)?([^/]+)" name) 1;
    in
    "https://registry.npmjs.org/${name}/-/${baseName}-${entry.version}.tgz";
  withRegistryUrls = lock: lock // {
    packages = builtins.mapAttrs
      (path: entry:
        if path != "" && entry ? integrity && !(entry ? resolved)
        then entry // { resolved = registryTarball path entry; }
        else entry)
      lock.packages;
  };
in
buildNpmPackage {
  pname = "nix-cache-gc";
  inherit (package) version;
  inherit src;

  # package.json's engines: ^20.19.0 || >=22.12.0 (require() of ES modules).
  nodejs = nodejs_22;

  npmDeps = importNpmLock {
    npmRoot = src;
    packageLock = withRegistryUrls (lib.importJSON ../../package-lock.json);
  };
  npmConfigHook = importNpmLock.npmConfigHook;

  # Nothing to build: swc transpiles the TypeScript as it loads (tools/nix-cache-gc).
  dontNpmBuild = true;
  # No install scripts: @swc/core's only checks its platform binary (npm installed the one for this
  # platform from its optionalDependencies) and would fetch @swc/wasm otherwise; the others belong
  # to what the collector never loads (@pulumi/command's plugin download, esbuild of tsx).
  npmRebuildFlags = [ "--ignore-scripts" ];

  # npmInstallHook makes bin/nix-cache-gc from package.json's "bin": node running tools/nix-cache-gc.
  # Started without arguments it must load every module (swc's binary included) and exit 2 with its
  # usage, before any request: a package that cannot start fails here, not in the timer.
  doInstallCheck = true;
  installCheckPhase = ''
    runHook preInstallCheck
    status=0
    "$out/bin/nix-cache-gc" 2> usage.txt || status=$?
    if [ "$status" != 2 ] || ! grep -q '^usage: nix-cache-gc' usage.txt; then
      cat usage.txt
      echo "nix-cache-gc without arguments exited $status instead of 2 with its usage" >&2
      exit 1
    fi
    runHook postInstallCheck
  '';

  meta = {
    description = "Garbage collector for the Nix binary cache bucket that never breaks a closure";
    license = lib.licenses.mit;
    mainProgram = "nix-cache-gc";
  };
}
