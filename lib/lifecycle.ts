// Expiry as one rule in the bucket's S3 lifecycle configuration: it expires every object larger than
// `nix-cache-info` after N days, and the configuration's other rules are not the stack's to touch. Nix refuses a cache without `nix-cache-info`, so the rule must never
// match it; MinIO has no "all but this key" filter, but it has ObjectSizeGreaterThan (releases from
// RELEASE.2023-12-02T10-51-33Z on), and every other object in a cache is larger than that file.
import { isDeepStrictEqual } from "node:util";

/** The ID of the one rule in a bucket's lifecycle configuration that this stack owns. */
export const EXPIRY_RULE_ID = "nix-cache-expiry";
export const MAX_EXPIRE_DAYS = 36500;

/**
 * The size threshold (the byte length of `nix-cache-info`) must stay below the smallest narinfo, or
 * some narinfos would never expire while their NARs do. A narinfo always has these lines
 * (Nix's NarInfo::to_string), so it has at least 213 bytes even with the shortest store dir "/x",
 * 221 with /nix/store, before References, Deriver or Sig:
 *   "StorePath: " + storeDir + "/" + 32-char hash + "-" + name + "\n"  >= 11 + 2 + 1 + 32 + 1 + 1 + 1 = 49
 *   "URL: nar/" + 52-char file hash + ".nar" (+ extension) + "\n"     >= 9 + 52 + 4 + 1 = 66
 *   "Compression: none\n" (or a longer name, or a shorter one with a longer URL)  >= 18
 *   "NarHash: sha256:" + 52 chars + "\n"                              = 69
 *   "NarSize: " + digits + "\n"                                       >= 11
 * A threshold under 200 bytes keeps a clear margin below that (tests/expiry.nix.test.ts checks it
 * against a narinfo real Nix writes).
 */
const THRESHOLD_LIMIT = 200;

export interface ExpiryRule {
    ID: string;
    Status: "Enabled";
    Filter: { ObjectSizeGreaterThan: number };
    Expiration: { Days: number };
}

/** Why `nix-cache-info` with this content cannot serve as the size threshold, or undefined. */
export function thresholdProblem(cacheInfo: string): string | undefined {
    const bytes = Buffer.byteLength(cacheInfo, "utf8");
    if (bytes >= THRESHOLD_LIMIT) {
        return (
            `nix-cache-info would be ${bytes} bytes; expiry spares it by size, which needs it under ` +
            `${THRESHOLD_LIMIT} bytes (the smallest narinfo is larger)`
        );
    }
    return undefined;
}

/** Why a number of days cannot be used for expiry, or undefined. 0 means "no expiry" and is not a rule. */
export function expireDaysProblem(days: number): string | undefined {
    if (!Number.isInteger(days) || days < 1 || days > MAX_EXPIRE_DAYS) {
        return `must be a whole number of days from 1 to ${MAX_EXPIRE_DAYS} (got ${days})`;
    }
    return undefined;
}

/** The stack's rule: everything larger than `cacheInfo` expires after `expireDays`. */
export function expiryRule(expireDays: number, cacheInfo: string): ExpiryRule {
    const problem = expireDaysProblem(expireDays) ?? thresholdProblem(cacheInfo);
    if (problem !== undefined) {
        throw new Error(`expiry: ${problem}`);
    }
    return {
        ID: EXPIRY_RULE_ID,
        Status: "Enabled",
        Filter: { ObjectSizeGreaterThan: Buffer.byteLength(cacheInfo, "utf8") },
        Expiration: { Days: expireDays },
    };
}

/** One rule of a bucket's lifecycle configuration: its element as the server sent it, and what it says. */
export interface LiveRule {
    /** Written back byte for byte, so that a rule this stack does not own stays exactly as it was. */
    xml: string;
    /** Element names to text, as fast-xml-parser reads them ("007" stays "007"). */
    parsed: { ID?: unknown; [element: string]: unknown };
}

/**
 * The rules of a GetBucketLifecycleConfiguration answer. In S3's schema the <Rule> elements are the
 * children of LifecycleConfiguration and contain no <Rule>, so each runs to the next </Rule>. If a
 * parser counts other rules than that split finds, the rules cannot be kept as they are: refused.
 */
export function liveRules(configurationXml: string): LiveRule[] {
    const { XMLParser } = require("fast-xml-parser") as typeof import("fast-xml-parser");
    const parser = new XMLParser({ parseTagValue: false, isArray: (_name, path) => path === "LifecycleConfiguration.Rule" });
    const elements = configurationXml.match(/<Rule(?:\s[^>]*)?>[\s\S]*?<\/Rule\s*>/g) ?? [];
    const parsed = (parser.parse(configurationXml) as { LifecycleConfiguration?: { Rule?: unknown[] } }).LifecycleConfiguration?.Rule ?? [];
    if (parsed.length !== elements.length) {
        throw new Error(
            `the bucket's lifecycle configuration has ${parsed.length} rules, of which ${elements.length} could be ` +
                "kept as they are; nothing was changed",
        );
    }
    return elements.map((xml) => ({ xml, parsed: (parser.parse(xml) as { Rule: LiveRule["parsed"] }).Rule }));
}

