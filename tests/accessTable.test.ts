// The README's "Who may do what" table, checked row by row against the evaluation of the policy
// documents the program registers, so that the documentation cannot drift from the code.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import {
    isAllowed,
    policiesWithAndWithoutListing,
    STACK_CONFIG,
    type RegisteredPolicies,
    type Who,
} from "./accessEvaluation";

const BUCKET = "nix-cache";
const CONFIG = { ...STACK_CONFIG, "nix-cache:bucket": BUCKET };
const SECTION = "## Who may do what";

interface TableRow {
    line: string;
    who: Who;
    action: string;
    resource: string;
    allowed: boolean;
    allowedWithList: boolean;
}

const WHO: Record<string, Who> = { anyone: "anonymous", writer: "writer" };
const DECISION: Record<string, boolean> = { yes: true, no: false };

function lookup<T>(table: Record<string, T>, key: string, line: string): T {
    const value = table[key];
    if (value === undefined) {
        throw new Error(`README row '${line}': '${key}' is not one of ${Object.keys(table).join(", ")}`);
    }
    return value;
}

/** `<bucket>/…` to an ARN; other placeholders (`<hash>`) stand for any key; `*` stays `*`. */
function resourceOf(cell: string): string {
    if (cell === "*") {
        return "*";
    }
    return `arn:aws:s3:::${cell.replaceAll("<bucket>", BUCKET).replace(/<[a-z-]+>/g, "example")}`;
}

/** The rows of the first table in the README's "Who may do what" section. */
function readmeRows(): TableRow[] {
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
        return {
            line,
            who: lookup(WHO, who, line),
            action,
            resource: resourceOf(on),
            allowed: lookup(DECISION, allowed, line),
            allowedWithList: lookup(DECISION, allowedWithList, line),
        };
    });
}

let defaults: RegisteredPolicies;
let withList: RegisteredPolicies;

before(async () => {
    ({ defaults, withList } = await policiesWithAndWithoutListing(CONFIG));
});

describe("README: who may do what", () => {
    test("the table says something about both principals, allowed and denied", () => {
        const rows = readmeRows();
        assert.ok(rows.length >= 15, `only ${rows.length} rows`);
        for (const who of ["anonymous", "writer"] as const) {
            assert.ok(rows.some((row) => row.who === who && row.allowed), `${who}: no allowed row`);
            assert.ok(rows.some((row) => row.who === who && !row.allowed), `${who}: no denied row`);
        }
        assert.ok(rows.some((row) => row.allowed !== row.allowedWithList), "no row shows what allowAnonymousList changes");
    });

    test("every row matches the evaluation of the registered policies, in both columns", async () => {
        const wrong: string[] = [];
        for (const row of readmeRows()) {
            const actual = await isAllowed(defaults, row.who, row.action, row.resource);
            const actualWithList = await isAllowed(withList, row.who, row.action, row.resource);
            if (actual !== row.allowed || actualWithList !== row.allowedWithList) {
                const say = (allowed: boolean) => (allowed ? "yes" : "no");
                wrong.push(`${row.line}  -> evaluation says ${say(actual)} | ${say(actualWithList)}`);
            }
        }
        assert.deepEqual(wrong, []);
    });
});
