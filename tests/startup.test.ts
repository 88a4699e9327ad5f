// How `pulumi up` starts the program: Pulumi's own Node.js runtime entry point, with the project's
// settings, compiles TypeScript with swc and does not type-check; type errors are caught by
// `npm run typecheck` instead. Runs the programs the way tools/benchStartup.ts measures them.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { Module } from "node:module";
import { join } from "node:path";
import { test } from "node:test";
import { BARE_PROGRAM, runUnderMockEngine } from "../tools/benchStartup";

const PROJECT_DIR = join(__dirname, "..");
const packageJson = JSON.parse(readFileSync(join(PROJECT_DIR, "package.json"), "utf8"));
/** The TypeScript the project pins, read independently of what the runtime reports. */
const TYPESCRIPT_VERSION: string = packageJson.dependencies.typescript;
const SWC_WITHOUT_TYPE_CHECK = { typescript: TYPESCRIPT_VERSION, transpileOnly: true, swc: true };

test("pulumi up's runtime compiles the program and the benchmark's baseline with swc, without type-checking", () => {
    // retention expire, so that the expiry rule's dynamic provider is serialized too.
    const project = runUnderMockEngine(".", { "nix-cache:retention": "expire" });
    assert.deepEqual(project.compiler, SWC_WITHOUT_TYPE_CHECK);
    // The root stack, the cache component and its children.
    assert.ok(project.registered > 5, `only ${project.registered} registrations`);
    assert.ok(project.untilRegisteredMs > 0 && project.cpuMs > 0);

    // swc's output is what Pulumi serializes for dynamic providers: it must load as the engine's
    // dynamic provider host loads it (a module exporting handler(), resolved from the project).
    assert.ok(project.dynamicProviders.length > 0, "the expiry rule's dynamic provider");
    for (const code of project.dynamicProviders) {
        const module = new Module(join(PROJECT_DIR, "__provider.js"));
        module.paths = (Module as any)._nodeModulePaths(PROJECT_DIR);
        (module as any)._compile(code, module.id);
        assert.equal(typeof module.exports.handler().create, "function");
    }

    const bare = runUnderMockEngine(BARE_PROGRAM);
    assert.deepEqual(bare.compiler, SWC_WITHOUT_TYPE_CHECK);
    assert.equal(bare.registered, 2, "the root stack and one resource");
});

test("a type error does not stop pulumi up, and the typecheck script reports it", (t) => {
    const dir = mkdtempSync(join(tmpdir(), "nix-cache-startup-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    // Checked with the project's own compiler options: extends tsconfig.json, so a setting there
    // that turned checking off (such as noCheck) would let the broken probe through.
    writeFileSync(
        join(dir, "tsconfig.json"),
        JSON.stringify({
            extends: join(PROJECT_DIR, "tsconfig.json"),
            compilerOptions: { typeRoots: [join(PROJECT_DIR, "node_modules", "@types")] },
            include: ["probe.ts"],
        }),
    );
    const typecheck = (source: string) => {
        writeFileSync(join(dir, "probe.ts"), source);
        // The typecheck script's command, pointed at the probe's project.
        assert.equal(packageJson.scripts.typecheck, "tsc --noEmit");
        return spawnSync(process.execPath, [join(PROJECT_DIR, "node_modules", "typescript", "bin", "tsc"), "--noEmit", "-p", dir], {
            encoding: "utf8",
        });
    };

    const wellTyped = typecheck('export const count: number = 3;\n');
    assert.equal(wellTyped.status, 0, wellTyped.stdout);

    const broken = typecheck('const count: number = "three" as unknown as string;\nexport const probe = count;\n');
    assert.notEqual(broken.status, 0);
    assert.match(broken.stdout, /probe\.ts\(1,7\): error TS2322: Type 'string' is not assignable to type 'number'\./);

    const run = runUnderMockEngine(join(dir, "probe.ts"));
    assert.deepEqual(run.compiler, SWC_WITHOUT_TYPE_CHECK);
    assert.equal(run.registered, 1, "the program ran: its root stack was registered");
});
