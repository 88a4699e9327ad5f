// The GitHub Actions workflows: actionlint, shellcheck and the project's own rules pass on every
// workflow, each rule fails on a small workflow that breaks it, and the workflows do what
// docs/workflows.md says (preview comments, idempotent deploys, drift checks, the end-to-end run).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { renderCollectorEnvironment } from "../lib/collectorConfig";
import { readWorkflows, SETTINGS_HEADING, WORKFLOWS_DOC } from "../tools/lintWorkflows";
import {
    actionlintFindings,
    documentationFindings,
    documentedSettings,
    formatFinding,
    ruleFindings,
    shellcheckFindings,
    type Finding,
    type WorkflowFile,
} from "../tools/workflowChecks";
import { needsTool } from "./requiredTools";

const workflows = readWorkflows();
const byName = (name: string): WorkflowFile => {
    const found = workflows.find((workflow) => workflow.path.endsWith(`/${name}`));
    assert.ok(found, `.github/workflows/${name} exists`);
    return found;
};
const fixture = (text: string): WorkflowFile => ({ path: "fixture.yml", text });
const rulesOf = (findings: Finding[]) => findings.map((finding) => finding.rule);
const show = (findings: Finding[]) => findings.map(formatFinding).join("\n");

/** A workflow that passes every rule; fixtures below break one rule at a time. */
const CLEAN = `
on: push
permissions:
  contents: read
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "hello"
`;

test("the six workflows exist", () => {
    assert.deepEqual(
        workflows.map((workflow) => workflow.path),
        ["deploy.yml", "drift.yml", "e2e.yml", "gc.yml", "preview.yml", "test.yml"].map((name) => join(".github", "workflows", name)),
    );
});

describe("actionlint", () => {
    for (const workflow of workflows) {
        test(`${workflow.path} passes actionlint`, async () => {
            const findings = await actionlintFindings(workflow);
            assert.deepEqual(findings, [], show(findings));
        });
    }

    test("reports real problems; drops only the listed findings about newer GitHub features", async () => {
        const findings = await actionlintFindings(
            fixture(`
on: pull_request
permissions:
  contents: read
jobs:
  build:
    runs-on: ubuntu-latest
    services:
      db:
        image: postgres:16
        command: postgres -c fsync=off
        commands: typo
    steps:
      - run: echo "\${{ vars.NAME }}"
      - run: echo "\${{ varz.NAME }}"
      - run: echo "\${{ github.event.pull_request.title }}"
`),
        );
        const messages = findings.map((finding) => finding.message);
        assert.equal(findings.length, 3, show(findings));
        assert.ok(messages.some((message) => message.startsWith('unexpected key "commands" for "services" section')));
        assert.ok(messages.some((message) => message.startsWith('undefined variable "varz"')));
        assert.ok(messages.some((message) => message.includes('"github.event.pull_request.title" is potentially untrusted')));
    });
});

describe("shellcheck on run: scripts", needsTool("shellcheck", "shellcheck is not installed: apt-get install -y shellcheck"), () => {
    for (const workflow of workflows) {
        test(`${workflow.path} scripts pass shellcheck`, () => {
            const findings = shellcheckFindings(workflow);
            assert.deepEqual(findings, [], show(findings));
        });
    }

    test("reports a problem at its line in the workflow; expressions are placeholders", () => {
        const findings = shellcheckFindings(
            fixture(`on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo "\${{ matrix.node }}"
      - run: |
          mkdir -p build
          cat $BUILD_FILE
`),
        );
        assert.deepEqual(
            findings.map((finding) => [finding.line, finding.rule]),
            [[9, "shellcheck SC2086"]],
            show(findings),
        );
    });
});

