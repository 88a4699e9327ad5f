// Tests that need a command-line tool (nix, openssl, shellcheck) must not pass by skipping in CI.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import type { TestOptions } from "node:test";

const inCI = process.env.CI === "true";

/**
 * node:test options for a test or `describe` that runs `command`. With CI=true it always runs, and
 * fails where it calls the missing tool (each caller asserts with `installHint`). On a developer's
 * machine without the tool it is skipped, with a warning that cannot be missed.
 */
export function needsTool(command: string, installHint: string): TestOptions {
    // Only a failure to start sets `error` (ENOENT); how the tool treats `--version` does not matter.
    return required(spawnSync(command, ["--version"]).error !== undefined, command, installHint);
}

/** The same for something a setup step builds rather than installs (a chroot), by a file it leaves. */
export function needsFile(path: string, installHint: string): TestOptions {
    return required(!existsSync(path), path, installHint);
}

function required(missing: boolean, what: string, installHint: string): TestOptions {
    if (missing && !inCI) {
        console.warn(`\n!!! SKIPPING the tests that need ${what}. ${installHint}\n`);
        return { skip: installHint };
    }
    return { skip: false };
}