/**
 * Whether a stored rule (parsed from the server's answer, or as recorded in state) expires exactly
 * what the wanted one does: the same id, status, size threshold and days, and no filter that narrows
 * or changes it. A server that dropped the size filter stores a rule without a threshold, which is
 * never the same.
 */
export function sameRule(stored: unknown, wanted: ExpiryRule): boolean {
    // The helpers live inside: the expiry provider captures this function, and Pulumi's closure
    // serializer inspects every captured function on its own (see providers/bucketLifecycle.ts).
    const isRecord = (value: unknown): value is Record<string, unknown> =>
        typeof value === "object" && value !== null && !Array.isArray(value);

    /** A whole number as recorded in state (a number) or as XML text; undefined otherwise. */
    function wholeNumber(value: unknown): number | undefined {
        if (typeof value === "number") {
            return Number.isSafeInteger(value) ? value : undefined;
        }
        return typeof value === "string" && /^[0-9]+$/.test(value) ? Number(value) : undefined;
    }

    /**
     * N when a lifecycle filter selects exactly "objects larger than N bytes", else undefined. An empty
     * Prefix (it matches every key) and an And around the size do not change that; a prefix, a tag, an
     * upper bound or an element this code does not know might, so they count as a different filter.
     */
    function sizeThreshold(filter: unknown): number | undefined {
        if (!isRecord(filter)) {
            return undefined;
        }
        const thresholds: (number | undefined)[] = [];
        for (const [element, value] of Object.entries(filter)) {
            if (element === "ObjectSizeGreaterThan") {
                thresholds.push(wholeNumber(value));
            } else if (element === "And") {
                thresholds.push(sizeThreshold(value));
            } else if (element !== "Prefix" || value !== "") {
                return undefined;
            }
        }
        return thresholds.length === 1 ? thresholds[0] : undefined;
    }

    /**
     * What expiry depends on in a rule: its id and status, that it selects exactly the objects larger
     * than the threshold, and its days. Undefined when the rule does anything else to the objects it
     * selects (no size filter, a narrowed filter, no days). Other elements (empty or default actions,
     * element order) are left out: servers answer with them for rules that expire the same objects.
     */
    function ruleEssentials(rule: unknown): { id: unknown; status: unknown; threshold: number; days: number } | undefined {
        if (!isRecord(rule) || (rule.Prefix !== undefined && rule.Prefix !== "")) {
            return undefined; // a Rule-level Prefix is the older place for a prefix filter
        }
        const threshold = sizeThreshold(rule.Filter);
        const days = isRecord(rule.Expiration) ? wholeNumber(rule.Expiration.Days) : undefined;
        if (threshold === undefined || days === undefined) {
            return undefined;
        }
        return { id: rule.ID, status: rule.Status, threshold, days };
    }

    const essentials = ruleEssentials(stored);
    return essentials !== undefined && isDeepStrictEqual(essentials, ruleEssentials(wanted));
}

const UPGRADE_HINT =
    "MinIO releases before December 2023 (RELEASE.2023-12-02T10-51-33Z) do not support the lifecycle filter " +
    "ObjectSizeGreaterThan, which expiry needs to keep nix-cache-info. Upgrade MinIO (or the compatible fork you run) " +
    "to a release from December 2023 or later, or set nix-cache:retention gc (the collector, which keeps closures whole) to go without expiry";

/**
 * The error to report when reading or writing the configuration failed. A write that MinIO before
 * the size filter refuses answers `unknown XML Tag`: with code InvalidRequest up to
 * RELEASE.2023-06-16, InvalidArgument after; other S3 servers refuse unknown schema with MalformedXML.
 */
export function lifecycleRequestError(error: unknown, bucket: string, request: "reading" | "writing"): Error {
    const { code, message } = error as { code?: unknown; message?: unknown };
    const said = `${String(code ?? "error")}: ${String(message ?? error)}`;
    const unsupportedFilter =
        ((code === "InvalidArgument" || code === "InvalidRequest") && /unknown XML tag/i.test(String(message))) ||
        code === "MalformedXML";
    if (request === "writing" && unsupportedFilter) {
        return new Error(
            `bucket '${bucket}': the server refused the expiry rule (${said}). ${UPGRADE_HINT}. ` +
                "Nothing was changed on the server.",
        );
    }
    return new Error(`bucket '${bucket}': ${request} the lifecycle configuration failed (${said})`);
}

/**
 * The error when the server accepted the configuration but stored something else. MinIO before
 * RELEASE.2021-02-07 silently drops unknown filter elements, which turns the rule into "expire
 * everything", nix-cache-info included; the caller removes that rule again.
 */
export function lifecycleMismatchError(bucket: string, stored: unknown): Error {
    return new Error(
        `bucket '${bucket}': the server accepted the expiry rule but stored ${JSON.stringify(stored ?? null)} ` +
            "instead; a server that drops the size filter would expire nix-cache-info, so the rule was removed " +
            `again. ${UPGRADE_HINT}.`,
    );
}
