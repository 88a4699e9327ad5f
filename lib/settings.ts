// The project's settings: read from Pulumi config (`nix-cache:*`, plus the `minio:*` provider
// settings the defaults derive from), validated in one pass so that every problem is reported at
// once, by setting name, before any resource is registered.
import { X509Certificate } from "node:crypto";
import * as v from "valibot";
import { builderPathProblem, secretInStoreProblem } from "./builderConfig";
import { renderCacheInfo } from "./cacheInfo";
import type { Compression } from "./clientConfig";
import { MAX_EXPIRE_DAYS, thresholdProblem } from "./lifecycle";
import { endpointUrl, minioConnection, type Environment, type MinioConnection } from "./minioConnection";
import { keyNameProblem, parseNixPublicKey } from "./nixKeys";
import { bucketNameProblem, REGION_NAME, REGION_PROBLEM } from "./s3Names";

export const NAMESPACE = "nix-cache";

export const RETENTIONS = ["gc", "expire", "none"] as const;
export type RetentionMode = (typeof RETENTIONS)[number];

/** The settings only one retention mode reads; any of them set under another mode is refused. */
const RETENTION_SETTINGS = {
    gc: ["collectorName", "gcKeepDays", "gcGraceHours"],
    expire: ["expireDays"],
    none: [],
} as const satisfies Record<RetentionMode, readonly string[]>;

const DEFAULT_COLLECTOR_NAME = "nixcollector";
const DEFAULT_GC_KEEP_DAYS = 30;
const DEFAULT_GC_GRACE_HOURS = 24;
const DEFAULT_EXPIRE_DAYS = 30;
const MAX_GC_GRACE_HOURS = 8760;

/**
 * How the cache sheds paths, with exactly the settings that mode reads (the others are `never`, so
 * that code reads them only after narrowing on `retention`).
 */
export type RetentionSettings =
    | {
          /** A scheduled `nix-cache-gc` deletes what no recent push, pin or root reaches. */
          retention: "gc";
          /** The collector's MinIO user (access key). */
          collectorName: string;
          /** Narinfos uploaded within this many days are roots. */
          gcKeepDays: number;
          /** Unreferenced NARs younger than this many hours are uploads in flight, and kept. */
          gcGraceHours: number;
          expireDays?: never;
      }
    | {
          /** A lifecycle rule deletes everything but `nix-cache-info` some days after its upload. */
          retention: "expire";
          expireDays: number;
          collectorName?: never;
          gcKeepDays?: never;
          gcGraceHours?: never;
      }
    | { retention: "none"; collectorName?: never; gcKeepDays?: never; gcGraceHours?: never; expireDays?: never };

export type CacheSettings = CommonSettings & RetentionSettings;

interface CommonSettings {
    bucket: string;
    publicUrl: string;
    keyName: string;
    writerName: string;
    /** The writer's own secret key; undefined means "generate one". */
    writerSecret?: string;
    priority: number;
    wantMassQuery: boolean;
    storeDir: string;
    allowAnonymousList: boolean;
    region: string;
    compression: Compression;
    /** `compression-level` in the upload URL; undefined means Nix's default for the compression. */
    compressionLevel?: number;
    protect: boolean;
    /** The `minio` provider's connection; the expiry rule is written through it. */
    minio: MinioConnection;
    /** Public keys of earlier key generations that clients keep trusting during a rotation. */
    previousPublicKeys: string[];
    /** PEM certificate(s) of a private CA that clients must trust to reach the public URL. */
    caCertificate?: string;
    /** Run the post-deploy check (anonymous GET of nix-cache-info, refused anonymous PUT). */
    verifyDeployment: boolean;
    /** Where builders without NixOS install scripts/enqueue, their post-build-hook. */
    builderHook: string;
    /** Where builders keep the cache's secret key (outside the Nix store). */
    builderSecretKeyFile: string;
    /** Where builders keep the writer's credentials file (outside the Nix store). */
    builderCredentialsFile: string;
}

/** Raised for invalid settings; `problems` has one line per problem, each naming its setting. */
export class SettingsError extends Error {
    constructor(readonly problems: string[]) {
        super(`invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join("\n")}`);
        this.name = "SettingsError";
    }
}

