// Every shell script in scripts/ passes shellcheck (apt-get install -y shellcheck) and is executable.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { accessSync, constants, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { needsTool } from "./requiredTools";

const SCRIPTS = join(__dirname, "..", "scripts");
const INSTALL_HINT = "shellcheck is not installed: apt-get install -y shellcheck";

const shellScripts = readdirSync(SCRIPTS)
    .map((name) => join(SCRIPTS, name))
    .filter((file) => /^#!.*\b(bash|sh)\b/.test(readFileSync(file, "utf8").split("\n", 1)[0]!));

test("the queue scripts and the post-deploy check are among the shell scripts found", () => {
    assert.ok(["enqueue", "drain", "verify-deployment.sh"].every((name) => shellScripts.includes(join(SCRIPTS, name))), shellScripts.join(", "));
});

test("every shell script is executable", () => {
    for (const script of shellScripts) {
        assert.doesNotThrow(() => accessSync(script, constants.X_OK), `${script} is not executable`);
    }
});

test("every shell script passes shellcheck", needsTool("shellcheck", INSTALL_HINT), () => {
    const result = spawnSync("shellcheck", ["--severity=style", ...shellScripts], { encoding: "utf8" });
    assert.ok(result.error === undefined, INSTALL_HINT);
    assert.equal(result.status, 0, result.stdout + result.stderr);
});
