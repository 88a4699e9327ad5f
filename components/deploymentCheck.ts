import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";

/** The check itself; its text is the command, so a changed check runs again on the next `up`. */
const VERIFY_DEPLOYMENT_SCRIPT = join(__dirname, "..", "scripts", "verify-deployment.sh");

export interface DeploymentCheckArgs {
    substituterUrl: string;
    /** The rendered `nix-cache-info` text that anonymous readers must get. */
    cacheInfo: string;
    /** The rendered bucket policy: the check runs again when it changes. */
    bucketPolicy: string;
    /** PEM of a private CA for the public URL. */
    caCertificate?: string;
    /** What must exist before the check runs: the bucket, its policy and `nix-cache-info`. */
    waitFor: pulumi.Resource[];
}

/**
 * After deployment, fetches `<substituterUrl>/nix-cache-info` anonymously from the deployer's
 * machine and tries an anonymous PUT; fails the deployment unless the content matches and the PUT
 * is refused. A command runs on create and whenever its inputs change, so it runs again only when
 * the cache info, the policy, the URL or the check change, not on every `up`.
 */
export class DeploymentCheck extends pulumi.ComponentResource {
    /** The check's report. */
    readonly report: pulumi.Output<string>;

    constructor(name: string, args: DeploymentCheckArgs, opts?: pulumi.ComponentResourceOptions) {
        super("nix-cache:index:DeploymentCheck", name, {}, opts);

        const check = new command.local.Command(
            `${name}-anonymous-access`,
            {
                create: readFileSync(VERIFY_DEPLOYMENT_SCRIPT, "utf8"),
                // Found on PATH: NixOS has no /bin/bash.
                interpreter: ["bash", "-c"],
                environment: {
                    NIX_CACHE_URL: args.substituterUrl,
                    NIX_CACHE_INFO: args.cacheInfo,
                    ...(args.caCertificate === undefined ? {} : { NIX_CACHE_CA_CERTIFICATE: args.caCertificate }),
                },
                triggers: [args.cacheInfo, args.bucketPolicy],
                addPreviousOutputInEnv: false,
            },
            { parent: this, dependsOn: args.waitFor },
        );
        this.report = check.stdout;
        this.registerOutputs({ report: this.report });
    }
}