describe("the project's rules", () => {
    for (const workflow of workflows) {
        test(`${workflow.path} follows them`, () => {
            const findings = ruleFindings(workflow);
            assert.deepEqual(findings, [], show(findings));
        });
    }

    test("the clean fixture passes, so each fixture below fails for its own rule only", () => {
        assert.deepEqual(ruleFindings(fixture(CLEAN)), []);
    });

    test("pull_request_target is refused", () => {
        const findings = ruleFindings(fixture(CLEAN.replace("on: push", "on: [push, pull_request_target]")));
        assert.deepEqual(rulesOf(findings), ["no-pull-request-target"]);
    });

    test("permissions: missing, write-all, or write beyond PR comments", () => {
        assert.deepEqual(rulesOf(ruleFindings(fixture(CLEAN.replace("permissions:\n  contents: read\n", "")))), [
            "minimal-permissions",
        ]);
        assert.deepEqual(rulesOf(ruleFindings(fixture(CLEAN.replace("permissions:\n  contents: read", "permissions: write-all")))), [
            "minimal-permissions",
        ]);
        const contentsWrite = ruleFindings(fixture(CLEAN.replace("contents: read", "contents: write")));
        assert.deepEqual(
            contentsWrite.map((finding) => [finding.rule, finding.line]),
            [["minimal-permissions", 4]],
        );
        const jobWrite = CLEAN.replace("    runs-on: ubuntu-latest", "    runs-on: ubuntu-latest\n    permissions:\n      pull-requests: write");
        assert.deepEqual(rulesOf(ruleFindings(fixture(jobWrite))), ["minimal-permissions"]);
    });

    test("pull-requests: write is allowed only where Pulumi comments on the PR", () => {
        const commenting = (comment: boolean) => `
on: pull_request
permissions:
  contents: read
  pull-requests: write
concurrency:
  group: pulumi-dev
jobs:
  preview:
    runs-on: ubuntu-latest
    steps:
      - uses: pulumi/actions@v7
        with:
          command: preview
          stack-name: dev
          comment-on-pr: ${comment}
`;
        assert.deepEqual(ruleFindings(fixture(commenting(true))), []);
        assert.deepEqual(rulesOf(ruleFindings(fixture(commenting(false)))), ["minimal-permissions"]);
    });

    test("untrusted input and secrets never go straight into a run: script", () => {
        const withRun = (run: string) => CLEAN.replace('echo "hello"', run);
        for (const expression of [
            "github.event.pull_request.title",
            "github.event.issue.body",
            "github.head_ref",
            "inputs.reason",
        ]) {
            const findings = ruleFindings(fixture(withRun(`echo "\${{ ${expression} }}"`)));
            assert.deepEqual(rulesOf(findings), ["untrusted-input-in-script"], expression);
        }
        // A secret in a script breaks this rule and, being outside a Pulumi step, the next one too.
        assert.deepEqual(rulesOf(ruleFindings(fixture(withRun('echo "${{ secrets.TOKEN }}"')))), [
            "untrusted-input-in-script",
            "secrets-only-in-pulumi-steps",
        ]);
        const multiLine = ruleFindings(fixture(withRun('|\n          echo start\n          echo "${{ github.event.pull_request.body }}"')));
        assert.deepEqual(
            multiLine.map((finding) => [finding.rule, finding.line]),
            [["untrusted-input-in-script", 12]],
        );
        // Trusted values may appear; untrusted ones belong in env: and are read as "$NAME".
        assert.deepEqual(ruleFindings(fixture(withRun('echo "${{ matrix.node }} ${{ github.sha }}"'))), []);
        const throughEnv = CLEAN.replace(
            '      - run: echo "hello"',
            '      - env:\n          TITLE: ${{ github.event.pull_request.title }}\n        run: echo "$TITLE"',
        );
        assert.deepEqual(ruleFindings(fixture(throughEnv)), []);
    });

    test("on pull requests, jobs that use secrets run only for the repository's own branches", () => {
        const job = (guard: string) => `
on: pull_request
permissions:
  contents: read
concurrency:
  group: pulumi-dev
jobs:
  preview:
    ${guard}
    runs-on: ubuntu-latest
    steps:
      - uses: pulumi/actions@v7
        env:
          PULUMI_CONFIG_PASSPHRASE: \${{ secrets.PASSPHRASE }}
        with:
          command: preview
          stack-name: dev
`;
        assert.deepEqual(rulesOf(ruleFindings(fixture(job("")))), ["secrets-only-where-available"]);
        assert.deepEqual(
            rulesOf(ruleFindings(fixture(job("if: github.actor != 'dependabot[bot]'")))),
            ["secrets-only-where-available"],
        );
        assert.deepEqual(ruleFindings(fixture(job("if: github.event.pull_request.head.repo.full_name == github.repository"))), []);
        const workflowEnv = job("if: github.event.pull_request.head.repo.full_name == github.repository").replace(
            "jobs:",
            "env:\n  OTHER: ${{ secrets.OTHER }}\njobs:",
        );
        // Workflow-level env is also outside the Pulumi step.
        assert.deepEqual(rulesOf(ruleFindings(fixture(workflowEnv))), [
            "secrets-only-where-available",
            "secrets-only-in-pulumi-steps",
        ]);
    });

    test("secrets go only to the env: or with: of steps that run Pulumi", () => {
        const pulumiStep = (stepKeys: string) => `
on: push
permissions:
  contents: read
concurrency:
  group: pulumi-dev
jobs:
  up:
    runs-on: ubuntu-latest
    steps:
      - run: npm ci
      - uses: pulumi/actions@v7
${stepKeys}
`;
        const inputs = "        with:\n          command: up\n          stack-name: dev";
        const passphraseEnv = "        env:\n          PULUMI_CONFIG_PASSPHRASE: ${{ secrets.PASSPHRASE }}";
        assert.deepEqual(ruleFindings(fixture(pulumiStep(`${passphraseEnv}\n${inputs}`))), []);
        assert.deepEqual(
            ruleFindings(fixture(pulumiStep(`${inputs}\n          github-token: \${{ secrets.GITHUB_TOKEN }}`))),
            [],
        );

        // The job's env reaches npm ci and every dependency's install scripts.
        const jobEnv = ruleFindings(
            fixture(pulumiStep(inputs).replace("    runs-on: ubuntu-latest", "    runs-on: ubuntu-latest\n    env:\n      PULUMI_CONFIG_PASSPHRASE: ${{ secrets.PASSPHRASE }}")),
        );
        assert.deepEqual(
            jobEnv.map((finding) => [finding.rule, finding.line]),
            [["secrets-only-in-pulumi-steps", 11]],
        );
        // So does a step's env that is not Pulumi's, and an install-only pulumi/actions step needs none.
        const npmEnv = pulumiStep(inputs).replace("      - run: npm ci", "      - run: npm ci\n        env:\n          TOKEN: ${{ secrets.TOKEN }}");
        assert.deepEqual(rulesOf(ruleFindings(fixture(npmEnv))), ["secrets-only-in-pulumi-steps"]);
        assert.deepEqual(rulesOf(ruleFindings(fixture(pulumiStep(passphraseEnv)))), ["secrets-only-in-pulumi-steps"]);
        // Within a Pulumi step, only env: and with:.
        const named = pulumiStep(`        name: \${{ secrets.PASSPHRASE }}\n${inputs}`);
        assert.deepEqual(rulesOf(ruleFindings(fixture(named))), ["secrets-only-in-pulumi-steps"]);
        // Any expression that reads the secrets context counts, not only secrets.NAME.
        const allSecrets = CLEAN.replace('      - run: echo "hello"', '      - uses: actions/setup-node@v4\n        with:\n          registry-url: ${{ toJSON(secrets) }}');
        assert.deepEqual(rulesOf(ruleFindings(fixture(allSecrets))), ["secrets-only-in-pulumi-steps"]);
    });

    test("actions are pinned to a release or commit, images to a tag or digest", () => {
        for (const ref of ["actions/checkout@main", "actions/checkout", "actions/checkout@v4-beta", "docker://alpine:latest"]) {
            assert.deepEqual(rulesOf(ruleFindings(fixture(CLEAN.replace("actions/checkout@v4", ref)))), ["pinned"], ref);
        }
        for (const ref of ["actions/checkout@v4.2.1", `actions/checkout@${"a".repeat(40)}`, "docker://alpine:3.20"]) {
            assert.deepEqual(ruleFindings(fixture(CLEAN.replace("actions/checkout@v4", ref))), [], ref);
        }
        const withImages = (container: string, service: string) =>
            CLEAN.replace(
                "    runs-on: ubuntu-latest",
                `    runs-on: ubuntu-latest\n    container: ${container}\n    services:\n      store:\n        image: ${service}`,
            );
        assert.deepEqual(ruleFindings(fixture(withImages("node:22-bookworm", `minio@sha256:${"0".repeat(64)}`))), []);
        assert.deepEqual(rulesOf(ruleFindings(fixture(withImages("node", "minio:latest")))), ["pinned", "pinned"]);
    });

    test("Pulumi runs share one concurrency group per stack and are never cancelled", () => {
        const pulumi = (concurrency: string) => `
on: push
permissions:
  contents: read
${concurrency}
jobs:
  up:
    runs-on: ubuntu-latest
    steps:
      - uses: pulumi/actions@v7
        with:
          command: up
          stack-name: \${{ vars.STACK }}
`;
        assert.deepEqual(ruleFindings(fixture(pulumi("concurrency:\n  group: pulumi-${{ vars.STACK }}"))), []);
        assert.deepEqual(rulesOf(ruleFindings(fixture(pulumi("")))), ["concurrency-per-stack"]);
        assert.deepEqual(rulesOf(ruleFindings(fixture(pulumi("concurrency: deploy")))), ["concurrency-per-stack"]);
        assert.deepEqual(
            rulesOf(ruleFindings(fixture(pulumi("concurrency:\n  group: pulumi-${{ vars.STACK }}\n  cancel-in-progress: true")))),
            ["concurrency-per-stack"],
        );
    });
});

