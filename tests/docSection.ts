// The project's Markdown documentation (README.md, docs/*.md), read by the tests that check what it
// says against the code: the settings and outputs, the access table, the import file, the NixOS
// options.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(__dirname, "..");

/** A documentation file, by its path from the repository root (`docs/security.md`). */
export function readDoc(path: string): string {
    return readFileSync(join(ROOT, path), "utf8");
}

/** README.md and every file under docs/, as path -> text. */
export function allDocs(): Map<string, string> {
    const docs = readdirSync(join(ROOT, "docs"))
        .filter((name) => name.endsWith(".md"))
        .sort()
        .map((name) => `docs/${name}`);
    return new Map(["README.md", ...docs].map((path) => [path, readDoc(path)]));
}

/** The text of `path` from `heading` (e.g. `## Settings`) to the next heading of the same or a higher level. */
export function docSection(path: string, heading: string): string {
    const text = readDoc(path);
    const start = text.indexOf(`\n${heading}\n`);
    assert.notEqual(start, -1, `${path} has a '${heading}' section`);
    const body = start + heading.length + 2;
    // Level-1 headings aside: "# " also starts the comments of the shell examples.
    const next = text.slice(body).search(new RegExp(`^#{2,${heading.split(" ")[0]!.length}} `, "m"));
    return text.slice(start, next === -1 ? undefined : body + next);
}
