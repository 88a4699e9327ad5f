// What Nix clients and builders need to use the cache, derived from the settings.

export type Compression = "zstd" | "xz" | "none";

/** MinIO serves buckets path-style: `<publicUrl>/<bucket>`. */
export function substituterUrl(publicUrl: string, bucket: string): string {
    return `${publicUrl}/${bucket}`;
}

export interface UploadTarget {
    bucket: string;
    publicUrl: string;
    region: string;
    profile: string;
    compression: Compression;
    /** Omitted: Nix's default level for the compression. */
    compressionLevel?: number;
}

/**
 * The store URL for `nix copy --to`. The endpoint keeps its scheme: newer Nix (2.33+) misparses a
 * bare `host:port` endpoint, and the scheme is what tells the S3 client to use TLS or not.
 */
export function uploadUrl(target: UploadTarget): string {
    const query = [
        `endpoint=${target.publicUrl}`,
        `region=${target.region}`,
        `profile=${target.profile}`,
        `compression=${target.compression}`,
        ...(target.compressionLevel === undefined ? [] : [`compression-level=${target.compressionLevel}`]),
    ].join("&");
    return `s3://${target.bucket}?${query}`;
}

export interface NixSettings {
    "extra-substituters": string[];
    "extra-trusted-public-keys": string[];
}

/** The NixOS `nix.settings` attribute set for a client of this cache. */
export function nixSettings(substituter: string, trustedPublicKeys: string[]): NixSettings {
    return {
        "extra-substituters": [substituter],
        "extra-trusted-public-keys": [...trustedPublicKeys],
    };
}

/**
 * What the NixOS module (`nixos/substituter.nix`) reads: `nix.settings` plus the PEM of a private CA
 * (null when the public URL has a publicly trusted certificate). Kept apart from `nixSettings` so
 * that one stays usable as `nix.settings` directly, where an unknown key would end up in nix.conf.
 */
export type NixosClient = NixSettings & { caCertificate: string | null };

export function nixosClient(settings: NixSettings, caCertificate: string | undefined): NixosClient {
    return { ...settings, caCertificate: caCertificate ?? null };
}

/** Settings as `nix.conf` lines (lists are space-separated there). */
export function renderNixConf<Settings extends { [Name in keyof Settings]: readonly string[] }>(settings: Settings): string {
    return Object.entries<readonly string[]>(settings)
        .map(([name, values]) => `${name} = ${values.join(" ")}\n`)
        .join("");
}

/** A `~/.aws/credentials` profile for the writer: Nix's S3 store finds it through `profile=` in the upload URL. */
export function awsCredentialsProfile(profile: string, accessKeyId: string, secretAccessKey: string): string {
    return `[${profile}]\naws_access_key_id=${accessKeyId}\naws_secret_access_key=${secretAccessKey}\n`;
}