describe("secrets and variables in docs/workflows.md", () => {
    const doc = readFileSync(WORKFLOWS_DOC, "utf8");

    test("every secret and variable the workflows use is in the table, and nothing else", () => {
        const findings = documentationFindings(workflows, doc, SETTINGS_HEADING);
        assert.deepEqual(findings, [], show(findings));
    });

    test("the table lists what the workflows need, written out by hand", () => {
        assert.deepEqual(
            [...documentedSettings(doc, SETTINGS_HEADING)].sort(),
            [
                ["PULUMI_BACKEND_URL", "variable"],
                ["PULUMI_CONFIG_PASSPHRASE", "secret"],
                ["PULUMI_STACK", "variable"],
                ["PULUMI_STATE_ACCESS_KEY_ID", "secret"],
                ["PULUMI_STATE_SECRET_ACCESS_KEY", "secret"],
            ],
        );
    });

    test("a missing, mislabelled or unused entry is reported", () => {
        const uses = fixture("env:\n  A: ${{ secrets.ALPHA }}\n  B: ${{ vars.BETA }}\n  T: ${{ secrets.GITHUB_TOKEN }}\n");
        const table = (rows: string) => `# x\n## Settings\n| Name | Kind | Meaning |\n| --- | --- | --- |\n${rows}\n## Next\n| \`GAMMA\` | secret | elsewhere |\n`;
        const complete = "| `ALPHA` | secret | a |\n| `BETA` | variable | b |";
        assert.deepEqual(documentationFindings([uses], table(complete), "## Settings"), []);
        assert.equal(documentationFindings([uses], table("| `ALPHA` | secret | a |"), "## Settings").length, 1);
        assert.equal(documentationFindings([uses], table("| `ALPHA` | secret | a |\n| `BETA` | secret | b |"), "## Settings").length, 1);
        assert.equal(documentationFindings([uses], table(`${complete}\n| \`DELTA\` | variable | d |`), "## Settings").length, 1);
        assert.throws(() => documentationFindings([uses], table(complete), "## Elsewhere"), /no section "## Elsewhere"/);
    });
});

