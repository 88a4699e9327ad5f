import { NixBinaryCache, type CacheOutputs } from "./components/nixBinaryCache";
import { parseSettings } from "./lib/settings";

/**
 * Builds the whole stack from a Pulumi config map (keys like `nix-cache:bucket`). Settings are
 * validated first, so invalid config stops the program before any resource is registered.
 */
export function buildStack(config: Record<string, string>): CacheOutputs {
    return new NixBinaryCache("nix-cache", parseSettings(config)).outputs;
}
