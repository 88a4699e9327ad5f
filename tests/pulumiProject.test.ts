// Pulumi.yaml as the Pulumi CLI reads it. The mock engine never reads Pulumi.yaml, so the CLI's
// rules are restated here from its source and checked against the files a user runs with:
// - pulumi/pulumi sdk/go/common/workspace/config.go, mergeConfig: a declared project key that the
//   stack does not set and that has neither `default` nor `value` goes on the "Stack ... is missing
//   configuration value(s)" list, whatever its type (pulumi/pulumi issue 21797); a default is set
//   on the stack as plain text (`if !foundOnStack && (hasValue || hasDefault)`: stackConfig.Set), so
//   the program sees a declared default exactly as if the stack had set it; validateStackConfigValue
//   then refuses any plain value of a key declared `secret: true` ("must be encrypted as it's
//   secret"), so a secret cannot have a default.
// - pulumi/pulumi sdk/go/common/workspace/project.go, ValidateConfigValue: "integer" accepts whole
//   numbers and strings that parse as integers, "boolean" true/false or "true"/"false", "string"
//   strings, "array" a list whose items validate; Project.Validate checks declared defaults so.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { DEFAULT_ZSTD_COMPRESSION_LEVEL, parseSettings, SETTING_NAMES, SETTINGS_WITHOUT_DEFAULT } from "../lib/settings";
import { docSection } from "./docSection";

interface Declaration {
    type?: string;
    items?: { type: string };
    default?: unknown;
    value?: unknown;
    secret?: boolean;
}

interface Project {
    name: string;
    config: Record<string, Declaration>;
}

const ROOT = join(__dirname, "..");
const project = parse(readFileSync(join(ROOT, "Pulumi.yaml"), "utf8")) as Project;
const readme = readFileSync(join(ROOT, "README.md"), "utf8");

/** ValidateConfigValue of project.go, for the types this project declares. */
function validValue(declaration: Declaration, value: unknown): boolean {
    switch (declaration.type) {
        case "string":
            return typeof value === "string";
        case "integer":
            return Number.isInteger(value) || (typeof value === "string" && /^[+-]?[0-9]+$/.test(value));
        case "boolean":
            return typeof value === "boolean" || value === "true" || value === "false";
        case "array":
            return Array.isArray(value) && declaration.items !== undefined && value.every((item) => validValue(declaration.items!, item));
        default:
            return false;
    }
}

/** What the CLI says before the program starts, for a stack that sets `stack` (key -> value). */
function cliProblems(declared: Project, stack: Record<string, { value: unknown; secure: boolean }>): string[] {
    const problems: string[] = [];
    const missing: string[] = [];
    for (const [name, declaration] of Object.entries(declared.config)) {
        const key = name.includes(":") ? name : `${declared.name}:${name}`;
        const set = stack[key];
        const hasDefault = declaration.default !== undefined || declaration.value !== undefined;
        if (set === undefined && !hasDefault && key.startsWith(`${declared.name}:`)) {
            missing.push(name);
            continue;
        }
        const effective = set ?? { value: declaration.default ?? declaration.value, secure: false };
        if (declaration.secret === true && !effective.secure) {
            problems.push(`configuration key '${name}' must be encrypted as it's secret`);
        }
        if (declaration.type !== undefined && !validValue(declaration, effective.value)) {
            problems.push(`configuration key '${name}' must be of type '${declaration.type}'`);
        }
    }
    if (missing.length > 0) {
        problems.unshift(`missing configuration value(s) ${missing.sort().join(", ")}`);
    }
    return problems;
}

/** The config the program gets from the CLI: the stack's values, then each declared default the stack lacks (mergeConfig). */
function configSeenByProgram(declared: Project, stack: Record<string, string>): Record<string, string> {
    const seen = { ...stack };
    for (const [name, declaration] of Object.entries(declared.config)) {
        const key = name.includes(":") ? name : `${declared.name}:${name}`;
        const fallback = declaration.default ?? declaration.value;
        if (seen[key] === undefined && fallback !== undefined) {
            // createConfigValue: primitives as their text, anything else as JSON.
            seen[key] = typeof fallback === "object" ? JSON.stringify(fallback) : String(fallback);
        }
    }
    return seen;
}

/** The config the README's main command sets: `pulumi config set [--secret] KEY [VALUE]` steps. */
function mainCommandConfig(): Record<string, { value: unknown; secure: boolean }> {
    const lines = readme.split("\n");
    const command = lines[lines.indexOf("# the main job: create the cache on your MinIO server") + 1] ?? "";
    assert.match(command, /pulumi up$/, "the README's main command ends with pulumi up");
    const config: Record<string, { value: unknown; secure: boolean }> = {};
    for (const step of command.split("&&").map((part) => part.trim().split(/\s+/))) {
        if (step[0] !== "pulumi" || step[1] !== "config" || step[2] !== "set") {
            continue;
        }
        const args = step.slice(3);
        const words = args.filter((arg) => !arg.startsWith("--"));
        // `pulumi config set --secret KEY` with no value prompts for it: the user types a string.
        config[words[0]!] = { value: words[1] ?? "typed at the prompt", secure: args.includes("--secret") };
    }
    return config;
}