describe("what the workflows do", () => {
    const load = (name: string) => parse(byName(name).text);
    const pulumiSteps = (name: string) =>
        Object.values(load(name).jobs as Record<string, any>)
            .flatMap((job) => job.steps)
            .filter((step) => String(step.uses).startsWith("pulumi/actions@"));

    test("test.yml: push and pull request, Node 20 and 22, install, type-check, lint, Nix, the suite", () => {
        const workflow = load("test.yml");
        assert.deepEqual(Object.keys(workflow.on).sort(), ["pull_request", "push"]);
        const job = workflow.jobs.test;
        assert.deepEqual(job.strategy.matrix.node, [20, 22]);
        const runs = job.steps.map((step: any) => step.run).filter(Boolean);
        assert.deepEqual(runs, ["bash .ci/run"], "test.yml runs exactly what CI runs");
        const ciRun = readFileSync(join(__dirname, "..", ".ci", "run"), "utf8");
        for (const command of ["nix-bin", "shellcheck", "npm ci", "npm run typecheck", "npm run lint", "npm test"]) {
            assert.ok(ciRun.includes(command), command);
        }
        assert.ok(ciRun.trimEnd().endsWith("npm test"), "the suite's summary is the last thing .ci/run prints");
        assert.equal(job.env.CI, "true");
    });

    test("preview.yml: pull_request only, a preview with diff, PR comment, policy pack and a self-managed backend", () => {
        const workflow = load("preview.yml");
        assert.deepEqual(Object.keys(workflow.on), ["pull_request"]);
        assert.deepEqual(workflow.permissions, { contents: "read", "pull-requests": "write" });
        const [preview, ...rest] = pulumiSteps("preview.yml");
        assert.equal(rest.length, 0);
        assert.equal(preview.uses, "pulumi/actions@v7");
        assert.equal(preview.with.command, "preview");
        assert.equal(preview.with["comment-on-pr"], true);
        assert.equal(preview.with.diff, true);
        assert.equal(preview.with.policyPacks, "policy");
        assert.equal(preview.with["cloud-url"], "${{ vars.PULUMI_BACKEND_URL }}");
        assert.ok(existsSync(join(__dirname, "..", "policy", "PulumiPolicy.yaml")), "the policy pack lives in policy/");
        assert.equal(preview.env.PULUMI_CONFIG_PASSPHRASE, "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}");
    });

    test("deploy.yml: main and manual runs, up, then a preview that must show no changes", () => {
        const workflow = load("deploy.yml");
        assert.deepEqual(workflow.on.push.branches, ["main"]);
        assert.ok("workflow_dispatch" in workflow.on);
        const [up, check] = pulumiSteps("deploy.yml");
        assert.equal(up.with.command, "up");
        assert.equal(check.with.command, "preview");
        assert.equal(check.with["expect-no-changes"], true);
    });

    test("drift.yml: scheduled refresh preview that fails on any change", () => {
        const workflow = load("drift.yml");
        assert.ok(Array.isArray(workflow.on.schedule) && workflow.on.schedule.length === 1);
        const [drift] = pulumiSteps("drift.yml");
        assert.equal(drift.with.command, "preview");
        assert.equal(drift.with.refresh, true);
        assert.equal(drift.with["expect-no-changes"], true);
    });

    test("deploy and drift queue in one group per stack; previews and collections in their own, so they never cancel a deployment", () => {
        const groups = ["deploy.yml", "drift.yml"].map((name) => load(name).concurrency.group);
        assert.deepEqual(new Set(groups), new Set(["pulumi-${{ vars.PULUMI_STACK }}"]));
        assert.equal(load("preview.yml").concurrency.group, "pulumi-preview-${{ vars.PULUMI_STACK }}");
        assert.equal(load("gc.yml").concurrency.group, "gc-${{ vars.PULUMI_STACK }}");
    });

    describe("gc.yml", () => {
        const workflow = load("gc.yml");
        const steps: any[] = workflow.jobs.gc.steps;
        const named = (name: string) => {
            const found = steps.find((step) => step.name === name);
            assert.ok(found, `gc.yml has a step named '${name}'`);
            return found;
        };
        const COMMAND =
            'npx nix-cache-gc --endpoint "$NIX_CACHE_GC_ENDPOINT" --bucket "$NIX_CACHE_GC_BUCKET" --region "$NIX_CACHE_GC_REGION" ' +
            '--keep-days "$NIX_CACHE_GC_KEEP_DAYS" --grace-hours "$NIX_CACHE_GC_GRACE_HOURS" --json > gc-report.json';

        test("weekly and by hand; the stack's outputs from pulumi/actions' output command, with the state secrets", () => {
            assert.deepEqual(Object.keys(workflow.on).sort(), ["schedule", "workflow_dispatch"]);
            const [{ cron }] = workflow.on.schedule;
            const [, , dayOfMonth, month, dayOfWeek] = cron.split(" ");
            assert.deepEqual([dayOfMonth, month], ["*", "*"]);
            assert.match(dayOfWeek, /^[0-6]$/, "one day a week");
            assert.deepEqual(workflow.permissions, { contents: "read" });
            const [output, ...rest] = pulumiSteps("gc.yml");
            assert.equal(rest.length, 0);
            // pulumi/actions src/main.ts, runAction: the `output` command only reads the stack's
            // outputs (LocalWorkspace.stackOutputs) and sets each as a step output, calling
            // core.setSecret on the secret ones; the runner then masks every line of a multi-line
            // secret too (actions/runner pull 1521).
            assert.equal(output.with.command, "output");
            assert.equal(output.with["stack-name"], "${{ vars.PULUMI_STACK }}");
            assert.equal(output.with["cloud-url"], "${{ vars.PULUMI_BACKEND_URL }}");
            assert.equal(output.env.PULUMI_CONFIG_PASSPHRASE, "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}");
            assert.equal(named("write the collector's environment file").env.COLLECTOR_ENV, `\${{ steps.${output.id}.outputs.collectorEnv }}`);
        });

        test("runs the collector with exactly the environment file's values, and keeps the JSON report as an artifact", () => {
            assert.ok(named("nix-cache-gc").run.split("\n").includes(COMMAND), named("nix-cache-gc").run);
            const upload = steps.at(-1);
            assert.equal(upload.uses, "actions/upload-artifact@v4");
            assert.equal(upload.with.path, "gc-report.json");
            assert.equal(upload.if, "always()", "a failed run's report is kept too");
            // Every variable the command reads is one the stack's collectorEnv assigns.
            const file = renderCollectorEnvironment({
                endpoint: "https://s3.example.org",
                bucket: "b",
                region: "r",
                keepDays: 1,
                graceHours: 1,
                accessKey: "a",
                secretKey: "s",
            });
            const assigned = new Set(file.split("\n").filter(Boolean).map((line) => line.split("=")[0]));
            const used = [...COMMAND.matchAll(/\$([A-Z_]+)/g)].map((match) => match[1]);
            assert.deepEqual(used.filter((name) => !assigned.has(name!)), []);
            assert.equal(used.length, 5);
        });

        /** Runs the workflow's two scripts with bash -e, as the runner does, with a stand-in for npx. */
        function runScripts(collectorEnv: string) {
            const dir = mkdtempSync(join(tmpdir(), "gc-workflow-"));
            try {
                const bin = join(dir, "bin");
                mkdirSync(bin);
                writeFileSync(
                    join(bin, "npx"),
                    '#!/bin/bash\nprintf \'%s\\n\' "$@" > "$RUNNER_TEMP/args"\n' +
                        'printf \'%s\\n\' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" > "$RUNNER_TEMP/credentials"\n' +
                        "echo '{\"dryRun\":false}'\n",
                );
                chmodSync(join(bin, "npx"), 0o755);
                const env = { PATH: `${bin}:${process.env.PATH}`, RUNNER_TEMP: dir, COLLECTOR_ENV: collectorEnv };
                // GitHub runs a step without `shell:` as `bash -e {0}`; --norc keeps this machine's ~/.bashrc out.
                const run = (name: string) =>
                    spawnSync("bash", ["--norc", "--noprofile", "-e", "-c", named(name).run], { cwd: dir, env, encoding: "utf8" });
                const write = run("write the collector's environment file");
                const file = join(dir, "collector.env");
                const mode = existsSync(file) ? statSync(file).mode & 0o777 : undefined;
                const gc = write.status === 0 ? run("nix-cache-gc") : undefined;
                const read = (name: string) => (existsSync(join(dir, name)) ? readFileSync(join(dir, name), "utf8") : undefined);
                return { write, mode, gc, args: read("args"), credentials: read("credentials"), report: read("gc-report.json") };
            } finally {
                rmSync(dir, { recursive: true, force: true });
            }
        }

        test("the scripts: a file only the runner user reads, the values passed as arguments, nothing printed", () => {
            const secret = "s3cr3tKeyOfTheCollector0123456789abcdef";
            const collectorEnv = renderCollectorEnvironment({
                endpoint: "https://s3.example.org:9000",
                bucket: "nix-cache",
                region: "eu-central-1",
                keepDays: 45,
                graceHours: 12,
                accessKey: "nixcollector",
                secretKey: secret,
            });
            const result = runScripts(collectorEnv);
            assert.equal(result.write.status, 0, result.write.stderr);
            assert.equal(result.mode, 0o600);
            assert.equal(result.gc?.status, 0, result.gc?.stderr);
            assert.equal(
                result.args,
                [
                    "nix-cache-gc",
                    "--endpoint",
                    "https://s3.example.org:9000",
                    "--bucket",
                    "nix-cache",
                    "--region",
                    "eu-central-1",
                    "--keep-days",
                    "45",
                    "--grace-hours",
                    "12",
                    "--json",
                    "",
                ].join("\n"),
            );
            assert.equal(result.credentials, `nixcollector\n${secret}\n`);
            assert.equal(result.report, '{"dryRun":false}\n');
            const printed = [result.write.stdout, result.write.stderr, result.gc?.stdout, result.gc?.stderr].join("");
            assert.ok(!printed.includes(secret), "the secret is never printed");
            assert.equal(printed, "");
        });

        test("the scripts: a stack without collectorEnv (retention expire or none) fails with the reason", () => {
            const result = runScripts("");
            assert.equal(result.write.status, 1);
            assert.equal(
                result.write.stdout,
                "::error::the stack exports no collectorEnv: garbage collection needs nix-cache:retention gc\n",
            );
            assert.equal(result.gc, undefined);
        });
    });

    test("e2e.yml: pinned MinIO-compatible service, file backend, signed push, anonymous fetch, no changes, destroy", () => {
        const workflow = load("e2e.yml");
        const job = workflow.jobs.e2e;
        assert.match(job.services.minio.image, /^pgsty\/silo:RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ$/);
        assert.equal(job.services.minio.command, "server /data");
        const uses = job.steps.map((step: any) => step.uses).filter(Boolean);
        assert.ok(uses.includes("cachix/install-nix-action@v31"), "upstream Nix, built with S3 support");
        assert.ok(uses.includes("pulumi/actions@v7"), "the Pulumi CLI");
        const script = job.steps.map((step: any) => step.run ?? "").join("\n");
        for (const command of [
            'pulumi login "file://',
            "pulumi stack init \"$STACK\" --secrets-provider passphrase",
            "nix-cache:protect false",
            'pulumi up --yes --stack "$STACK"',
            'nix store sign --key-file "$RUNNER_TEMP/signing-key"',
            'nix copy --to "$(pulumi stack output --stack "$STACK" uploadUrl)"',
            'nix copy --from "$substituter" --to "$RUNNER_TEMP/client"',
            '--option trusted-public-keys "$public_key" --option require-sigs true',
            'pulumi preview --expect-no-changes --stack "$STACK"',
            'pulumi destroy --yes --stack "$STACK"',
        ]) {
            assert.ok(script.includes(command), command);
        }
        assert.equal(job.steps.at(-1).if, "always()", "destroy runs even when a step failed");
        assert.doesNotMatch(byName("e2e.yml").text, /\$\{\{[^}]*\bsecrets\b/, "no repository secrets: every credential is made up for the run");
    });

    test("e2e.yml masks every secret it reads before anything could print it", () => {
        const script: string = load("e2e.yml").jobs.e2e.steps.map((step: any) => step.run ?? "").join("\n");
        const lines = script.split("\n");
        const secrets = lines
            .map((line, index) => ({ match: /^\s*(\w+)=\$\((pulumi stack output .*--show-secrets.*|openssl rand .*)\)$/.exec(line), index }))
            .filter((entry) => entry.match !== null);
        assert.equal(secrets.length, 3, "passphrase, writer secret, signing key");
        for (const { match, index } of secrets) {
            assert.match(lines[index + 1]!, new RegExp(`^\\s*echo "::add-mask::\\$\\{?${match![1]}\\b`), match![1]);
        }
        assert.ok(!/set -x|echo "\$(writer_secret|signing_key|passphrase)"/.test(script));
    });
});
