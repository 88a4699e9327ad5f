// The "Who may do what" table of docs/security.md, checked row by row against the evaluation of the policy
// documents the program registers, so that the documentation cannot drift from the code.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { isAllowed, policiesWithAndWithoutListing, STACK_CONFIG, type RegisteredPolicies } from "./accessEvaluation";
import { documentedAccessRows } from "./accessTableDoc";

const BUCKET = "nix-cache";
const CONFIG = { ...STACK_CONFIG, "nix-cache:bucket": BUCKET };

let defaults: RegisteredPolicies;
let withList: RegisteredPolicies;

before(async () => {
    ({ defaults, withList } = await policiesWithAndWithoutListing(CONFIG));
});

describe("docs/security.md: who may do what", () => {
    test("the table says something about every principal, allowed and denied", () => {
        const rows = documentedAccessRows(BUCKET);
        assert.ok(rows.length >= 15, `only ${rows.length} rows`);
        for (const who of ["anonymous", "writer", "collector"] as const) {
            assert.ok(rows.some((row) => row.who === who && row.allowed), `${who}: no allowed row`);
            assert.ok(rows.some((row) => row.who === who && !row.allowed), `${who}: no denied row`);
        }
        assert.ok(rows.some((row) => row.allowed !== row.allowedWithList), "no row shows what allowAnonymousList changes");
    });

    test("every row matches the evaluation of the registered policies, in both columns", async () => {
        const wrong: string[] = [];
        for (const row of documentedAccessRows(BUCKET)) {
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
