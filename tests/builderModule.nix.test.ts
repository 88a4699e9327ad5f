// nixos/builder.nix, checked with a real Nix (Debian's nix-instantiate; no nixpkgs is available
// here). The module is evaluated with a minimal stand-in for nixpkgs' `lib` and `pkgs`: the module
// system's merging and type checks, systemd and writeShellApplication are not reproduced. What is
// checked: its options, the exact nix.settings and systemd units it produces, its assertions, and,
// end to end, that a real Nix configured with its nix.settings queues builds through its hook and
// that its drainer service's command and environment upload them signed.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readdirSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { NEEDS_NIX, NixWorkspace } from "./nixSupport";
import {
    assertCacheHoldsExactly,
    buildPaths,
    deletePaths,
    DRAIN,
    ENQUEUE,
    makeSigner,
    onlyPending,
    queueState,
    runWith,
} from "./queueSupport";

const MODULE = join(__dirname, "..", "nixos", "builder.nix");
const OPTION = "services.nix-binary-cache.builder";

/** A Nix string literal (JSON's escapes are Nix's, except that `$` must not start `${`). */
const nixString = (text: string) => JSON.stringify(text).replace(/\$/g, "\\$");

/** A stand-in for the package builder the module calls (writeShellApplication), as a Nix function. */
type Packaging = string;

/** Every package is a directory under `root`, named after the package, as a store path would be. */
const packagesAt = (root: string): Packaging => `args: "\${${nixString(root)}}/\${args.name}"`;

/** Every package is its script's text, so that the texts show where the module uses the packages. */
const packagesAsText: Packaging = "args: args.text";

/**
 * The module evaluated with the option values `given` (a Nix expression; unset options take their
 * declared defaults) and stand-in packages. The `lib` functions that compute values are nixpkgs'
 * definitions; options and `mkIf` reduce to plain data.
 */
const moduleExpression = (given: string, packaging: Packaging = packagesAt("/packages")) => `
  let
    lib = {
      mkOption = attrs: attrs // { _type = "option"; };
      mkEnableOption = name: { _type = "option"; default = false; };
      mkIf = condition: content: { _type = "if"; inherit condition content; };
      optionalAttrs = condition: attrs: if condition then attrs else { };
      types = { str = "str"; path = "path"; either = a: b: "\${a} or \${b}"; nullOr = type: "null or \${type}"; ints.positive = "positive"; };
      removePrefix = prefix: text:
        let length = builtins.stringLength prefix; in
        if builtins.substring 0 length text == prefix then builtins.substring length (-1) text else text;
      concatStrings = builtins.concatStringsSep "";
      mapAttrsToList = f: attrs: map (name: f name attrs.\${name}) (builtins.attrNames attrs);
      escapeShellArg = arg: "'" + builtins.replaceStrings [ "'" ] [ "'\\\\''" ] (toString arg) + "'";
    };
    pkgs = {
      writeShellApplication = ${packaging};
      coreutils = "coreutils"; findutils = "findutils"; util-linux = "util-linux";
    };
    withDefaults = options: values: builtins.mapAttrs
      (name: option:
        if (option._type or null) == "option" then values.\${name} or option.default
        else withDefaults option (values.\${name} or { }))
      options;
    optionPaths = prefix: set: builtins.concatLists (map
      (name:
        let value = set.\${name}; path = prefix ++ [ name ]; in
        if (value._type or null) == "option" then [ (builtins.concatStringsSep "." path) ] else optionPaths path value)
      (builtins.attrNames set));
    declared = module.options.services.nix-binary-cache.builder;
    module = import ${nixString(MODULE)} {
      inherit lib pkgs;
      config = {
        services.nix-binary-cache.builder = withDefaults declared (${given});
        nix.package = "nix";
      };
    };
  in {
    options = optionPaths [ ] module.options;
    enabled = module.config.condition;
    config = module.config.content;
  }`;

