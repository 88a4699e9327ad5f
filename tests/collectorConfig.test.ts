// The collector's environment file (the collectorEnv output), rendered by a pure function: the
// exact text, written out by hand, and what a shell reads back from it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { renderCollectorEnvironment } from "../lib/collectorConfig";

const RUN = {
    endpoint: "https://s3.example.org:9000",
    bucket: "nix-cache",
    region: "us-east-1",
    keepDays: 30,
    graceHours: 24,
    accessKey: "nixcollector",
    secretKey: "0123456789abcdefghijklmnopqrstuvwxyzABCD",
};

describe("collectorEnv", () => {
    test("names the command's arguments and the collector's credentials, in this order", () => {
        assert.equal(
            renderCollectorEnvironment(RUN),
            'NIX_CACHE_GC_ENDPOINT="https://s3.example.org:9000"\n' +
                'NIX_CACHE_GC_BUCKET="nix-cache"\n' +
                'NIX_CACHE_GC_REGION="us-east-1"\n' +
                'NIX_CACHE_GC_KEEP_DAYS="30"\n' +
                'NIX_CACHE_GC_GRACE_HOURS="24"\n' +
                'AWS_ACCESS_KEY_ID="nixcollector"\n' +
                'AWS_SECRET_ACCESS_KEY="0123456789abcdefghijklmnopqrstuvwxyzABCD"\n',
        );
    });

    test("the same run renders the same bytes", () => {
        assert.equal(renderCollectorEnvironment({ ...RUN }), renderCollectorEnvironment(RUN));
    });

    test("a shell reads back exactly the values, even with characters a shell would expand", () => {
        const awkward = { ...RUN, secretKey: 'a$HOME`id`"q"\\b', region: "homelab" };
        const names = [
            "NIX_CACHE_GC_ENDPOINT",
            "NIX_CACHE_GC_BUCKET",
            "NIX_CACHE_GC_REGION",
            "NIX_CACHE_GC_KEEP_DAYS",
            "NIX_CACHE_GC_GRACE_HOURS",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ];
        // As gc.yml reads it: `set -a` exports every variable the file assigns.
        const script = `set -a; eval "$1"; set +a; for name in ${names.join(" ")}; do printenv "$name"; done`;
        const result = spawnSync("bash", ["-c", script, "bash", renderCollectorEnvironment(awkward)], { encoding: "utf8" });
        assert.equal(result.status, 0, result.stderr);
        assert.deepEqual(result.stdout.split("\n").slice(0, -1), [
            "https://s3.example.org:9000",
            "nix-cache",
            "homelab",
            "30",
            "24",
            "nixcollector",
            'a$HOME`id`"q"\\b',
        ]);
    });
});
