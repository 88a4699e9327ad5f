// The NixOS side, checked with a real Nix (Debian's nix-instantiate; no nixpkgs is available here):
// every .nix file parses; the module's reading of the settings file evaluates against JSON written
// from the program's real outputs; the module's options and body evaluate with a minimal stand-in
// for nixpkgs' `lib`; the README and docs/ use the real option names; the flake exposes what it promises;
// and a key rotation keeps old signatures valid for real clients, Nix 2.8 and 2.34, substituting
// from the rotated stack's bucket on a real S3 server (Ceph RGW, tests/rgwCache.ts).
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { cp, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { after, before, describe, test } from "node:test";
import { buildStack } from "../stack";
import { allDocs } from "./docSection";
import { installMocks, resetRegistrations, settle, valueOf } from "./harness";
import { NIX_CLIENTS } from "./nixClients";
import { NEEDS_NIX, NixWorkspace, programOutputs, EXAMPLE_CONFIG, type ProgramOutputs } from "./nixSupport";
import { uploadAsWriter, withFilledRgwCache } from "./rgwCache";
import { NEEDS_RGW, withRgwCluster } from "./rgwCluster";

const ROOT = join(__dirname, "..");
const READ_SETTINGS = join(ROOT, "nixos", "lib", "read-settings.nix");
const MODULE = join(ROOT, "nixos", "substituter.nix");
const PRIVATE_CA = readFileSync(join(__dirname, "fixtures", "private-ca.pem"), "utf8");
// What EXAMPLE_CONFIG (minio:minioServer s3.example.org:9000 over TLS) must give, written by hand.
const SUBSTITUTER = "https://s3.example.org:9000/nix-cache";
/** The module's options, written out by hand. */
const OPTIONS = ["caCertificateFile", "enable", "extraTrustedPublicKeys", "settingsFile"].map(
    (name) => `services.nix-binary-cache.client.${name}`,
);
/** A well-formed key of a generation that does not exist anywhere: 32 bytes of 9s. */
const EXTRA_KEY = `s3.example.org-3:${Buffer.alloc(32, 9).toString("base64")}`;

/** A Nix string literal (JSON's escapes are Nix's, except that `$` must not start `${`). */
const nixString = (text: string) => JSON.stringify(text).replace(/\$/g, "\\$");

function nixFiles(dir: string): string[] {
    return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
        if (entry.name === "node_modules" || entry.name.startsWith(".")) {
            return [];
        }
        const path = join(dir, entry.name);
        return entry.isDirectory() ? nixFiles(path) : entry.name.endsWith(".nix") ? [path] : [];
    });
}

/** The ```nix blocks of README.md and docs/ (indented ones, as in a numbered list, included). */
function documentedNixBlocks(): string[] {
    return [...allDocs().values()].flatMap((text) =>
        [...text.matchAll(/^( *)```nix\n([\s\S]*?)^\1```$/gm)].map((match) => match[2]!.replace(new RegExp(`^${match[1]}`, "gm"), "")),
    );
}

/**
 * The module evaluated with the few `lib` functions it uses, reduced to plain data: options become
 * `{ _type = "option"; ... }`, `mkIf` becomes `{ _type = "if"; condition; content; }`. The module
 * system's merging and type checks are not reproduced; nixpkgs is not available here.
 */
const moduleExpression = (clientConfigFile: string) => `
  let
    lib = {
      mkOption = attrs: attrs // { _type = "option"; };
      mkEnableOption = name: { _type = "option"; default = false; description = "Whether to enable \${name}."; };
      mkIf = condition: content: { _type = "if"; inherit condition content; };
      optional = condition: item: if condition then [ item ] else [ ];
      literalExpression = text: { _type = "literalExpression"; inherit text; };
      types = { path = "path"; str = "str"; listOf = type: "list of \${type}"; nullOr = type: "null or \${type}"; };
    };
    pkgs.writeText = name: text: { writeText = name; inherit text; };
    client = builtins.fromJSON (builtins.readFile ${nixString(clientConfigFile)});
    module = import ${nixString(MODULE)} { inherit lib pkgs; config.services.nix-binary-cache.client = client; };
    optionPaths = prefix: set: builtins.concatLists (map
      (name:
        let value = set.\${name}; path = prefix ++ [ name ]; in
        if (value._type or null) == "option" then [ (builtins.concatStringsSep "." path) ] else optionPaths path value)
      (builtins.attrNames set));
  in {
    options = optionPaths [ ] module.options;
    enabled = module.config.condition;
    config = if module.config.condition then module.config.content else null;
  }`;

