// `nix-cache-gc`: the collector's command line. Arguments and credentials are checked before any
// request; the work is lib/gc/collect.ts. Exit codes: 0 done, 1 failed (the server failed, or a push
// during the run was left without part of its closure), 2 bad usage or configuration.
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { loadSharedConfigFiles } from "@smithy/shared-ini-file-loader";
import { bucketNameProblem, REGION_NAME, REGION_PROBLEM } from "../s3Names";
import { storePathHash } from "./bucketObjects";
import { CollectFailure, collectGarbage, type CollectReport, type Progress, type RememberedNarInfo } from "./collect";
import { s3Bucket, type CacheBucketClient, type S3Location } from "./s3Bucket";

export const USAGE = `usage: nix-cache-gc --endpoint URL --bucket NAME [--region R] --keep-days N
                    [--root STORE_PATH]... [--grace-hours H] [--now ISO-8601]
                    [--dry-run] [--json] [--profile NAME]

Deletes from a Nix binary cache bucket every narinfo outside the closure of its roots (narinfos
uploaded within --keep-days, --root paths, store paths listed in objects under pins/), then every
NAR no remaining narinfo names that is older than --grace-hours (default 24).
Credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or --profile NAME in
AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials).
Exit: 0 done, 1 failed (or nothing deleted because a narinfo or pin cannot be read, or a push
during the run was left without part of its closure), 2 bad usage or configuration.`;

/** A usage or configuration problem: exit 2, before any request. */
export class UsageError extends Error {}

export interface GcInvocation {
    location: S3Location;
    keepDays: number;
    graceHours: number;
    roots: string[];
    /** --now, or the real time. */
    now: Date;
    /** The real time: uploads in flight are judged by it. */
    wallClock: Date;
    dryRun: boolean;
    json: boolean;
}

const WHOLE = /^(0|[1-9][0-9]*)$/;

function wholeNumber(flag: string, value: string | undefined, fallback?: number): number {
    if (value === undefined) {
        if (fallback === undefined) {
            throw new UsageError(`--${flag} is required: a whole number, such as --${flag} 30`);
        }
        return fallback;
    }
    if (!WHOLE.test(value)) {
        throw new UsageError(`--${flag} must be a whole number (got '${value}')`);
    }
    return Number(value);
}

function endpointOf(value: string | undefined): URL {
    if (value === undefined) {
        throw new UsageError("--endpoint is required: the S3 server's URL, such as --endpoint https://s3.example.org:9000");
    }
    let url: URL;
    try {
        url = new URL(value);
    } catch {
        throw new UsageError(`--endpoint must be a URL such as https://s3.example.org:9000 (got '${value}')`);
    }
    if ((url.protocol !== "http:" && url.protocol !== "https:") || url.pathname !== "/" || url.search !== "" || url.username !== "") {
        throw new UsageError(`--endpoint must be http(s)://host[:port] with no path; the bucket goes in --bucket (got '${value}')`);
    }
    return url;
}

/** Credentials as Nix's S3 store takes them: the environment, or a profile of the shared credentials file. */
async function credentialsOf(
    profile: string | undefined,
    env: NodeJS.ProcessEnv,
): Promise<{ accessKey: string; secretKey: string }> {
    if (profile === undefined) {
        const accessKey = env.AWS_ACCESS_KEY_ID;
        const secretKey = env.AWS_SECRET_ACCESS_KEY;
        if (!accessKey || !secretKey) {
            throw new UsageError(
                "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (the collector's, from the stack's collectorEnv), " +
                    "or pass --profile NAME for a profile in AWS_SHARED_CREDENTIALS_FILE",
            );
        }
        return { accessKey, secretKey };
    }
    const file = env.AWS_SHARED_CREDENTIALS_FILE || join(homedir(), ".aws", "credentials");
    try {
        await readFile(file);
    } catch (error) {
        throw new UsageError(`--profile ${profile}: cannot read the credentials file ${file} (${(error as NodeJS.ErrnoException).code ?? error})`);
    }
    const { credentialsFile } = await loadSharedConfigFiles({ filepath: file, configFilepath: "/dev/null", ignoreCache: true });
    const section = credentialsFile[profile];
    const accessKey = section?.aws_access_key_id;
    const secretKey = section?.aws_secret_access_key;
    if (!accessKey || !secretKey) {
        throw new UsageError(`--profile ${profile}: ${file} has no [${profile}] with aws_access_key_id and aws_secret_access_key`);
    }
    return { accessKey, secretKey };
}

