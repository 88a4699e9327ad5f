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

/** The same settings as `nix.conf` lines (lists are space-separated there). */
export function renderNixConf(settings: NixSettings): string {
    return Object.entries(settings)
        .map(([name, values]) => `${name} = ${values.join(" ")}\n`)
        .join("");
}
