// The README's "Who may do what" table, read row by row, for the tests that check it (against the
// IAM evaluator in accessTable.test.ts, against a real RGW in access.rgw.test.ts).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Who } from "./accessEvaluation";

const SECTION = "## Who may do what";

export interface AccessRow {
    line: string;
    who: Who;
    action: string;
    /** The "On" cell with `<bucket>` filled in and other placeholders (`<hash>`) as `example`; `*` stays. */
    target: string;
    /** `target` as an ARN, or `*`. */
    resource: string;
    allowed: boolean;
    allowedWithList: boolean;
}

const WHO: Record<string, Who> = { anyone: "anonymous", writer: "writer", collector: "collector" };
const DECISION: Record<string, boolean> = { yes: true, no: false };

function lookup<T>(table: Record<string, T>, key: string, line: string): T {
    const value = table[key];
    if (value === undefined) {
        throw new Error(`README row '${line}': '${key}' is not one of ${Object.keys(table).join(", ")}`);
    }
    return value;
}

/** The rows of the first table in the README's "Who may do what" section, for bucket `bucket`. */
export function readmeAccessRows(bucket: string): AccessRow[] {
    const readme = readFileSync(join(__dirname, "..", "README.md"), "utf8");
    const start = readme.indexOf(`\n${SECTION}\n`);
    assert.notEqual(start, -1, `README.md has no '${SECTION}' section`);
    const section = readme.slice(start + 1).split(/\n## /)[0]!;
    const lines = section.split("\n").filter((line) => line.startsWith("|"));
    assert.deepEqual(
        lines[0]!.split("|").slice(1, -1).map((cell) => cell.trim()),
        ["Who", "Action", "On", "Default", "With `allowAnonymousList`"],
    );
    return lines.slice(2).map((line) => {
        const cells = line
            .split("|")
            .slice(1, -1)
            .map((cell) => cell.trim().replaceAll("`", ""));
        assert.equal(cells.length, 5, `README row '${line}' does not have 5 cells`);
        const [who, action, on, allowed, allowedWithList] = cells as [string, string, string, string, string];
        const target = on.replaceAll("<bucket>", bucket).replace(/<[a-z-]+>/g, "example");
        return {
            line,
            who: lookup(WHO, who, line),
            action,
            target,
            resource: target === "*" ? "*" : `arn:aws:s3:::${target}`,
            allowed: lookup(DECISION, allowed, line),
            allowedWithList: lookup(DECISION, allowedWithList, line),
        };
    });
}