/** Reads and checks the command line; throws UsageError naming the flag and the fix. */
export async function parseInvocation(argv: string[], env: NodeJS.ProcessEnv, clock: () => Date = () => new Date()): Promise<GcInvocation> {
    let values;
    try {
        ({ values } = parseArgs({
            args: argv,
            strict: true,
            allowPositionals: false,
            options: {
                endpoint: { type: "string" },
                bucket: { type: "string" },
                region: { type: "string" },
                "keep-days": { type: "string" },
                root: { type: "string", multiple: true },
                "grace-hours": { type: "string" },
                now: { type: "string" },
                "dry-run": { type: "boolean" },
                json: { type: "boolean" },
                profile: { type: "string" },
            },
        }));
    } catch (error) {
        throw new UsageError((error as Error).message);
    }
    const endpoint = endpointOf(values.endpoint);
    const bucket = values.bucket;
    if (bucket === undefined) {
        throw new UsageError("--bucket is required: the cache's bucket, such as --bucket nix-cache");
    }
    const bucketProblem = bucketNameProblem(bucket);
    if (bucketProblem !== undefined) {
        throw new UsageError(`--bucket ${bucketProblem} (got '${bucket}')`);
    }
    const region = values.region ?? "us-east-1";
    if (!REGION_NAME.test(region)) {
        throw new UsageError(`--region ${REGION_PROBLEM} (got '${region}')`);
    }
    const keepDays = wholeNumber("keep-days", values["keep-days"]);
    const graceHours = wholeNumber("grace-hours", values["grace-hours"], 24);
    const roots = values.root ?? [];
    const badRoot = roots.find((root) => !root.startsWith("/") || storePathHash(root) === undefined);
    if (badRoot !== undefined) {
        throw new UsageError(`--root must be a store path such as /nix/store/<hash>-<name> (got '${badRoot}')`);
    }
    const wallClock = clock();
    let now = wallClock;
    if (values.now !== undefined) {
        now = new Date(values.now);
        const date = /^(\d{4}-\d{2}-\d{2})(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.exec(values.now);
        // A calendar date that does not exist (2026-02-30) would otherwise roll over silently.
        const exists = date !== null && !Number.isNaN(now.getTime()) && new Date(`${date[1]}T00:00:00Z`).toISOString().startsWith(date[1]!);
        if (!exists) {
            throw new UsageError(`--now must be an ISO-8601 time such as 2026-12-01T00:00:00Z (got '${values.now}')`);
        }
    }
    const credentials = await credentialsOf(values.profile, env);
    return {
        location: { endpoint, bucket, region, ...credentials },
        keepDays,
        graceHours,
        roots,
        now,
        wallClock,
        dryRun: values["dry-run"] ?? false,
        json: values.json ?? false,
    };
}

/**
 * Where the remembered narinfo summaries of one bucket live: a disposable cache (deleting it only
 * costs one full read), under XDG_CACHE_HOME like other tools' caches.
 */
export function summaryCacheFile(location: S3Location, env: NodeJS.ProcessEnv): string {
    const base = env.XDG_CACHE_HOME || join(homedir(), ".cache");
    const id = createHash("sha256").update(`${location.endpoint.origin}/${location.bucket}`).digest("hex").slice(0, 16);
    return join(base, "nix-cache-gc", `${location.bucket}-${id}.json`);
}

async function loadRemembered(file: string): Promise<Map<string, RememberedNarInfo>> {
    try {
        return new Map(Object.entries(JSON.parse(await readFile(file, "utf8")) as Record<string, RememberedNarInfo>));
    } catch {
        return new Map();
    }
}

async function saveRemembered(file: string, remembered: Map<string, RememberedNarInfo>): Promise<void> {
    await mkdir(dirname(file), { recursive: true });
    const temporary = `${file}.${process.pid}.tmp`;
    await writeFile(temporary, JSON.stringify(Object.fromEntries(remembered)));
    await rename(temporary, file);
}

export function renderSummary(report: CollectReport): string {
    const verb = report.dryRun ? "would delete" : "deleted";
    const lines = [
        `${report.narinfos} narinfos, ${report.live} live (roots: ${report.roots.recent} recent, ${report.roots.explicit} pinned or --root)`,
        `${verb} ${report.deletedNarinfos.length} narinfos, ${report.deletedListings.length} listings, ${report.deletedNars.length} NARs`,
        `kept ${report.youngUnnamedNars.length} unnamed NARs younger than the grace period`,
    ];
    const warnings: [string, unknown[]][] = [
        ["NOTHING DELETED", report.blocked],
        ["narinfos spared because a push during the run needs them", report.sparedDuringRun],
        ["references to paths the cache does not hold", report.missingReferences.map((m) => `${m.storePath} -> ${m.reference}`)],
        ["live narinfos whose NAR the cache does not hold", report.missingNars.map((m) => `${m.storePath}: ${m.nar}`)],
        ["roots the cache does not hold", report.missingRoots],
        ["unreadable narinfos", report.unreadableNarinfos.map((u) => `${u.key}: ${u.problem}`)],
        ["pin problems", report.pinProblems],
        ["keys left alone", report.leftAlone],
        ["DANGLING: pushed during the run, now missing part of their closure; push them again", report.dangling.map((d) => `${d.storePath}: ${d.missing.join(", ")}`)],
    ];
    for (const [title, items] of warnings) {
        if (items.length > 0) {
            lines.push(`${title} (${items.length}):`, ...items.slice(0, 20).map((item) => `  ${item}`));
            if (items.length > 20) {
                lines.push(`  ... and ${items.length - 20} more (--json lists all)`);
            }
        }
    }
    return `${lines.join("\n")}\n`;
}

/** A progress line on stderr at most once a second, for long runs. */
function progressPrinter(stream: NodeJS.WriteStream): (progress: Progress) => void {
    let last = 0;
    return ({ phase, done, total }) => {
        const now = Date.now();
        if (now - last >= 1000 || (done === total && total > 1000)) {
            last = now;
            stream.write(`nix-cache-gc: ${phase} ${done}/${total}\n`);
        }
    };
}

export interface Io {
    stdout: NodeJS.WritableStream;
    stderr: NodeJS.WriteStream;
    env: NodeJS.ProcessEnv;
    /** The bucket client; s3Bucket unless a test wraps it. */
    connect?: (location: S3Location) => CacheBucketClient;
}

export async function main(argv: string[], io: Io): Promise<number> {
    let invocation: GcInvocation;
    try {
        invocation = await parseInvocation(argv, io.env);
    } catch (error) {
        if (error instanceof UsageError) {
            io.stderr.write(`nix-cache-gc: ${error.message}\n\n${USAGE}\n`);
            return 2;
        }
        throw error;
    }
    const cacheFile = summaryCacheFile(invocation.location, io.env);
    const remembered = await loadRemembered(cacheFile);
    // The report comes first: a cache that cannot be written must not hide what a run deleted.
    const keepRemembered = () =>
        saveRemembered(cacheFile, remembered).catch((error: Error) =>
            io.stderr.write(`nix-cache-gc: warning: cannot keep the narinfo cache ${cacheFile}: ${error.message}\n`),
        );
    try {
        const report = await collectGarbage((io.connect ?? s3Bucket)(invocation.location), {
            now: invocation.now,
            wallClock: invocation.wallClock,
            keepDays: invocation.keepDays,
            graceHours: invocation.graceHours,
            roots: invocation.roots,
            dryRun: invocation.dryRun,
            parallelism: 16,
            remembered,
            ...(invocation.json ? {} : { onProgress: progressPrinter(io.stderr) }),
        });
        io.stdout.write(invocation.json ? `${JSON.stringify(report)}\n` : renderSummary(report));
        await keepRemembered();
        return report.dangling.length > 0 || report.blocked.length > 0 ? 1 : 0;
    } catch (error) {
        io.stderr.write(`nix-cache-gc: failed: ${(error as Error).message}\n`);
        if (invocation.json && error instanceof CollectFailure) {
            // What was deleted before the failure, for the operator's record.
            io.stdout.write(`${JSON.stringify({ ...error.report, error: error.message })}\n`);
        }
        await keepRemembered();
        return 1;
    }
}
