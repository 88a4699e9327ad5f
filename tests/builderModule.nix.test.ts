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
import { renderCollectorEnvironment } from "../lib/collectorConfig";
import { parseInvocation } from "../lib/gc/cli";
import { docSection, readDoc } from "./docSection";
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
const COLLECTOR_PACKAGE = join(__dirname, "..", "nixos", "lib", "nix-cache-gc-package.nix");

const optionsIn = (section: string) => new Set([...section.matchAll(/services\.nix-binary-cache\.builder\.[\w.]*\w/g)].map((match) => match[0]));

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
      mkMerge = contents: { _type = "merge"; inherit contents; };
      literalExpression = text: { _type = "literalExpression"; inherit text; };
      optionalAttrs = condition: attrs: if condition then attrs else { };
      optional = condition: element: if condition then [ element ] else [ ];
      types = {
        str = "str"; path = "path"; package = "package"; either = a: b: "\${a} or \${b}"; nullOr = type: "null or \${type}";
        listOf = type: "list of \${type}"; ints.positive = "positive";
      };
      concatStringsSep = builtins.concatStringsSep;
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
      # A package is the file that defines it, so that the default shows which one the module builds.
      callPackage = file: overrides: { outPath = toString file; };
    };
    # nixpkgs nixos/lib/utils.nix, escapeSystemdExecArg(s), for strings.
    utils.escapeSystemdExecArgs = args: builtins.concatStringsSep " "
      (map (arg: builtins.replaceStrings [ "%" "$" ] [ "%%" "$$" ] (builtins.toJSON arg)) args);
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
      inherit lib pkgs utils;
      config = {
        services.nix-binary-cache.builder = withDefaults declared (${given});
        nix.package = "nix";
      };
    };
    # The module's config is mkMerge [ (mkIf enable ...) (mkIf collector.enable ...) ]; a part that
    # is off is not evaluated, as the module system leaves it (its required options may be unset).
    part = index: let it = builtins.elemAt module.config.contents index; in if it.condition then it.content else null;
  in {
    options = optionPaths [ ] module.options;
    enabled = (builtins.elemAt module.config.contents 0).condition;
    config = part 0;
    collectorEnabled = (builtins.elemAt module.config.contents 1).condition;
    collector = part 1;
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
            "batchSize", "collector.enable", "collector.environmentFile", "collector.extraArgs", "collector.package",
            "collector.randomizedDelay", "collector.schedule", "credentialsFile", "enable", "queueDir", "retry.attempts", "retry.initialDelay",
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

    describe("collector", () => {
        const COLLECTOR = `{ collector = { enable = true; environmentFile = "/var/lib/nix-cache-secrets/collector.env"; }; }`;
        // systemd.service(5), "Command lines" (systemd/systemd man/systemd.service.xml): "${FOO}" as a
        // word of its own is replaced by the variable's value as exactly one argument, whitespace
        // included; the variables come from EnvironmentFile= (systemd.exec(5)), read before the
        // service's user is switched to (its DynamicUser never needs to read the file).
        const COMMAND = `${COLLECTOR_PACKAGE}/bin/nix-cache-gc --endpoint \${NIX_CACHE_GC_ENDPOINT} --bucket \${NIX_CACHE_GC_BUCKET}`
            + " --region ${NIX_CACHE_GC_REGION} --keep-days ${NIX_CACHE_GC_KEEP_DAYS} --grace-hours ${NIX_CACHE_GC_GRACE_HOURS}";

        test("off by default, and independent of pushing: alone it gives exactly nix-cache-gc.service and its weekly timer", async () => {
            assert.equal((await evaluate(VALID)).collectorEnabled, false);
            const evaluated = await evaluate(COLLECTOR);
            assert.deepEqual([evaluated.enabled, evaluated.collectorEnabled], [false, true]);
            assert.deepEqual(evaluated.collector, {
                assertions: [],
                systemd: {
                    services: {
                        "nix-cache-gc": {
                            description: "Delete from the Nix binary cache what no rooted closure needs",
                            wants: ["network-online.target"],
                            after: ["network-online.target"],
                            // The command appends nix-cache-gc: its cache lands in the CacheDirectory.
                            environment: { XDG_CACHE_HOME: "/var/cache" },
                            serviceConfig: {
                                Type: "oneshot",
                                ExecStart: COMMAND,
                                EnvironmentFile: "/var/lib/nix-cache-secrets/collector.env",
                                DynamicUser: true,
                                CacheDirectory: "nix-cache-gc",
                                Nice: 10,
                                IOSchedulingClass: "idle",
                                CapabilityBoundingSet: "",
                                LockPersonality: true,
                                PrivateDevices: true,
                                ProtectClock: true,
                                ProtectControlGroups: true,
                                ProtectHome: true,
                                ProtectHostname: true,
                                ProtectKernelLogs: true,
                                ProtectKernelModules: true,
                                ProtectKernelTunables: true,
                                RestrictAddressFamilies: ["AF_UNIX", "AF_INET", "AF_INET6"],
                                RestrictNamespaces: true,
                                RestrictRealtime: true,
                                SystemCallArchitectures: "native",
                                UMask: "0077",
                            },
                        },
                    },
                    timers: {
                        "nix-cache-gc": {
                            wantedBy: ["timers.target"],
                            timerConfig: { OnCalendar: "weekly", RandomizedDelaySec: "1h", Persistent: true },
                        },
                    },
                },
            });
        });

        test("with pushing on too, the drainer's units stay as they are beside the collector's", async () => {
            const evaluated = await evaluate(`${VALID} // ${COLLECTOR}`);
            assert.deepEqual([evaluated.enabled, evaluated.collectorEnabled], [true, true]);
            assert.deepEqual(Object.keys(evaluated.config.systemd.services).sort(), ["nix-cache-drain", "nix-cache-retry-failed"]);
            assert.deepEqual(Object.keys(evaluated.collector.systemd.services), ["nix-cache-gc"]);
        });

        test("schedule = null leaves the service to `systemctl start`, with no timer; schedule, randomizedDelay and package reach the units", async () => {
            const unscheduled = (await evaluate(`${COLLECTOR} // { collector = { enable = true; environmentFile = "/run/gc.env"; schedule = null; }; }`)).collector;
            assert.deepEqual(unscheduled.systemd.timers, {});
            assert.deepEqual(Object.keys(unscheduled.systemd.services), ["nix-cache-gc"]);
            const custom = (await evaluate(`{ collector = {
                enable = true; environmentFile = "/run/gc.env"; schedule = "Sun 03:00"; randomizedDelay = "15min";
                package = { outPath = "/nix/store/00000000000000000000000000000000-nix-cache-gc-0.1.0"; };
            }; }`)).collector;
            assert.deepEqual(custom.systemd.timers["nix-cache-gc"].timerConfig, { OnCalendar: "Sun 03:00", RandomizedDelaySec: "15min", Persistent: true });
            assert.ok(
                custom.systemd.services["nix-cache-gc"].serviceConfig.ExecStart.startsWith("/nix/store/00000000000000000000000000000000-nix-cache-gc-0.1.0/bin/nix-cache-gc --endpoint "),
            );
        });

        test("extraArgs are escaped for systemd, and with the stack's collectorEnv the command line is the one the collector parses", async () => {
            const root = "/nix/store/00000000000000000000000000000000-nixos-system-builder";
            const { collector } = await evaluate(`{ collector = {
                enable = true; environmentFile = "/run/gc.env";
                extraArgs = [ "--root" ${nixString(root)} "--json" "--now" "2027-01-01T00:00:00Z" ];
            }; }`);
            const execStart: string = collector.systemd.services["nix-cache-gc"].serviceConfig.ExecStart;
            // nixpkgs nixos/lib/utils.nix escapeSystemdExecArg: JSON-quoted, % and $ doubled.
            assert.equal(execStart, `${COMMAND} "--root" "${root}" "--json" "--now" "2027-01-01T00:00:00Z"`);

            // The stack's collectorEnv, read as EnvironmentFile= reads NAME="value" lines (systemd.exec(5):
            // double quotes removed, backslash escapes inside them undone).
            const file = renderCollectorEnvironment({
                endpoint: "https://s3.example.org:9000",
                bucket: "nix-cache",
                region: "us-east-1",
                keepDays: 30,
                graceHours: 24,
                accessKey: "nixcollector",
                secretKey: "not-a-real-secret",
            });
            const collectorEnv: Record<string, string> = Object.fromEntries(
                [...file.matchAll(/^(\w+)="((?:[^"\\]|\\.)*)"$/gm)].map(([, name, value]) => [name!, value!.replace(/\\(.)/g, "$1")]),
            );
            const used = [...execStart.matchAll(/\$\{(\w+)\}/g)].map(([, name]) => name!);
            assert.deepEqual(used.sort(), Object.keys(collectorEnv).filter((name) => name.startsWith("NIX_CACHE_GC_")).sort());
            // What systemd passes, by the rules cited above.
            const [command, ...argv] = [...execStart.matchAll(/"(?:[^"\\]|\\.)*"|\S+/g)].map(([word]) => {
                if (word.startsWith('"')) {
                    return (JSON.parse(word) as string).replace(/\$\$/g, "$").replace(/%%/g, "%");
                }
                const variable = /^\$\{(\w+)\}$/.exec(word)?.[1];
                return variable === undefined ? word : collectorEnv[variable]!;
            });
            assert.equal(command, `${COLLECTOR_PACKAGE}/bin/nix-cache-gc`);
            const invocation = await parseInvocation(argv, collectorEnv);
            assert.equal(invocation.location.endpoint.href, "https://s3.example.org:9000/");
            assert.deepEqual([invocation.location.accessKey, invocation.location.secretKey], ["nixcollector", "not-a-real-secret"]);
            assert.deepEqual(
                [invocation.location.bucket, invocation.location.region, invocation.keepDays, invocation.graceHours, invocation.roots, invocation.json],
                ["nix-cache", "us-east-1", 30, 24, [root], true],
            );
            assert.equal(invocation.now.toISOString(), "2027-01-01T00:00:00.000Z");
        });

        test("an environment file in the store, as a Nix path literal or relative fails an assertion naming the option", async () => {
            const marker = `nix-cache-gc-env-${randomUUID()}`;
            const literal = workspace.path(marker);
            await writeFile(literal, "AWS_SECRET_ACCESS_KEY=not-a-real-secret\n");
            const messages = async (environmentFile: string): Promise<string[]> => {
                const { collector } = await evaluate(`{ collector = { enable = true; environmentFile = ${environmentFile}; }; }`);
                return collector.assertions.map((assertion: { assertion: boolean; message: string }) => {
                    assert.equal(assertion.assertion, false);
                    return assertion.message;
                });
            };
            const named = (pattern: RegExp) => new RegExp(`^${OPTION.replace(/\./g, "\\.")}\\.collector\\.environmentFile: .*${pattern.source}`);
            const inStore = await messages(`"${"/nix/store"}/00000000000000000000000000000000-collector.env"`);
            assert.equal(inStore.length, 1);
            assert.match(inStore[0]!, named(/is in the Nix store, which every local user can read/));
            const pathLiteral = await messages(literal);
            assert.equal(pathLiteral.length, 1);
            assert.match(pathLiteral[0]!, named(/Nix path literal, which would copy the secret/));
            const relative = await messages(`"secrets/collector.env"`);
            assert.equal(relative.length, 1);
            assert.match(relative[0]!, named(/must be an absolute path/));
            assert.deepEqual(readdirSync("/nix/store").filter((name) => name.includes(marker)), [], "evaluating did not copy the secret into the store");
        });
    });

    test("docs/builders.md shows exactly the module's options (the collector's in docs/retention.md), and the variables it names are the scripts'", async () => {
        const section = readDoc("docs/builders.md");
        const collectorSection = docSection("docs/retention.md", "## Running the collector on NixOS");
        const options: string[] = (await evaluate(VALID)).options;
        const isCollector = (name: string) => name.startsWith(`${OPTION}.collector.`);
        assert.deepEqual([...optionsIn(section)].sort(), options.filter((name) => !isCollector(name)).sort());
        assert.deepEqual([...optionsIn(collectorSection)].sort(), options.filter(isCollector).sort());
        const { collector } = await evaluate(`{ collector = { enable = true; environmentFile = "/run/secrets/collector.env"; }; }`);
        const execStart: string = collector.systemd.services["nix-cache-gc"].serviceConfig.ExecStart;
        const variables = (text: string) => [...new Set(text.match(/\bNIX_CACHE_GC_[A-Z_]+/g))].sort();
        assert.deepEqual(variables(collectorSection), variables(execStart));
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
