// `npm run bench:startup`: how long `pulumi up` takes to start this program, against a bare
// one-resource Pulumi TypeScript program, measured side by side in one run.
//
// Each run is a fresh `node` process that loads a program the way Pulumi's Node.js language host
// does: `node [runtime nodeargs] <@pulumi/pulumi>/cmd/run ... <program>` in the project directory,
// with PULUMI_NODEJS_TYPESCRIPT from Pulumi.yaml and the stack's config in PULUMI_CONFIG, so Pulumi's
// own code decides how TypeScript is compiled (ts-node, type-checking or not, from tsconfig.json).
// Only the engine is replaced, by Pulumi's mock engine (tools/bench/mockEngine.cjs). The time is
// from process start until the mock engine has received the last resource registration.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, relative } from "node:path";
import { parse } from "yaml";

const PROJECT_DIR = join(__dirname, "..");
const MOCK_ENGINE = join(__dirname, "bench", "mockEngine.cjs");
export const BARE_PROGRAM = relative(PROJECT_DIR, join(__dirname, "bench", "bareProgram.ts"));
/** Pulumi's Node.js runtime entry point, as the language host starts it. */
const PULUMI_RUN = join(PROJECT_DIR, "node_modules", "@pulumi", "pulumi", "cmd", "run");
/** The example stack whose config the program is started with. */
const STACK = "dev";
export const GOAL = 1.5;

export interface StartupRun {
    /** Resources the mock engine saw registered, the root stack included. */
    registered: number;
    /** From process start until the last registration. */
    untilRegisteredMs: number;
    /** CPU time the process had used by then (all its threads). */
    cpuMs: number;
    /** How ts-node compiled TypeScript, as its registered service reports it (ts-node 10 only). */
    compiler: { typescript: string; transpileOnly: boolean; swc: boolean } | null;
    /** Dynamic providers' code as Pulumi serialized it from the compiled program. */
    dynamicProviders: string[];
}

interface RuntimeSettings {
    project: string;
    typescript: boolean;
    nodeargs: string[];
    config: Record<string, string>;
}

/** What the language host takes from Pulumi.yaml and Pulumi.<stack>.yaml. */
export function runtimeSettings(): RuntimeSettings {
    const project = parse(readFileSync(join(PROJECT_DIR, "Pulumi.yaml"), "utf8"));
    const stack = parse(readFileSync(join(PROJECT_DIR, `Pulumi.${STACK}.yaml`), "utf8"));
    const options = typeof project.runtime === "object" ? (project.runtime.options ?? {}) : {};
    return {
        project: project.name,
        typescript: options.typescript !== false,
        nodeargs: typeof options.nodeargs === "string" ? options.nodeargs.split(/\s+/).filter(Boolean) : [],
        config: Object.fromEntries(Object.entries(stack.config ?? {}).map(([key, value]) => [key, String(value)])),
    };
}

/**
 * Starts `program` (a path relative to the project, or "." for the project's own entry point) as
 * `pulumi up` would and reports when its resources were registered; `extraConfig` is added to the
 * example stack's config.
 */
export function runUnderMockEngine(program: string, extraConfig: Record<string, string> = {}): StartupRun {
    const settings = runtimeSettings();
    const result = spawnSync(
        process.execPath,
        [
            ...settings.nodeargs,
            // -r rather than --require: Pulumi's runtime reads --require in nodeargs as "the user
            // brings their own loader", which would change how it compiles TypeScript.
            "-r",
            MOCK_ENGINE,
            PULUMI_RUN,
            "--monitor=mock",
            `--project=${settings.project}`,
            `--stack=${STACK}`,
            `--root-directory=${PROJECT_DIR}`,
            program,
        ],
        {
            cwd: PROJECT_DIR,
            encoding: "utf8",
            env: {
                ...process.env,
                PULUMI_NODEJS_TYPESCRIPT: String(settings.typescript),
                PULUMI_CONFIG: JSON.stringify({ ...settings.config, ...extraConfig }),
                PULUMI_CONFIG_SECRET_KEYS: "[]",
                BENCH_PROJECT: settings.project,
                BENCH_STACK: STACK,
            },
        },
    );
    const report = result.stdout.trim().split("\n").at(-1) ?? "";
    if (result.status !== 0 || !report.startsWith("{")) {
        throw new Error(`${program} failed under the mock engine (exit ${result.status}):\n${result.stderr}${result.stdout}`);
    }
    const { registered, lastRegistrationMs, lastRegistrationCpuMs, compiler, dynamicProviders } = JSON.parse(report);
    return { registered, untilRegisteredMs: lastRegistrationMs, cpuMs: lastRegistrationCpuMs, compiler, dynamicProviders };
}