describe("nixos/builder.nix, evaluated by Nix", NEEDS_NIX, () => {
    let workspace: NixWorkspace;
    before(async () => (workspace = await NixWorkspace.create()));
    after(() => workspace.remove());

    const evaluate = async (given: string, packaging?: Packaging): Promise<any> =>
        JSON.parse(await workspace.ok("nix-instantiate", ["--eval", "--strict", "--json", "-E", moduleExpression(given, packaging)]));

    const VALID = `{
        enable = true;
        uploadUrl = "s3://nix-cache?endpoint=https://s3.example.org:9000&region=us-east-1&profile=nixbuilder&compression=zstd";
        secretKeyFile = "/run/secrets/nix-cache-secret-key";
        credentialsFile = "/run/secrets/nix-cache-credentials";
    }`;

    test("parses", async () => {
        const result = await workspace.run("nix-instantiate", ["--parse", MODULE]);
        assert.equal(result.status, 0, result.stderr);
    });

    test("declares exactly these options", async () => {
        const evaluated = await evaluate(VALID);
        const expected = [
            "batchSize", "credentialsFile", "enable", "queueDir", "retry.attempts", "retry.initialDelay",
            "retry.interval", "retry.maxDelay", "retry.setAsideAfter", "retry.setAsideSchedule", "secretKeyFile", "uploadUrl",
        ].map((name) => `${OPTION}.${name}`);
        assert.deepEqual([...evaluated.options].sort(), expected);
    });

    test("valid options give exactly this nix.settings, hook, drainer services, path unit and timers", async () => {
        const evaluated = await evaluate(VALID);
        assert.equal(evaluated.enabled, true);
        const config = evaluated.config;
        assert.deepEqual(config.assertions, []);
        assert.deepEqual(config.warnings, []);
        // The hook only: no narinfo-cache-positive-ttl, which would slow the daemon's substitution down.
        assert.deepEqual(config.nix.settings, {
            "post-build-hook": "/packages/nix-cache-enqueue/bin/nix-cache-enqueue",
        });
        // The hook's command on PATH, to queue paths built before the module was enabled.
        assert.deepEqual(config.environment.systemPackages, ["/packages/nix-cache-enqueue"]);
        assert.deepEqual(config.systemd.tmpfiles.rules, ["d /var/lib/nix-cache-push 0700 root root -"]);
        const environment = {
            NIX_CACHE_QUEUE_DIR: "/var/lib/nix-cache-push",
            NIX_CACHE_UPLOAD_URL: "s3://nix-cache?endpoint=https://s3.example.org:9000&region=us-east-1&profile=nixbuilder&compression=zstd",
            NIX_CACHE_SECRET_KEY_FILE: "/run/secrets/nix-cache-secret-key",
            AWS_SHARED_CREDENTIALS_FILE: "/run/secrets/nix-cache-credentials",
            NIX_CACHE_ATTEMPTS: "8",
            NIX_CACHE_RETRY_DELAY: "5",
            NIX_CACHE_MAX_RETRY_DELAY: "300",
            NIX_CACHE_BATCH_SIZE: "100",
            NIX_CACHE_SET_ASIDE_AFTER: "3",
        };
        const drainService = (description: string, execStart: string) => ({
            description,
            wants: ["network-online.target"],
            after: ["network-online.target"],
            environment,
            serviceConfig: { Type: "oneshot", ExecStart: execStart, Nice: 10, IOSchedulingClass: "idle" },
        });
        assert.deepEqual(config.systemd.services, {
            "nix-cache-drain": drainService("Upload queued Nix builds to the binary cache", "/packages/nix-cache-drain/bin/nix-cache-drain"),
            "nix-cache-retry-failed": drainService(
                "Queue the Nix builds set aside in failed/ again, and upload them",
                "/packages/nix-cache-drain/bin/nix-cache-drain --retry-failed",
            ),
        });
        assert.deepEqual(config.systemd.paths["nix-cache-drain"], {
            wantedBy: ["paths.target"],
            pathConfig: { DirectoryNotEmpty: "/var/lib/nix-cache-push/pending", MakeDirectory: true, DirectoryMode: "0700" },
        });
        assert.deepEqual(config.systemd.timers, {
            "nix-cache-drain": { wantedBy: ["timers.target"], timerConfig: { OnBootSec: "2min", OnUnitInactiveSec: "15min" } },
            "nix-cache-retry-failed": { wantedBy: ["timers.target"], timerConfig: { OnCalendar: "daily", Persistent: true } },
        });
    });

    test("retry.setAsideSchedule = null leaves set-aside paths to the command, with no unit of their own; retry.setAsideAfter reaches the drainer", async () => {
        const { config } = await evaluate(`${VALID} // { retry = { setAsideSchedule = null; setAsideAfter = 5; }; }`);
        assert.deepEqual(Object.keys(config.systemd.services), ["nix-cache-drain"]);
        assert.deepEqual(Object.keys(config.systemd.timers), ["nix-cache-drain"]);
        assert.equal(config.systemd.services["nix-cache-drain"].environment.NIX_CACHE_SET_ASIDE_AFTER, "5");
    });

    test("the hook and the command on PATH are enqueue with the queue set; the scripts are packaged without their own shebang", async () => {
        const withoutShebang = async (script: string) => {
            const source = await readFile(script, "utf8");
            assert.ok(source.startsWith("#!/usr/bin/env bash\n"), `${basename(script)} starts with the shebang the module strips`);
            return source.slice("#!/usr/bin/env bash\n".length);
        };
        const config = (await evaluate(`${VALID} // { queueDir = "/var/lib/builder's-queue"; }`, packagesAsText)).config;
        const enqueue = `export NIX_CACHE_QUEUE_DIR='/var/lib/builder'\\''s-queue'\n${await withoutShebang(ENQUEUE)}`;
        assert.equal(config.nix.settings["post-build-hook"], `${enqueue}/bin/nix-cache-enqueue`);
        assert.deepEqual(config.environment.systemPackages, [enqueue]);
        assert.equal(config.systemd.services["nix-cache-drain"].serviceConfig.ExecStart, `${await withoutShebang(DRAIN)}/bin/nix-cache-drain`);
    });

    test("secrets in the store or as Nix path literals, and bad paths, fail assertions naming the option", async () => {
        const marker = `nix-cache-secret-${randomUUID()}`;
        const literal = workspace.path(marker);
        await writeFile(literal, "not-a-real-key\n");
        const evaluated = await evaluate(`{
            enable = true;
            uploadUrl = "";
            secretKeyFile = ${literal};
            credentialsFile = "${"/nix/store"}/00000000000000000000000000000000-credentials";
            queueDir = "var/lib/queue";
        }`);
        const messages: string[] = evaluated.config.assertions.map((assertion: { assertion: boolean; message: string }) => {
            assert.equal(assertion.assertion, false);
            return assertion.message;
        });
        assert.equal(messages.length, 4, messages.join("\n"));
        assert.match(messages.find((m) => m.startsWith(`${OPTION}.uploadUrl:`)) ?? "", /must be a Nix store URL/);
        assert.match(messages.find((m) => m.startsWith(`${OPTION}.secretKeyFile:`)) ?? "", /Nix path literal, which would copy the secret/);
        assert.match(messages.find((m) => m.startsWith(`${OPTION}.credentialsFile:`)) ?? "", /is in the Nix store, which every local user can read/);
        assert.match(messages.find((m) => m.startsWith(`${OPTION}.queueDir:`)) ?? "", /must be an absolute path/);
        assert.deepEqual(readdirSync("/nix/store").filter((name) => name.includes(marker)), [], "evaluating did not copy the secret into the store");
    });

    test("an s3:// upload URL without a credentials file warns where Nix will look instead", async () => {
        const evaluated = await evaluate(`{ enable = true; uploadUrl = "s3://nix-cache?profile=nixbuilder"; secretKeyFile = "/run/secrets/key"; }`);
        assert.deepEqual(evaluated.config.assertions, []);
        assert.deepEqual(evaluated.config.warnings, [
            `${OPTION}.credentialsFile is not set: Nix's S3 client then looks for the writer's credentials in root's ~/.aws/credentials`,
        ]);
        assert.equal("AWS_SHARED_CREDENTIALS_FILE" in evaluated.config.systemd.services["nix-cache-drain"].environment, false);
    });

    test("the README shows exactly the module's options, and the variables it names are the scripts'", async () => {
        const readme = await readFile(join(__dirname, "..", "README.md"), "utf8");
        const start = readme.indexOf("\n## Pushing from builders\n");
        assert.notEqual(start, -1, "the README has a 'Pushing from builders' section");
        const end = readme.indexOf("\n## ", start + 1);
        const section = readme.slice(start, end === -1 ? undefined : end);
        const shown = new Set([...section.matchAll(/services\.nix-binary-cache\.builder\.[\w.]*\w/g)].map((match) => match[0]));
        assert.deepEqual([...shown].sort(), [...(await evaluate(VALID)).options].sort());
        const scripts = (await readFile(ENQUEUE, "utf8")) + (await readFile(DRAIN, "utf8"));
        for (const variable of new Set(section.match(/\bNIX_CACHE_[A-Z_]+/g))) {
            assert.ok(scripts.includes(`${variable}`), `${variable} is not read by the scripts`);
        }
    });

    test("end to end: Nix with the module's settings queues builds through its hook, its command on PATH queues older paths, its drainer uploads them signed, and its retry service a set-aside one", { timeout: 120_000 }, async () => {
        const signer = await makeSigner(workspace, "module-test-1");
        const queueDir = workspace.path("module-queue");
        const cacheDir = workspace.path("module-cache");
        const packageRoot = workspace.path("packages");
        const given = `{
            enable = true;
            uploadUrl = ${nixString(`file://${cacheDir}`)};
            secretKeyFile = ${nixString(signer.keyFile)};
            queueDir = ${nixString(queueDir)};
        }`;
        const { config } = await evaluate(given, packagesAt(packageRoot));
        assert.deepEqual(config.assertions, []);
        // The packages, where the module expects them: the texts the module gives writeShellApplication,
        // behind the lines writeShellApplication puts first (its PATH aside: here the test's PATH has Nix).
        const asText = (await evaluate(given, packagesAsText)).config;
        const [enqueueText] = asText.environment.systemPackages;
        const drainText = asText.systemd.services["nix-cache-drain"].serviceConfig.ExecStart.replace(/\/bin\/nix-cache-drain$/, "");
        const [enqueuePackage] = config.environment.systemPackages;
        assert.equal(enqueuePackage, join(packageRoot, "nix-cache-enqueue"));
        for (const [name, text] of [["nix-cache-enqueue", enqueueText], ["nix-cache-drain", drainText]]) {
            await mkdir(join(packageRoot, name, "bin"), { recursive: true });
            await writeFile(join(packageRoot, name, "bin", name), `#!/usr/bin/env bash\nset -o errexit -o nounset -o pipefail\n${text}`, { mode: 0o755 });
        }

        // A real Nix whose nix.conf holds the module's nix.settings runs the hook after each build.
        const nixConf = Object.entries<string | number>(config.nix.settings)
            .map(([name, value]) => `${name} = ${value}\n`)
            .join("");
        const builder = await NixWorkspace.create(`substituters =\nsandbox = false\n${nixConf}`);
        const built = await buildPaths(builder, 2);
        // Built before, without the hook, and queued by hand with the command the module puts on PATH.
        const older = await buildPaths(workspace, 1);
        const setAside = await buildPaths(workspace, 1);
        try {
            assert.deepEqual(await queueState(queueDir), onlyPending(built.paths));
            const byHand = await workspace.run(join(enqueuePackage, "bin", "nix-cache-enqueue"), older.paths);
            assert.deepEqual([byHand.status, byHand.stderr], [0, ""]);
            assert.deepEqual(await queueState(queueDir), onlyPending([...built.paths, ...older.paths]));
            // The drainer service as systemd would start it: its command with its environment.
            const start = async (unit: string) => {
                const service = config.systemd.services[unit];
                const [command, ...args] = service.serviceConfig.ExecStart.split(" ");
                return runWith(workspace, service.environment, command, args);
            };
            const result = await start("nix-cache-drain");
            assert.equal(result.status, 0, result.stderr);
            assert.deepEqual(await queueState(queueDir), onlyPending([]));
            await assertCacheHoldsExactly(workspace, cacheDir, [...built.paths, ...older.paths], signer);

            // A path set aside in failed/ is uploaded by the retry service.
            await writeFile(join(queueDir, "failed", basename(setAside.paths[0]!)), `${setAside.paths[0]}\n`);
            const retried = await start("nix-cache-retry-failed");
            assert.equal(retried.status, 0, retried.stderr);
            assert.deepEqual(await queueState(queueDir), onlyPending([]));
            await assertCacheHoldsExactly(workspace, cacheDir, [...built.paths, ...older.paths, ...setAside.paths], signer);
        } finally {
            await deletePaths(workspace, setAside);
            await deletePaths(workspace, older);
            await deletePaths(builder, built);
            await builder.remove();
        }
    });
});
