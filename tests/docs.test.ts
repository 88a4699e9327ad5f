// README.md and docs/: every relative link and anchor resolves, every docs file is reachable from the
// README, the README stays a front page (at most 250 lines), and its Mermaid diagram parses with
// Mermaid's own parser (npm `mermaid`, the library GitHub renders ```mermaid blocks with), not by eye.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { allDocs, readDoc } from "./docSection";
import { linkProblems, loadMarkdownTools, readMarkdown, type MarkdownDocument, type MarkdownTools } from "./markdownLinks";

const ROOT = join(__dirname, "..");
const README_MAX_LINES = 250;

let tools: MarkdownTools;
let documents: Map<string, MarkdownDocument>;

before(async () => {
    tools = await loadMarkdownTools();
    documents = new Map([...allDocs()].map(([path, text]) => [path, readMarkdown(tools, path, text)]));
});

describe("the link checker itself", () => {
    function check(files: Record<string, string>): string[] {
        const parsed = new Map(Object.entries(files).map(([path, text]) => [path, readMarkdown(tools, path, text)]));
        return [...parsed.values()].flatMap((document) => linkProblems(document, parsed, ROOT));
    }

    test("accepts links to existing files, headings (GitHub's slugs, repeats numbered) and <a id> anchors", () => {
        const problems = check({
            "README.md": [
                "# Top",
                "[a](docs/a.md#the-cache-info-file-nix-cache-info) [b](docs/a.md#setup-1) [c](#top)",
                "[d](docs/a.md#pinned) [e](package.json) [f](https://example.org/#x) [g][ref]",
                "",
                "[ref]: ./docs/a.md#setup",
            ].join("\n"),
            "docs/a.md": "# The cache-info file: `nix-cache-info`\n## Setup\n## Setup\n<a id=\"pinned\"></a>\n[up](../README.md#top)\n",
        });
        assert.deepEqual(problems, []);
    });

    test("reports a missing file, a missing heading, a fragment on a non-Markdown file and a path out of the repository", () => {
        const problems = check({
            "README.md": "# Top\n[a](docs/gone.md) [b](docs/a.md#nowhere) [c](#Top) [d](package.json#x) [e](../outside.md)\n",
            "docs/a.md": "# A\n",
        });
        assert.deepEqual(problems, [
            "README.md: docs/gone.md: no file docs/gone.md",
            "README.md: docs/a.md#nowhere: docs/a.md has no heading or anchor #nowhere",
            // GitHub's slugs are lower case: #Top does not jump to "# Top".
            "README.md: #Top: README.md has no heading or anchor #Top",
            "README.md: package.json#x: package.json is not a Markdown file, so #x names nothing",
            "README.md: ../outside.md leaves the repository",
        ]);
    });
});

describe("README.md and docs/", () => {
    test("every relative link and anchor resolves", () => {
        const problems = [...documents.values()].flatMap((document) => linkProblems(document, documents, ROOT));
        assert.deepEqual(problems, []);
    });

    test("every docs/ file is linked from the README", () => {
        const readme = documents.get("README.md")!;
        const linked = new Set(readme.targets.map((target) => target.split("#")[0].replace(/^\.\//, "")));
        const unlinked = [...documents.keys()].filter((path) => path !== "README.md" && !linked.has(path));
        assert.deepEqual(unlinked, [], "add a line for each to the README's list of the reference");
    });

    test(`the README is at most ${README_MAX_LINES} lines`, () => {
        const lines = readDoc("README.md").split("\n").length - 1;
        assert.ok(lines <= README_MAX_LINES, `README.md has ${lines} lines; move detail into docs/`);
    });
});

describe("the README's Mermaid diagram", () => {
    // mermaid sanitises labels with DOMPurify, which needs a DOM: jsdom gives it one, as a browser would.
    let mermaid: typeof import("mermaid").default;
    let closeWindow: () => void;

    before(async () => {
        const { JSDOM } = await import("jsdom");
        const { window } = new JSDOM("");
        Object.assign(globalThis, { window });
        closeWindow = () => window.close();
        mermaid = (await import("mermaid")).default;
    });
    after(() => closeWindow());

    test("Mermaid's parser refuses a broken flowchart (the check can fail)", async () => {
        await assert.rejects(mermaid.parse('flowchart LR\n  up["pulumi up"] --> (bucket'), /Parse error/);
    });

    test("there is one flowchart, it parses, and it shows each part", async () => {
        const blocks = documents.get("README.md")!.mermaidBlocks;
        assert.equal(blocks.length, 1, "the README holds exactly one ```mermaid block");
        const result = await mermaid.parse(blocks[0]);
        assert.match(result.diagramType, /^flowchart/);
        // The parts the diagram must show (issue 14): the deployment, the builders' path to the bucket,
        // the clients and the collector.
        for (const part of [/pulumi up/i, /MinIO/, /hook/i, /queue/i, /drainer/i, /NixOS/, /collector/i]) {
            assert.match(blocks[0], part);
        }
    });

    test("every ```mermaid block in docs/ parses too", async () => {
        for (const [path, document] of documents) {
            for (const block of document.mermaidBlocks) {
                await assert.doesNotReject(mermaid.parse(block), `${path}: a Mermaid block does not parse`);
            }
        }
    });
});