// MinIO's own limits for user credentials: access key 3-20 characters without '=' or ','; secret
// key 8-40 characters. The writer's access key is also the AWS profile name in `uploadUrl` and
// ~/.aws/credentials, so user names are kept to characters that need no quoting there.
function userNameProblem(name: string): string | undefined {
    if (name.length < 3 || name.length > 20) {
        return `must be 3 to 20 characters long, MinIO's limit for access keys (got ${name.length})`;
    }
    if (!/^[A-Za-z0-9._-]+$/.test(name)) {
        return "may contain only letters, digits, '.', '_' and '-' (it is also the AWS profile name)";
    }
    return undefined;
}

function writerSecretProblem(secret: string): string | undefined {
    if (secret.length < 8 || secret.length > 40) {
        return `must be 8 to 40 characters long, MinIO's limit for secret keys (got ${secret.length})`;
    }
    // It is written unquoted into ~/.aws/credentials, where '#', ';', quotes or '\\' may be read
    // differently by each INI parser: keep to the characters AWS's own secret keys use, and a few more.
    if (!/^[A-Za-z0-9+/=._~-]+$/.test(secret)) {
        return "may contain only letters, digits and + / = . _ ~ - (it goes unquoted into ~/.aws/credentials)";
    }
    return undefined;
}

function publicUrlProblem(url: string): string | undefined {
    let parsed: URL;
    try {
        parsed = new URL(url);
    } catch {
        return `must be an absolute http:// or https:// URL such as https://s3.example.org (got '${url}')`;
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
        return `must use http:// or https:// (got '${parsed.protocol}')`;
    }
    if (parsed.pathname !== "/" || parsed.search !== "" || parsed.hash !== "" || parsed.username !== "") {
        return "must be only scheme, host and port: MinIO serves buckets at the root (path-style)";
    }
    return undefined;
}