describe("the NixOS module and flake, evaluated by Nix", NEEDS_NIX, () => {
    let nix: NixWorkspace;
    before(async () => {
        nix = await NixWorkspace.create();
    });
    after(() => nix?.remove());

    const evaluate = async (expression: string): Promise<any> =>
        JSON.parse(await nix.ok("nix-instantiate", ["--eval", "--strict", "--json", "-E", expression]));

    let fileCount = 0;
    /** A JSON file in the workspace, as `pulumi stack output --json` writes it (pretty-printed). */
    const jsonFile = async (value: unknown): Promise<string> => {
        const file = nix.path(`settings-${++fileCount}.json`);
        await writeFile(file, `${JSON.stringify(value, null, 4)}\n`);
        return file;
    };
    const readSettings = async (file: string, extraTrustedPublicKeys: string[] = []) =>
        evaluate(`import ${nixString(READ_SETTINGS)} {
            file = ${nixString(file)};
            extraTrustedPublicKeys = builtins.fromJSON ${nixString(JSON.stringify(extraTrustedPublicKeys))};
        }`);

    test("every .nix file in the repository parses", async () => {
        const files = nixFiles(ROOT);
        assert.ok(files.some((file) => file.endsWith("flake.nix")) && files.includes(MODULE) && files.includes(READ_SETTINGS));
        for (const file of files) {
            const result = await nix.run("nix-instantiate", ["--parse", file]);
            assert.equal(result.status, 0, `${relative(ROOT, file)} does not parse:\n${result.stderr}`);
        }
    });

    test("reads the JSON written from the program's nixSettings output", async () => {
        const program = await programOutputs();
        assert.deepEqual(await readSettings(await jsonFile(program.nixSettings)), {
            substituters: [SUBSTITUTER],
            trustedPublicKeys: [program.publicKey],
            caCertificate: null,
            problems: [],
        });
    });

    test("reads previous keys of a rotation, and adds the extra keys after the file's", async () => {
        const previous = `s3.example.org-1:${Buffer.alloc(32, 1).toString("base64")}`;
        const program = await programOutputs({
            "nix-cache:keyName": "s3.example.org-2",
            "nix-cache:previousPublicKeys": JSON.stringify([previous]),
        });
        const read = await readSettings(await jsonFile(program.nixSettings), [EXTRA_KEY]);
        assert.deepEqual(read.trustedPublicKeys, [program.publicKey, previous, EXTRA_KEY]);
        assert.deepEqual(read.problems, []);
    });

    test("reads the CA certificate from the program's nixosClient output", async () => {
        await installMocks();
        resetRegistrations();
        const outputs = buildStack({ ...EXAMPLE_CONFIG, "nix-cache:caCertificate": PRIVATE_CA });
        await settle(outputs);
        const read = await readSettings(await jsonFile(await valueOf(outputs.nixosClient)));
        assert.deepEqual(read, {
            substituters: [SUBSTITUTER],
            trustedPublicKeys: [await valueOf(outputs.publicKey)],
            caCertificate: PRIVATE_CA,
            problems: [],
        });
    });

    test("reports each wrong shape with a message that says how to write the file", async () => {
        const key = `s3.example.org-1:${Buffer.alloc(32, 1).toString("base64")}`;
        const good = { "extra-substituters": [SUBSTITUTER], "extra-trusted-public-keys": [key] };
        const hint = "write it with: pulumi stack output --json nixSettings > nix-cache.json";
        const cases: [string, unknown, (where: string) => string[]][] = [
            ["a list", [SUBSTITUTER], (where) => [`${where}: must hold a JSON object; ${hint}`]],
            ["every output of the stack", { nixSettings: good, publicKey: key }, (where) => [
                `${where}: holds every output of the stack; write only one: ${hint}`,
            ]],
            ["no substituters", { "extra-trusted-public-keys": [key] }, (where) => [`${where}: lacks "extra-substituters"; ${hint}`]],
            ["no keys", { "extra-substituters": [SUBSTITUTER] }, (where) => [`${where}: lacks "extra-trusted-public-keys"; ${hint}`]],
            ["an empty key list", { ...good, "extra-trusted-public-keys": [] }, (where) => [
                `${where}: "extra-trusted-public-keys" must be a non-empty list of strings`,
            ]],
            ["a string instead of a list", { ...good, "extra-substituters": SUBSTITUTER }, (where) => [
                `${where}: "extra-substituters" must be a non-empty list of strings`,
            ]],
            ["a substituter without a scheme", { ...good, "extra-substituters": ["s3.example.org:9000/nix-cache"] }, (where) => [
                `${where}: "extra-substituters" has "s3.example.org:9000/nix-cache", which is not an http(s) URL`,
            ]],
            ["a truncated key", { ...good, "extra-trusted-public-keys": [key, "s3.example.org-1:AAAA"] }, (where) => [
                `${where}: "extra-trusted-public-keys" has "s3.example.org-1:AAAA", which is not a Nix public key (NAME:BASE64)`,
            ]],
            ["a CA certificate that is not PEM", { ...good, caCertificate: "/etc/ssl/ca.pem" }, (where) => [
                `${where}: "caCertificate" must be PEM certificate text or null`,
            ]],
        ];
        for (const [what, content, expected] of cases) {
            const file = await jsonFile(content);
            const where = `services.nix-binary-cache.client.settingsFile (${file})`;
            assert.deepEqual((await readSettings(file)).problems, expected(where), what);
        }
        const missing = nix.path("no-such-file.json");
        assert.deepEqual((await readSettings(missing)).problems, [
            `services.nix-binary-cache.client.settingsFile (${missing}): the file does not exist; ${hint}`,
        ]);
        // What `pulumi stack output ... > nix-cache.json` leaves when pulumi fails: an empty file.
        for (const [what, content] of [["empty", ""], ["blank", "\n"]]) {
            const empty = nix.path(`${what}.json`);
            await writeFile(empty, content);
            assert.deepEqual((await readSettings(empty)).problems, [
                `services.nix-binary-cache.client.settingsFile (${empty}): the file is empty (did the pulumi command that writes it fail?); ${hint}`,
            ], what);
        }
        assert.deepEqual((await readSettings(await jsonFile(good), ["not-a-key"])).problems, [
            'services.nix-binary-cache.client.extraTrustedPublicKeys: "not-a-key" is not a Nix public key (NAME:BASE64)',
        ]);
    });

    test("the module sets nix.settings and the trust store from the file and its options", async () => {
        const program = await programOutputs();
        const caFile = nix.path("ca.pem");
        const config = await jsonFile({
            enable: true,
            settingsFile: await jsonFile({ ...program.nixSettings, caCertificate: PRIVATE_CA }),
            extraTrustedPublicKeys: [EXTRA_KEY],
            caCertificateFile: caFile,
        });
        const evaluated = await evaluate(moduleExpression(config));
        assert.deepEqual(evaluated.options, OPTIONS);
        assert.equal(evaluated.enabled, true);
        assert.deepEqual(evaluated.config, {
            assertions: [],
            nix: {
                settings: {
                    "extra-substituters": [SUBSTITUTER],
                    "extra-trusted-public-keys": [program.publicKey, EXTRA_KEY],
                    "trusted-substituters": [SUBSTITUTER],
                },
            },
            security: {
                pki: { certificateFiles: [caFile, { writeText: "nix-binary-cache-ca.pem", text: PRIVATE_CA }] },
            },
        });
    });

    test("the module turns reading problems into failed assertions, and does nothing when disabled", async () => {
        const wrong = await jsonFile({ "extra-substituters": [SUBSTITUTER] });
        const evaluated = await evaluate(moduleExpression(await jsonFile({ enable: true, settingsFile: wrong, extraTrustedPublicKeys: [], caCertificateFile: null })));
        assert.deepEqual(evaluated.config.assertions, [
            {
                assertion: false,
                message:
                    `services.nix-binary-cache.client.settingsFile (${wrong}): lacks "extra-trusted-public-keys"; ` +
                    "write it with: pulumi stack output --json nixSettings > nix-cache.json",
            },
        ]);
        assert.deepEqual(evaluated.config.security.pki.certificateFiles, []);
        const disabled = await evaluate(moduleExpression(await jsonFile({ enable: false })));
        assert.deepEqual([disabled.enabled, disabled.config], [false, null]);
    });

    test("the NixOS examples of the README and docs/ use exactly the module's option names, and parse", async () => {
        const blocks = documentedNixBlocks().filter((block) => block.includes("nix-binary-cache.client"));
        assert.ok(blocks.length > 1, "the README and docs/nixos-clients.md should show the module in ```nix blocks");
        const used = new Set(blocks.flatMap((block) => [...block.matchAll(/services\.nix-binary-cache\.client\.(\w+)/g)].map((m) => m[0])));
        const nested = blocks.filter((block) => /nix-binary-cache(\.client)?\s*=/.test(block));
        assert.deepEqual(nested, [], "write options in full (services.nix-binary-cache.client.NAME = ...) so they can be checked");
        const evaluated = await evaluate(moduleExpression(await jsonFile({ enable: false })));
        assert.deepEqual([...used].filter((name) => !evaluated.options.includes(name)), [], "options the module does not have");
        assert.deepEqual(evaluated.options.filter((name: string) => !used.has(name)), [], "options the docs do not show");
        for (const block of blocks) {
            const file = nix.path(`documented-${++fileCount}.nix`);
            await writeFile(file, block);
            const result = await nix.run("nix-instantiate", ["--parse", file]);
            assert.equal(result.status, 0, `documented block does not parse:\n${block}\n${result.stderr}`);
        }
    });

    test("the flake exposes the modules as files of this repository and a dev shell per system", async () => {
        const evaluated = await evaluate(`
          let
            flake = import ${nixString(join(ROOT, "flake.nix"))};
            systems = [ "x86_64-linux" "aarch64-linux" ];
            bySystem = f: builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);
            packages = system: {
              mkShell = args: args;
              nodejs_22 = "nodejs_22"; pulumi-bin = "pulumi-bin"; minio-client = "minio-client";
            };
            nixpkgs = {
              lib.genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
              legacyPackages = bySystem packages;
            };
            outputs = flake.outputs { self = outputs; inherit nixpkgs; };
          in {
            inputs = flake.inputs;
            modules = builtins.mapAttrs (name: module: toString module) outputs.nixosModules;
            shells = builtins.mapAttrs (system: shells: shells.default.packages) outputs.devShells;
          }`);
        assert.deepEqual(evaluated.inputs, { nixpkgs: { url: "github:NixOS/nixpkgs/nixos-25.05" } });
        assert.equal(evaluated.modules.substituter, MODULE);
        for (const [name, file] of Object.entries<string>(evaluated.modules)) {
            assert.ok(nixFiles(ROOT).includes(file), `nixosModules.${name} should be a .nix file of this repository`);
        }
        const tools = ["nodejs_22", "pulumi-bin", "minio-client"];
        assert.deepEqual(evaluated.shells, { "x86_64-linux": tools, "aarch64-linux": tools });
    });
});

