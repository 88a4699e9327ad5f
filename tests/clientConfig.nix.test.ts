// The client settings the program exports, read by a real Nix: `nixConf` as a nix.conf, and
// `nixSettings` as the JSON a NixOS configuration would import.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { describe, test } from "node:test";
import { NEEDS_NIX, NixWorkspace, programOutputs } from "./nixSupport";

// What EXAMPLE_CONFIG (minio:minioServer s3.example.org:9000 over TLS) must give, written by hand.
const SUBSTITUTER = "https://s3.example.org:9000/nix-cache";

describe("client settings, as Nix reads them", NEEDS_NIX, () => {
    test("nixConf as nix.conf is accepted by nix show-config, adding the substituter and the key", async (t) => {
        const program = await programOutputs();
        const nix = await NixWorkspace.create(program.nixConf);
        t.after(() => nix.remove());

        const result = await nix.run("nix", ["show-config"]);
        assert.equal(result.status, 0, result.stderr);
        assert.doesNotMatch(result.stderr, /warning|unknown setting/i, "Nix should know every setting");
        const shown = new Map(
            result.stdout
                .split("\n")
                .map((line) => line.match(/^(\S+) = (.*)$/))
                .filter((match) => match !== null)
                .map((match) => [match[1]!, match[2]!.split(" ").filter((value) => value !== "")]),
        );
        // `extra-` settings add to Nix's defaults rather than replace them: cache.nixos.org stays.
        assert.deepEqual(shown.get("substituters"), ["https://cache.nixos.org/", SUBSTITUTER]);
        assert.deepEqual(shown.get("trusted-public-keys"), [
            "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=",
            program.publicKey,
        ]);
    });

    test("nixSettings as JSON evaluates in Nix to the same values", async (t) => {
        const program = await programOutputs();
        const nix = await NixWorkspace.create();
        t.after(() => nix.remove());
        await writeFile(nix.path("nix-settings.json"), JSON.stringify(program.nixSettings));

        const evaluated = JSON.parse(
            await nix.ok("nix-instantiate", [
                "--eval",
                "--strict",
                "--json",
                "-E",
                "builtins.fromJSON (builtins.readFile ./nix-settings.json)",
            ]),
        );
        assert.deepEqual(evaluated, {
            "extra-substituters": [SUBSTITUTER],
            "extra-trusted-public-keys": [program.publicKey],
        });
        assert.deepEqual(evaluated, program.nixSettings);
    });
});
