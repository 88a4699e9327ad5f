// Every shell script in scripts/ passes shellcheck (apt-get install -y shellcheck) and is executable.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { accessSync, constants, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

const SCRIPTS = join(__dirname, "..", "scripts");
const INSTALL_HINT = "shellcheck is not installed: apt-get install -y shellcheck";
const missing = spawnSync("shellcheck", ["--version"]).error !== undefined;
if (missing && process.env.CI !== "true") {
    console.warn(`\n!!! SKIPPING the shellcheck test. ${INSTALL_HINT}\n`);
}

const shellScripts = readdirSync(SCRIPTS)
    .map((name) => join(SCRIPTS, name))
    .filter((file) => /^#!.*\b(bash|sh)\b/.test(readFileSync(file, "utf8").split("\n", 1)[0]!));

test("the queue scripts are among the shell scripts found", () => {
    assert.ok(["enqueue", "drain"].every((name) => shellScripts.includes(join(SCRIPTS, name))), shellScripts.join(", "));
});

test("every shell script is executable", () => {
    for (const script of shellScripts) {
        assert.doesNotThrow(() => accessSync(script, constants.X_OK), `${script} is not executable`);
    }
});

test("every shell script passes shellcheck", missing && process.env.CI !== "true" ? { skip: INSTALL_HINT } : {}, () => {
    const result = spawnSync("shellcheck", ["--severity=style", ...shellScripts], { encoding: "utf8" });
    assert.ok(result.error === undefined, INSTALL_HINT);
    assert.equal(result.status, 0, result.stdout + result.stderr);
});
