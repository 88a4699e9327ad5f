// The builder settings a machine without NixOS gets from the stack (builderNixConf,
// builderDrainEnv), and the settings behind them. Expected texts are written out by hand.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { builderNixSettings, renderDrainEnvironment } from "../lib/builderConfig";
import { renderNixConf } from "../lib/clientConfig";
import { parseSettings } from "../lib/settings";
import { problemsFor } from "./settingsSupport";

const SERVER = { "minio:minioServer": "s3.example.org:9000" };
const PATHS = {
    postBuildHook: "/usr/local/bin/nix-cache-enqueue",
    secretKeyFile: "/etc/nix/nix-cache-secret-key",
    credentialsFile: "/etc/nix/nix-cache-credentials",
};

describe("builderNixConf", () => {
    test("queues every build through the hook, and nothing else: no secret-key-files, no narinfo-cache-positive-ttl", () => {
        assert.equal(renderNixConf(builderNixSettings(PATHS)), "post-build-hook = /usr/local/bin/nix-cache-enqueue\n");
    });
});

describe("builderDrainEnv", () => {
    test("names the upload URL, the key file and the credentials file", () => {
        assert.equal(
            renderDrainEnvironment("s3://nix-cache?endpoint=https://s3.example.org&profile=nixbuilder", PATHS),
            'NIX_CACHE_UPLOAD_URL="s3://nix-cache?endpoint=https://s3.example.org&profile=nixbuilder"\n' +
                'NIX_CACHE_SECRET_KEY_FILE="/etc/nix/nix-cache-secret-key"\n' +
                'AWS_SHARED_CREDENTIALS_FILE="/etc/nix/nix-cache-credentials"\n',
        );
    });

    test("a shell reads back exactly the values, even with characters a shell would expand", () => {
        const awkward = 's3://b?x=1&y=$HOME`id`"quoted"\\back';
        const file = renderDrainEnvironment(awkward, PATHS);
        const result = spawnSync("bash", ["-c", `set -a; eval "$1"; printf '%s\\n' "$NIX_CACHE_UPLOAD_URL"`, "bash", file], {
            encoding: "utf8",
        });
        assert.equal(result.status, 0, result.stderr);
        assert.equal(result.stdout, `${awkward}\n`);
    });
});

describe("builder settings", () => {
    test("default to the paths docs/builders.md installs to", () => {
        const settings = parseSettings(SERVER);
        assert.deepEqual(
            [settings.builderHook, settings.builderSecretKeyFile, settings.builderCredentialsFile],
            ["/usr/local/bin/nix-cache-enqueue", "/etc/nix/nix-cache-secret-key", "/etc/nix/nix-cache-credentials"],
        );
    });

    test("relative paths, spaces, characters a URL would need escaped, and dot segments are refused by name", () => {
        assert.deepEqual(
            problemsFor({
                ...SERVER,
                "nix-cache:builderHook": "enqueue",
                "nix-cache:builderSecretKeyFile": "/etc/nix/my key",
                "nix-cache:builderCredentialsFile": "/etc/nix/../creds",
            }).map((problem) => problem.split(":")[1]),
            ["builderHook", "builderSecretKeyFile", "builderCredentialsFile"],
        );
        assert.match(problemsFor({ ...SERVER, "nix-cache:builderSecretKeyFile": "/etc/nix/key&x=1" })[0] ?? "", /^nix-cache:builderSecretKeyFile: must be an absolute file path/);
        assert.match(problemsFor({ ...SERVER, "nix-cache:builderHook": "/usr/local/bin/" })[0] ?? "", /^nix-cache:builderHook: must be an absolute file path/);
    });

    test("secrets in the Nix store are refused, in the store the settings name", () => {
        assert.deepEqual(
            problemsFor({
                ...SERVER,
                "nix-cache:builderSecretKeyFile": "/nix/store/00000000000000000000000000000000-key",
                "nix-cache:builderCredentialsFile": "/gnu/store/00000000000000000000000000000000-creds",
                "nix-cache:storeDir": "/gnu/store",
            }),
            [
                "nix-cache:builderCredentialsFile: /gnu/store/00000000000000000000000000000000-creds is in the Nix store " +
                    "(/gnu/store), which every local user can read; keep secrets in a root-only file outside it",
            ],
        );
        // The hook is a program, not a secret: it may live in the store.
        assert.deepEqual(problemsFor({ ...SERVER, "nix-cache:builderHook": "/nix/store/00000000000000000000000000000000-hook" }), []);
    });
});
