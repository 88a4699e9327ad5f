// The "Who may do what" table of docs/security.md, read row by row, for the tests that check it
// (against the IAM evaluator in accessTable.test.ts, against a real RGW in access.rgw.test.ts).
import assert from "node:assert/strict";
import type { Who } from "./accessEvaluation";
import { docSection } from "./docSection";

export const ACCESS_TABLE_DOC = "docs/security.md";

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
        throw new Error(`${ACCESS_TABLE_DOC} row '${line}': '${key}' is not one of ${Object.keys(table).join(", ")}`);
    }
    return value;
}

/** The rows of the first table in the "Who may do what" section of docs/security.md, for bucket `bucket`. */
export function documentedAccessRows(bucket: string): AccessRow[] {
    const section = docSection(ACCESS_TABLE_DOC, "## Who may do what");
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
        assert.equal(cells.length, 5, `${ACCESS_TABLE_DOC} row '${line}' does not have 5 cells`);
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
