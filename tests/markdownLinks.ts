// Relative links and anchors of Markdown files, resolved the way GitHub resolves them when it renders
// a file: a link's path is relative to the linking file's folder; `#fragment` names a heading by its
// slug (github-slugger is the slug function GitHub's renderer is modelled on: lower case, punctuation
// dropped, spaces to hyphens, "-1", "-2" for repeats) or an explicit `<a id>` / `<a name>`.
import { existsSync, statSync } from "node:fs";
import { dirname, join, normalize, relative, sep } from "node:path";

type Root = import("mdast").Root;
type Nodes = import("mdast").Nodes;

export interface MarkdownDocument {
    /** The file's path relative to the repository root, with forward slashes. */
    path: string;
    anchors: Set<string>;
    /** Every link, image and reference definition target, as written. */
    targets: string[];
    /** The bodies of ```mermaid code blocks. */
    mermaidBlocks: string[];
}

export interface MarkdownTools {
    parse(text: string): Root;
    toText(node: Nodes): string;
    newSlugger(): { slug(text: string): string };
}

export async function loadMarkdownTools(): Promise<MarkdownTools> {
    // ES modules only: imported at run time from this CommonJS test code.
    const { fromMarkdown } = await import("mdast-util-from-markdown");
    const { toString } = await import("mdast-util-to-string");
    const { default: GithubSlugger } = await import("github-slugger");
    return { parse: (text) => fromMarkdown(text), toText: (node) => toString(node), newSlugger: () => new GithubSlugger() };
}

const HTML_ANCHOR = /<a\s+(?:[^>]*\s)?(?:id|name)="([^"]+)"/g;

export function readMarkdown(tools: MarkdownTools, path: string, text: string): MarkdownDocument {
    const document: MarkdownDocument = { path, anchors: new Set(), targets: [], mermaidBlocks: [] };
    const slugger = tools.newSlugger();
    const visit = (node: Nodes): void => {
        switch (node.type) {
            case "heading":
                document.anchors.add(slugger.slug(tools.toText(node)));
                break;
            case "link":
            case "image":
            case "definition":
                document.targets.push(node.url);
                break;
            case "html":
                for (const match of node.value.matchAll(HTML_ANCHOR)) document.anchors.add(match[1]);
                break;
            case "code":
                if (node.lang === "mermaid") document.mermaidBlocks.push(node.value);
                break;
        }
        if ("children" in node) for (const child of node.children) visit(child);
    };
    visit(tools.parse(text));
    return document;
}

/** Links to other sites or protocols are not checked here: only the repository's own files. */
function isExternal(target: string): boolean {
    return /^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("//");
}

/**
 * The problems of one document's relative links, given every Markdown document of the repository
 * (keyed by path) and the repository root for links to other files.
 */
export function linkProblems(document: MarkdownDocument, documents: Map<string, MarkdownDocument>, root: string): string[] {
    const problems: string[] = [];
    for (const target of document.targets) {
        if (isExternal(target)) continue;
        const hashAt = target.indexOf("#");
        const pathPart = decodeURI(hashAt < 0 ? target : target.slice(0, hashAt));
        const fragment = hashAt < 0 ? undefined : decodeURIComponent(target.slice(hashAt + 1));
        const linked = pathPart === "" ? document.path : normalize(join(dirname(document.path), pathPart)).split(sep).join("/");
        if (linked.startsWith("../") || relative(root, join(root, linked)).startsWith("..")) {
            problems.push(`${document.path}: ${target} leaves the repository`);
            continue;
        }
        const onDisk = join(root, linked);
        if (!documents.has(linked) && !existsSync(onDisk)) {
            problems.push(`${document.path}: ${target}: no file ${linked}`);
            continue;
        }
        if (fragment === undefined) continue;
        const linkedDocument = documents.get(linked);
        if (linkedDocument === undefined) {
            const kind = existsSync(onDisk) && statSync(onDisk).isDirectory() ? "a folder" : "not a Markdown file";
            problems.push(`${document.path}: ${target}: ${linked} is ${kind}, so #${fragment} names nothing`);
        } else if (!linkedDocument.anchors.has(fragment)) {
            problems.push(`${document.path}: ${target}: ${linked} has no heading or anchor #${fragment}`);
        }
    }
    return problems;
}