describe("a key rotation, as a real Nix client sees it (served from Ceph RGW)", [NEEDS_NIX, NEEDS_RGW].find((o) => o.skip) ?? {}, () => {
    const rgw = withRgwCluster();
    let old: ProgramOutputs;
    // The bucket deployed by the rotated stack; its paths still carry only the old key's signatures.
    const filled = withFilledRgwCache(rgw, async () => {
        old = await programOutputs({ "nix-cache:keyName": "s3.example.org-1" });
        return {
            config: { "nix-cache:keyName": "s3.example.org-2", "nix-cache:previousPublicKeys": JSON.stringify([old.publicKey]) },
            signer: old,
        };
    });

    for (const { version, options, refusal, create } of NIX_CLIENTS) {
        test(`by Nix ${version}: old signatures stay valid while the old key is trusted, and re-signing in place makes them valid under the new key`, options, async (t) => {
            const copyTrusting = async (keys: string[]) => {
                const client = await create(t);
                return client.run("nix", [
                    "copy", "--from", filled.cache.substituter, "--to", client.store,
                    "--option", "trusted-public-keys", keys.join(" "), "--option", "require-sigs", "true", filled.closure.top,
                ]);
            };

            const trusted = filled.cache.program.nixSettings["extra-trusted-public-keys"];
            assert.deepEqual(trusted, [filled.cache.program.publicKey, old.publicKey]);
            const accepted = await copyTrusting(trusted);
            assert.equal(accepted.status, 0, accepted.stderr);

            const newOnly = await copyTrusting([filled.cache.program.publicKey]);
            assert.notEqual(newOnly.status, 0);
            assert.match(newOnly.stderr, refusal);

            // Why the settings refuse a previous key under the current name: Nix keeps the first
            // key of each name, so a same-named key listed first hides the one that signed.
            const sameName = `s3.example.org-1:${Buffer.alloc(32, 5).toString("base64")}`;
            const shadowed = await copyTrusting([sameName, old.publicKey]);
            assert.notEqual(shadowed.status, 0);
            assert.match(shadowed.stderr, refusal);

            // The re-signing step of docs/operations.md's key rotation, on a copy of the bucket's files (Debian's Nix 2.8 has no
            // s3:// store), whose narinfos the writer then uploads over the served ones; the old
            // narinfos go back when the test ends, for the other version's test.
            const resignedDir = filled.builder.path(`resigned-${version}`);
            await cp(filled.pushed, resignedDir, { recursive: true });
            const newKeyFile = await filled.builder.writePrivateFile(`rotated-${version}.key`, filled.cache.program.secretKey);
            await filled.builder.ok("nix", ["store", "sign", "--store", `file://${resignedDir}`, "--key-file", newKeyFile, "--recursive", filled.closure.top]);
            t.after(() => uploadAsWriter(rgw, filled.cache, filled.pushed));
            await uploadAsWriter(rgw, filled.cache, resignedDir);
            const resigned = await copyTrusting([filled.cache.program.publicKey]);
            assert.equal(resigned.status, 0, resigned.stderr);
        });
    }
});