function storeDirProblem(dir: string): string | undefined {
    if (!dir.startsWith("/") || dir.length < 2 || dir.endsWith("/")) {
        return `must be an absolute path without a trailing '/', such as /nix/store (got '${dir}')`;
    }
    if (/\s/.test(dir) || dir.split("/").some((part) => part === "." || part === "..")) {
        return "must be a canonical path: no whitespace, '.' or '..'";
    }
    return undefined;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** The certificates of a PEM text, normalised to one block per certificate; throws why not. */
function parsePemCertificates(pem: string): string[] {
    if (/PRIVATE KEY-----/.test(pem)) {
        throw new Error("contains a private key; only the CA's certificate belongs here");
    }
    const blocks = pem.match(PEM_CERTIFICATE) ?? [];
    if (blocks.length === 0) {
        throw new Error("must be PEM text with at least one -----BEGIN CERTIFICATE----- block");
    }
    return blocks.map((block, index) => {
        try {
            return new X509Certificate(block).toString().trim();
        } catch (error) {
            throw new Error(`certificate ${index + 1} is not a valid X.509 certificate (${(error as Error).message})`);
        }
    });
}

// Pulumi hands a list-valued setting to the program as JSON text.
const SET_LIST_HINT = "set items with: pulumi config set --path 'nix-cache:previousPublicKeys[0]' NAME:BASE64";

function parsePublicKeyList({ dataset: { value: text }, addIssue, NEVER }: v.RawTransformContext<string>): string[] {
    let items: unknown;
    try {
        items = JSON.parse(text);
    } catch {
        items = undefined;
    }
    if (!Array.isArray(items) || !items.every((item) => typeof item === "string")) {
        addIssue({ message: `must be a list of Nix public keys; ${SET_LIST_HINT}` });
        return NEVER;
    }
    const names = new Map<string, number>();
    items.forEach((item, index) => {
        try {
            const { name } = parseNixPublicKey(item);
            const earlier = names.get(name);
            if (earlier !== undefined) {
                addIssue({
                    message: `[${index}] has the same key name '${name}' as [${earlier}]; Nix keeps only one key per name`,
                });
            }
            names.set(name, index);
        } catch (error) {
            addIssue({ message: `[${index}] is not a Nix public key: ${(error as Error).message}` });
        }
    });
    return items.map((item) => item.trim());
}

/** A string setting; `problem` says what is wrong with a value, or undefined when it is fine. */
const checked = (problem: (value: string) => string | undefined) =>
    v.pipe(
        v.string(),
        v.rawCheck(({ dataset, addIssue }) => {
            // Always typed here: the pipe stops at v.string() for anything but a string.
            const message = dataset.typed ? problem(dataset.value) : undefined;
            if (message !== undefined) {
                addIssue({ message });
            }
        }),
    );

const booleanSetting = (fallback: boolean) =>
    v.optional(
        v.pipe(
            v.picklist(["true", "false"], "must be true or false"),
            v.transform((value) => value === "true"),
        ),
        fallback ? "true" : "false",
    );

/** A whole number from `min` to `max`, written without sign, leading zeros or exponent. */
const wholeNumber = (min: number, max: number, message: string) =>
    v.pipe(
        v.string(),
        v.check((value) => /^[0-9]{1,6}$/.test(value) && !/^0[0-9]/.test(value) && Number(value) >= min && Number(value) <= max, message),
        v.transform(Number),
    );

const COMPRESSIONS = ["zstd", "xz", "none"] as const satisfies readonly Compression[];

/**
 * The `compression-level` values Nix's compressors take, per compression (Nix 2.8 and 2.34 hand the
 * level to libarchive's filter, which refuses anything else: xz a single digit; zstd up to
 * ZSTD_maxCLevel(), 22). zstd's level 0 (an alias of its default) and its negative "fast" levels are
 * left out: Nix reserves -1 for "its default", so that range has a hole. `none` takes no level (Nix
 * would silently ignore it).
 */
const COMPRESSION_LEVELS = {
    xz: { min: 0, max: 9, nixDefault: 6 },
    zstd: { min: 1, max: 22, nixDefault: 3 },
} as const satisfies Partial<Record<Compression, { min: number; max: number; nixDefault: number }>>;

/** zstd's level when compressionLevel is unset: measured with scripts/bench-upload (see docs/performance.md). */
export const DEFAULT_ZSTD_COMPRESSION_LEVEL = 9;

function compressionLevelProblem(compression: Compression, level: number): string | undefined {
    if (compression === "none") {
        return (
            "applies only with nix-cache:compression zstd or xz, and compression is none (Nix ignores a level for " +
            "uncompressed NARs); remove it (pulumi config rm nix-cache:compressionLevel) or set nix-cache:compression zstd"
        );
    }
    const { min, max, nixDefault } = COMPRESSION_LEVELS[compression];
    if (level < min || level > max) {
        return `must be from ${min} to ${max} for ${compression} (Nix's default is ${nixDefault}; got ${level})`;
    }
    return undefined;
}

const schema = v.objectWithRest(
    {
        bucket: v.optional(checked(bucketNameProblem), "nix-cache"),
        publicUrl: v.optional(checked(publicUrlProblem)),
        keyName: v.optional(checked((name) => keyNameProblem(name))),
        writerName: v.optional(checked(userNameProblem), "nixbuilder"),
        writerSecret: v.optional(checked(writerSecretProblem)),
        priority: v.optional(
            v.pipe(v.string(), v.regex(/^[1-9][0-9]{0,5}$/, "must be a positive whole number such as 40"), v.transform(Number)),
            "40",
        ),
        wantMassQuery: booleanSetting(true),
        storeDir: v.optional(checked(storeDirProblem), "/nix/store"),
        allowAnonymousList: booleanSetting(false),
        region: v.optional(v.pipe(v.string(), v.regex(REGION_NAME, REGION_PROBLEM))),
        compression: v.optional(v.picklist(COMPRESSIONS, `must be one of ${COMPRESSIONS.join(", ")}`), "zstd"),
        // No default here: it depends on the compression (applied below), so Pulumi.yaml must not declare it.
        compressionLevel: v.optional(wholeNumber(0, 999999, "must be a whole number, such as 9")),
        protect: booleanSetting(true),
        retention: v.optional(v.picklist(RETENTIONS, `must be one of ${RETENTIONS.join(", ")}`), "gc"),
        // No defaults here: whether these are set at all decides the combination checks, so their
        // defaults are applied after them (and Pulumi.yaml must not declare them, see pulumiProject.test.ts).
        collectorName: v.optional(checked(userNameProblem)),
        gcKeepDays: v.optional(wholeNumber(1, MAX_EXPIRE_DAYS, `must be a whole number of days from 1 to ${MAX_EXPIRE_DAYS}, such as 30`)),
        gcGraceHours: v.optional(wholeNumber(1, MAX_GC_GRACE_HOURS, `must be a whole number of hours from 1 to ${MAX_GC_GRACE_HOURS}, such as 24`)),
        expireDays: v.optional(
            wholeNumber(
                1,
                MAX_EXPIRE_DAYS,
                `must be a whole number of days from 1 to ${MAX_EXPIRE_DAYS}, such as 30 (no expiry at all: nix-cache:retention none)`,
            ),
        ),
        previousPublicKeys: v.optional(v.pipe(v.string(), v.rawTransform(parsePublicKeyList)), "[]"),
        caCertificate: v.optional(
            v.pipe(
                v.string(),
                v.rawTransform(({ dataset, addIssue, NEVER }) => {
                    try {
                        return `${parsePemCertificates(dataset.value).join("\n")}\n`;
                    } catch (error) {
                        addIssue({ message: (error as Error).message });
                        return NEVER;
                    }
                }),
            ),
        ),
        verifyDeployment: booleanSetting(true),
        builderHook: v.optional(checked(builderPathProblem), "/usr/local/bin/nix-cache-enqueue"),
        builderSecretKeyFile: v.optional(checked(builderPathProblem), "/etc/nix/nix-cache-secret-key"),
        builderCredentialsFile: v.optional(checked(builderPathProblem), "/etc/nix/nix-cache-credentials"),
    },
    // Every other key is a problem of its own (a misspelt setting is otherwise silently ignored).
    v.never("unknown setting"),
);

export const SETTING_NAMES = Object.keys(schema.entries);

/**
 * Settings without a default in the schema: unset means "derive it" (publicUrl, keyName, region),
 * "none" (caCertificate) or "generate it" (writerSecret); or the setting belongs to one retention
 * mode (collectorName, gcKeepDays, gcGraceHours, expireDays), where being set at all matters and the
 * default is applied after the combination checks; or its default depends on another setting
 * (compressionLevel: DEFAULT_ZSTD_COMPRESSION_LEVEL for zstd, Nix's own for xz, none for none). Pulumi.yaml must not declare them: the Pulumi
 * CLI makes every declared project key without a default required for every stack, and puts a
 * declared default into the config the program sees, as if the stack had set it.
 */
export const SETTINGS_WITHOUT_DEFAULT = Object.entries(schema.entries)
    .filter(([, entry]) => entry.default === undefined)
    .map(([name]) => name);

/**
 * Validates the full Pulumi config map (`pulumi.runtime.allConfig()`: keys like `nix-cache:bucket`
 * and `minio:minioServer`, values as strings) into settings. Throws SettingsError listing every
 * problem. `env` supplies the `minio` provider's environment fallbacks (MINIO_ENDPOINT, ...).
 */
export function parseSettings(config: Record<string, string>, env: Environment = process.env): CacheSettings {
    const prefix = `${NAMESPACE}:`;
    const own = Object.fromEntries(
        Object.entries(config)
            .filter(([key]) => key.startsWith(prefix))
            .map(([key, value]) => [key.slice(prefix.length), value]),
    );
    const problems: string[] = [];
    // A setting of another retention mode than the chosen one would silently do nothing: refuse it
    // (and leave its value unchecked: it has to go either way).
    const chosen = own.retention ?? "gc";
    if ((RETENTIONS as readonly string[]).includes(chosen)) {
        for (const [mode, names] of Object.entries(RETENTION_SETTINGS)) {
            for (const name of names.filter((setting) => mode !== chosen && own[setting] !== undefined)) {
                problems.push(
                    `${prefix}${name}: applies only with ${prefix}retention ${mode}, and retention is ${chosen}` +
                        `${own.retention === undefined ? " (the default)" : ""}; remove it ` +
                        `(pulumi config rm ${prefix}${name}) or set ${prefix}retention ${mode}`,
                );
                delete own[name];
            }
        }
    }
    const result = v.safeParse(schema, own);
    for (const issue of result.issues ?? []) {
        const hint = issue.type === "never" ? `; known settings: ${SETTING_NAMES.join(", ")}` : "";
        problems.push(`${prefix}${v.getDotPath(issue)}: ${issue.message}${hint}`);
    }

    // The default public URL is the endpoint the `minio` provider connects to (config, then environment).
    const { connection, problems: connectionProblems } = minioConnection(config, env);
    const publicUrl = (own.publicUrl ?? endpointUrl(connection))?.replace(/\/$/, "");
    if (publicUrl === undefined) {
        problems.push(
            `${prefix}publicUrl: not set, and there is no valid minio:minioServer (or MINIO_ENDPOINT) to derive it from; ` +
                "set one: pulumi config set nix-cache:publicUrl https://s3.example.org",
        );
    } else if (own.publicUrl === undefined && publicUrlProblem(publicUrl) !== undefined) {
        problems.push(
            `${prefix}publicUrl: the default derived from the MinIO endpoint ('${publicUrl}') ` +
                `${publicUrlProblem(publicUrl)}; set nix-cache:publicUrl explicitly`,
        );
    }
    if (own.region === undefined && !REGION_NAME.test(connection.region)) {
        problems.push(
            `${prefix}region: the default taken from minio:minioRegion ('${connection.region}') ${REGION_PROBLEM}; ` +
                "fix minio:minioRegion or set nix-cache:region",
        );
    }
    const expiryOn = result.success && result.output.retention === "expire";
    // The connection matters when the public URL derives from it, and for expiry, which writes the
    // bucket's lifecycle rule itself through the provider's connection.
    if (own.publicUrl === undefined || expiryOn) {
        problems.push(...connectionProblems);
    }
    if (expiryOn) {
        const threshold = thresholdProblem(renderCacheInfo(result.output));
        if (threshold !== undefined) {
            problems.push(`${prefix}retention: expire: ${threshold}; shorten nix-cache:storeDir or set nix-cache:retention gc`);
        }
    }
    for (const name of ["builderSecretKeyFile", "builderCredentialsFile"] as const) {
        const inStore = result.success ? secretInStoreProblem(result.output[name], result.output.storeDir) : undefined;
        if (inStore !== undefined) {
            problems.push(`${prefix}${name}: ${inStore}`);
        }
    }
    if (result.success && result.output.retention === "gc") {
        const { collectorName = DEFAULT_COLLECTOR_NAME, writerName } = result.output;
        if (collectorName === writerName) {
            problems.push(
                `${prefix}collectorName: must differ from ${prefix}writerName ('${writerName}'): MinIO would make the ` +
                    "writer and the collector one user, whose policy either uploads or deletes; choose another name",
            );
        }
    }
    if (result.success && result.output.compressionLevel !== undefined) {
        const levelProblem = compressionLevelProblem(result.output.compression, result.output.compressionLevel);
        if (levelProblem !== undefined) {
            problems.push(`${prefix}compressionLevel: ${levelProblem}`);
        }
    }
    if (problems.length > 0 || !result.success || publicUrl === undefined) {
        throw new SettingsError(problems);
    }

    // The retention settings are put back below, each with its mode's default.
    const {
        keyName,
        writerSecret,
        caCertificate,
        region,
        compressionLevel,
        retention,
        collectorName,
        gcKeepDays,
        gcGraceHours,
        expireDays,
        ...rest
    } = result.output;
    // Nix's convention: the cache's host name and a generation, bumped to rotate the key.
    const derivedKeyName = `${new URL(publicUrl).hostname}-1`;
    if (keyName === undefined && keyNameProblem(derivedKeyName) !== undefined) {
        throw new SettingsError([
            `${prefix}keyName: the default derived from the public URL ('${derivedKeyName}') ` +
                `${keyNameProblem(derivedKeyName)}; set nix-cache:keyName, e.g. cache.example.org-1`,
        ]);
    }
    const currentKeyName = keyName ?? derivedKeyName;
    // Nix keeps one trusted key per name: an old key under the current name would shadow the new one.
    const clash = rest.previousPublicKeys.findIndex((key) => parseNixPublicKey(key).name === currentKeyName);
    if (clash >= 0) {
        throw new SettingsError([
            `${prefix}previousPublicKeys: [${clash}] has the current key name '${currentKeyName}'; ` +
                "bump the generation in nix-cache:keyName (e.g. -1 to -2) before moving the old public key here",
        ]);
    }
    const retentionSettings: RetentionSettings =
        retention === "gc"
            ? {
                  retention,
                  collectorName: collectorName ?? DEFAULT_COLLECTOR_NAME,
                  gcKeepDays: gcKeepDays ?? DEFAULT_GC_KEEP_DAYS,
                  gcGraceHours: gcGraceHours ?? DEFAULT_GC_GRACE_HOURS,
              }
            : retention === "expire"
              ? { retention, expireDays: expireDays ?? DEFAULT_EXPIRE_DAYS }
              : { retention };
    const level = compressionLevel ?? (rest.compression === "zstd" ? DEFAULT_ZSTD_COMPRESSION_LEVEL : undefined);
    return {
        ...rest,
        ...(level === undefined ? {} : { compressionLevel: level }),
        ...retentionSettings,
        publicUrl,
        // Uploads are signed for the region the provider talks to MinIO in, unless told otherwise.
        region: region ?? connection.region,
        minio: connection,
        keyName: currentKeyName,
        ...(writerSecret === undefined ? {} : { writerSecret }),
        ...(caCertificate === undefined ? {} : { caCertificate }),
    };
}
