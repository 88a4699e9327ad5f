// What a build machine without NixOS needs to push every build to the cache (NixOS machines use
// nixos/builder.nix): the nix.conf lines that queue each build (scripts/enqueue as post-build-hook),
// and the environment file of the drainer (scripts/drain) that uploads the queue. Nothing secret:
// the secret key and the writer's credentials stay in files that only these settings name.

export interface BuilderPaths {
    /** Where scripts/enqueue is installed; Nix runs it after every build. */
    postBuildHook: string;
    /** The cache's Nix secret key; the drainer signs uploads with it. */
    secretKeyFile: string;
    /** The writer's AWS-style credentials (the stack output awsCredentials). */
    credentialsFile: string;
}

export interface BuilderNixSettings {
    "post-build-hook": string[];
}

/**
 * The builder's `nix.conf` settings. Deliberately not `secret-key-files`: Nix reads that file after
 * every build and fails the build when it is missing or unreadable; the drainer signs on upload.
 * Nor `narinfo-cache-positive-ttl = 0`, which would make the daemon fetch every narinfo from every
 * substituter again: only the drainer's own `nix copy` must not trust remembered narinfos, and it
 * passes that option itself.
 */
export function builderNixSettings(paths: Pick<BuilderPaths, "postBuildHook">): BuilderNixSettings {
    return { "post-build-hook": [paths.postBuildHook] };
}

/**
 * An environment file (systemd `EnvironmentFile=`, also valid shell). Values are double quoted,
 * with backslash, double quote, dollar and backtick escaped, which systemd and shells read alike.
 */
export function renderEnvironmentFile(variables: [string, string][]): string {
    return variables.map(([name, value]) => `${name}="${value.replace(/[\\"$`]/g, "\\$&")}"\n`).join("");
}

/** The drainer's environment file; the upload URL has `&` and `?`, which the quotes keep. */
export function renderDrainEnvironment(uploadUrl: string, paths: BuilderPaths): string {
    return renderEnvironmentFile([
        ["NIX_CACHE_UPLOAD_URL", uploadUrl],
        ["NIX_CACHE_SECRET_KEY_FILE", paths.secretKeyFile],
        ["AWS_SHARED_CREDENTIALS_FILE", paths.credentialsFile],
    ]);
}

/**
 * Why a path cannot be one of the builder paths, or undefined. Space-free because nix.conf splits
 * values at spaces; URL-safe because the drainer puts the key file into the upload URL's query.
 */
export function builderPathProblem(path: string): string | undefined {
    if (!/^\/[A-Za-z0-9._/+-]*[^/]$/.test(path)) {
        return `must be an absolute file path of letters, digits and ._/+- such as /etc/nix/nix-cache-secret-key (got '${path}')`;
    }
    if (path.split("/").some((part) => part === "." || part === "..")) {
        return `must be a canonical path without '.' or '..' (got '${path}')`;
    }
    return undefined;
}

/** Secret files must stay out of the Nix store, which every local user can read. */
export function secretInStoreProblem(path: string, storeDir: string): string | undefined {
    return path.startsWith(`${storeDir}/`)
        ? `${path} is in the Nix store (${storeDir}), which every local user can read; keep secrets in a root-only file outside it`
        : undefined;
}
