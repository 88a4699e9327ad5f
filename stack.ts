import { NixBinaryCache } from "./components/nixBinaryCache";
import { parseSettings } from "./lib/settings";

/**
 * Builds the whole stack from a Pulumi config map (keys like `nix-cache:bucket`). Settings are
 * validated first, so invalid config stops the program before any resource is registered.
 */
export function buildStack(config: Record<string, string>) {
    const cache = new NixBinaryCache("nix-cache", parseSettings(config));
    return {
        substituterUrl: cache.substituterUrl,
        publicKey: cache.publicKey,
        secretKey: cache.secretKey,
        bucketName: cache.bucketName,
        writerAccessKey: cache.writerAccessKey,
        writerSecretKey: cache.writerSecretKey,
        uploadUrl: cache.uploadUrl,
        nixSettings: cache.nixSettings,
        nixConf: cache.nixConf,
        nixosClient: cache.nixosClient,
        awsCredentials: cache.awsCredentials,
        builderNixConf: cache.builderNixConf,
        builderDrainEnv: cache.builderDrainEnv,
    };
}