const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const middle = Math.floor(sorted.length / 2);
    return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

export interface Comparison {
    project: StartupRun[];
    bare: StartupRun[];
    /** Medians: wall-clock time and CPU time until every resource was registered. */
    projectMs: number;
    bareMs: number;
    projectCpuMs: number;
    bareCpuMs: number;
    ratio: number;
    cpuRatio: number;
}

/** Alternates project and bare runs, `runs` times each, and compares their medians. */
export function compare(runs: number): Comparison {
    const project: StartupRun[] = [];
    const bare: StartupRun[] = [];
    for (let i = 0; i < runs; i++) {
        project.push(runUnderMockEngine("."));
        bare.push(runUnderMockEngine(BARE_PROGRAM));
    }
    const projectMs = median(project.map((run) => run.untilRegisteredMs));
    const bareMs = median(bare.map((run) => run.untilRegisteredMs));
    const projectCpuMs = median(project.map((run) => run.cpuMs));
    const bareCpuMs = median(bare.map((run) => run.cpuMs));
    return {
        project,
        bare,
        projectMs,
        bareMs,
        projectCpuMs,
        bareCpuMs,
        ratio: projectMs / bareMs,
        cpuRatio: projectCpuMs / bareCpuMs,
    };
}

function describeCompiler(compiler: StartupRun["compiler"]): string {
    if (compiler === null) {
        return "TypeScript through ts-node 7 as vendored in @pulumi/pulumi (type-checks unless told otherwise)";
    }
    const how = compiler.swc ? "transpile-only with swc" : compiler.transpileOnly ? "transpile-only" : "type-checking on every run";
    return `TypeScript ${compiler.typescript} through ts-node 10, ${how}`;
}

function main(): void {
    const runsArgument = process.argv.indexOf("--runs");
    const runs = runsArgument > 0 ? Number(process.argv[runsArgument + 1]) : 7;
    if (!Number.isInteger(runs) || runs < 1) {
        throw new Error("--runs must be a positive whole number");
    }
    const result = compare(runs);
    const ms = (value: number) => `${value.toFixed(0)} ms`;
    console.log("Start-up of the program as pulumi up runs it, until every resource is registered (mock engine)");
    console.log(`Node ${process.version}, ${availableParallelism()} CPUs; ${describeCompiler(result.project[0]!.compiler)}`);
    console.log(`median of ${runs} alternating runs each`);
    console.log(`  project (${result.project[0]!.registered - 1} resources): ${ms(result.projectMs)} (CPU ${ms(result.projectCpuMs)})`);
    console.log(`  bare ${BARE_PROGRAM} (${result.bare[0]!.registered - 1} resource): ${ms(result.bareMs)} (CPU ${ms(result.bareCpuMs)})`);
    console.log(
        `  ratio ${result.ratio.toFixed(2)} (CPU ${result.cpuRatio.toFixed(2)}); goal: at most ${GOAL}: ${result.ratio <= GOAL ? "met" : "NOT met"}`,
    );
    process.exitCode = result.ratio <= GOAL ? 0 : 1;
}

if (require.main === module) {
    main();
}