describe("Pulumi.yaml as the Pulumi CLI reads it", () => {
    test("the restated CLI rules catch a typed key without a default (pulumi's own TestStackConfigErrorsWhenMissingStackValueForConfigTypeWithNoDefault)", () => {
        const declared: Project = { name: "test", config: { values: { type: "array", items: { type: "string" } } } };
        assert.deepEqual(cliProblems(declared, {}), ["missing configuration value(s) values"]);
        const secretWithDefault: Project = { name: "test", config: { token: { type: "string", secret: true, default: "" } } };
        assert.deepEqual(cliProblems(secretWithDefault, {}), ["configuration key 'token' must be encrypted as it's secret"]);
        assert.deepEqual(cliProblems({ name: "test", config: { n: { type: "integer" } } }, { "test:n": { value: "x", secure: false } }), [
            "configuration key 'n' must be of type 'integer'",
        ]);
    });

    test("the README's main command gives the CLI every value it requires, with the declared types", () => {
        const config = mainCommandConfig();
        assert.ok(Object.keys(config).includes("minio:minioServer"), "the main command was found and parsed");
        assert.deepEqual(cliProblems(project, config), []);
    });

    test("the example stack Pulumi.dev.yaml passes the CLI's checks", () => {
        const stack = parse(readFileSync(join(ROOT, "Pulumi.dev.yaml"), "utf8")) as { config: Record<string, unknown> };
        const config = Object.fromEntries(Object.entries(stack.config).map(([key, value]) => [key, { value, secure: false }]));
        assert.deepEqual(cliProblems(project, config), []);
    });

    test("declares exactly the settings that have a default; the others stay optional", () => {
        const withDefault = SETTING_NAMES.filter((name) => !SETTINGS_WITHOUT_DEFAULT.includes(name));
        assert.deepEqual(Object.keys(project.config).sort(), withDefault.sort());
        assert.deepEqual([...SETTINGS_WITHOUT_DEFAULT].sort(), [
            "caCertificate",
            "collectorName",
            "compressionLevel",
            "expireDays",
            "gcGraceHours",
            "gcKeepDays",
            "keyName",
            "publicUrl",
            "region",
            "writerSecret",
        ]);
    });

    test("the restated merge puts a declared default into the program's config, and a stack's own value wins", () => {
        const declared: Project = { name: "test", config: { n: { type: "integer", default: 30 }, list: { type: "array", default: [] } } };
        assert.deepEqual(configSeenByProgram(declared, {}), { "test:n": "30", "test:list": "[]" });
        assert.deepEqual(configSeenByProgram(declared, { "test:n": "7" }), { "test:n": "7", "test:list": "[]" });
    });

    test("every retention mode runs with the declared defaults applied: nothing a mode refuses is declared", () => {
        // Declaring, say, gcKeepDays with a default would hand it to every stack, and the program
        // refuses it under retention expire or none.
        for (const retention of ["gc", "expire", "none"]) {
            const stack = { "minio:minioServer": "s3.example.org:9000", "nix-cache:retention": retention };
            assert.equal(parseSettings(configSeenByProgram(project, stack)).retention, retention);
        }
        const unset = parseSettings(configSeenByProgram(project, { "minio:minioServer": "s3.example.org:9000" }));
        assert.equal(unset.retention, "gc");
    });

    test("every compression runs with the declared defaults applied: compressionLevel, whose default depends on it, is not declared", () => {
        // A declared compressionLevel default would reach the program as if set: refused with
        // compression none, and forced on xz instead of Nix's own default.
        for (const compression of ["zstd", "xz", "none"]) {
            const stack = { "minio:minioServer": "s3.example.org:9000", "nix-cache:compression": compression };
            const settings = parseSettings(configSeenByProgram(project, stack));
            assert.equal(settings.compression, compression);
            assert.equal(settings.compressionLevel, compression === "zstd" ? DEFAULT_ZSTD_COMPRESSION_LEVEL : undefined, compression);
        }
    });

    test("declared defaults are the defaults the program applies", () => {
        const applied = parseSettings({ "minio:minioServer": "s3.example.org:9000" }) as unknown as Record<string, unknown>;
        for (const [name, declaration] of Object.entries(project.config)) {
            assert.deepEqual(declaration.default, applied[name], `default of ${name}`);
        }
    });

    test("the Settings table of docs/configuration.md has one row per setting, declared or not", () => {
        const section = docSection("docs/configuration.md", "## Settings");
        const rows = [...section.matchAll(/^\| `([A-Za-z]+)` \|/gm)].map((match) => match[1]);
        assert.deepEqual(rows.sort(), [...SETTING_NAMES].sort());
    });
});
