// Shared by the tests of settings: what parseSettings reports for a config.
import assert from "node:assert/strict";
import { parseSettings, SettingsError } from "../lib/settings";

/** The problems parseSettings reports for a config, or [] when it accepts it. */
export function problemsFor(config: Record<string, string>): string[] {
    try {
        parseSettings(config);
        return [];
    } catch (error) {
        assert.ok(error instanceof SettingsError, `expected a SettingsError, got ${error}`);
        return error.problems;
    }
}
