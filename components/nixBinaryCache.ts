import * as pulumi from "@pulumi/pulumi";
import { builderNixSettings, renderDrainEnvironment } from "../lib/builderConfig";
import { renderCacheInfo } from "../lib/cacheInfo";
import { renderCollectorEnvironment } from "../lib/collectorConfig";
import {
    awsCredentialsProfile,
    nixosClient,
    nixSettings,
    renderNixConf,
    substituterUrl,
    uploadUrl,
    type NixosClient,
    type NixSettings,
} from "../lib/clientConfig";
import type { CacheSettings } from "../lib/settings";
import { CacheBucket } from "./cacheBucket";
import { CacheCollector } from "./cacheCollector";
import { CacheExpiry } from "./cacheExpiry";
import { CacheWriter } from "./cacheWriter";
import { DeploymentCheck } from "./deploymentCheck";
import { SigningKey } from "./signingKey";

/** What the cache gives its clients and builders; the stack exports exactly these. */
export type CacheOutputs = {
    substituterUrl: pulumi.Output<string>;
    publicKey: pulumi.Output<string>;
    /** Secret. */
    secretKey: pulumi.Output<string>;
    bucketName: pulumi.Output<string>;
    writerAccessKey: pulumi.Output<string>;
    /** Secret. */
    writerSecretKey: pulumi.Output<string>;
    uploadUrl: pulumi.Output<string>;
    nixSettings: pulumi.Output<NixSettings>;
    nixConf: pulumi.Output<string>;
    /** `nixSettings` plus the private CA's PEM (or null): what `nixos/substituter.nix` reads. */
    nixosClient: pulumi.Output<NixosClient>;
    /** Secret. The writer's `~/.aws/credentials` profile, named after the writer. */
    awsCredentials: pulumi.Output<string>;
    /** `nix.conf` lines for builders without NixOS: queue every build for upload. */
    builderNixConf: pulumi.Output<string>;
    /** Environment file of those builders' drainer (scripts/drain): upload URL, key and credentials paths. */
    builderDrainEnv: pulumi.Output<string>;
} & Partial<CollectorOutputs>;

/**
 * The garbage collector's outputs, exported with `retention gc` only: with another retention there
 * is no collector, and a missing output makes `pulumi stack output` fail loudly where an empty one
 * would start a collector without credentials.
 */
export type CollectorOutputs = {
    collectorAccessKey: pulumi.Output<string>;
    /** Secret. */
    collectorSecretKey: pulumi.Output<string>;
    /** Secret. The environment file `nix-cache-gc` runs with: its arguments and the collector's credentials. */
    collectorEnv: pulumi.Output<string>;
};

/**
 * A signed Nix binary cache on MinIO: bucket, anonymous read, writer, signing key, and what sheds
 * paths (the collector's user, or the expiry rule).
 */
export class NixBinaryCache extends pulumi.ComponentResource {
    readonly outputs: CacheOutputs;

    constructor(name: string, settings: CacheSettings, opts?: pulumi.ComponentResourceOptions) {
        super("nix-cache:index:NixBinaryCache", name, {}, opts);

        const cacheInfo = renderCacheInfo(settings);
        const bucket = new CacheBucket(
            `${name}-storage`,
            {
                bucket: settings.bucket,
                cacheInfo,
                allowAnonymousList: settings.allowAnonymousList,
                protect: settings.protect,
            },
            { parent: this },
        );
        const writer = new CacheWriter(
            `${name}-writer`,
            { bucket: settings.bucket, writerName: settings.writerName, writerSecret: settings.writerSecret },
            { parent: this },
        );
        const key = new SigningKey(
            `${name}-signing-key`,
            { keyName: settings.keyName, protect: settings.protect },
            { parent: this },
        );

        let collectorOutputs: CollectorOutputs | undefined;
        if (settings.retention === "gc") {
            const collector = new CacheCollector(
                `${name}-collector`,
                { bucket: settings.bucket, collectorName: settings.collectorName },
                { parent: this },
            );
            const { publicUrl, bucket: bucketName, region, gcKeepDays, gcGraceHours } = settings;
            collectorOutputs = {
                collectorAccessKey: collector.accessKey,
                collectorSecretKey: collector.secretKey,
                collectorEnv: pulumi.secret(
                    pulumi.all([collector.accessKey, collector.secretKey]).apply(([accessKey, secretKey]) =>
                        renderCollectorEnvironment({
                            endpoint: publicUrl,
                            bucket: bucketName,
                            region,
                            keepDays: gcKeepDays,
                            graceHours: gcGraceHours,
                            accessKey,
                            secretKey,
                        }),
                    ),
                ),
            };
        } else if (settings.retention === "expire") {
            new CacheExpiry(
                `${name}-expiry`,
                {
                    bucket: bucket.bucketName,
                    expireDays: settings.expireDays,
                    cacheInfo,
                    storage: bucket,
                },
                { parent: this },
            );
        }

        const substituter = substituterUrl(settings.publicUrl, settings.bucket);
        // During a key rotation the previous generations' keys stay trusted next to the current one.
        const clientSettings = key.publicKey.apply((publicKey) =>
            nixSettings(substituter, [publicKey, ...settings.previousPublicKeys]),
        );
        if (settings.verifyDeployment) {
            new DeploymentCheck(
                `${name}-deployment-check`,
                {
                    substituterUrl: substituter,
                    cacheInfo,
                    bucketPolicy: bucket.bucketPolicy,
                    caCertificate: settings.caCertificate,
                    waitFor: [bucket],
                },
                { parent: this },
            );
        }

        const upload = uploadUrl({
            bucket: settings.bucket,
            publicUrl: settings.publicUrl,
            region: settings.region,
            profile: settings.writerName,
            compression: settings.compression,
            compressionLevel: settings.compressionLevel,
        });
        this.outputs = {
            substituterUrl: pulumi.output(substituter),
            publicKey: key.publicKey,
            secretKey: key.secretKey,
            bucketName: bucket.bucketName,
            writerAccessKey: writer.accessKey,
            writerSecretKey: writer.secretKey,
            uploadUrl: pulumi.output(upload),
            nixSettings: clientSettings,
            nixConf: clientSettings.apply(renderNixConf),
            nixosClient: clientSettings.apply((nix) => nixosClient(nix, settings.caCertificate)),
            awsCredentials: pulumi.secret(
                pulumi
                    .all([writer.accessKey, writer.secretKey])
                    .apply(([accessKey, secretKey]) => awsCredentialsProfile(settings.writerName, accessKey, secretKey)),
            ),
            builderNixConf: pulumi.output(renderNixConf(builderNixSettings({ postBuildHook: settings.builderHook }))),
            builderDrainEnv: pulumi.output(
                renderDrainEnvironment(upload, {
                    postBuildHook: settings.builderHook,
                    secretKeyFile: settings.builderSecretKeyFile,
                    credentialsFile: settings.builderCredentialsFile,
                }),
            ),
            ...collectorOutputs,
        };
        this.registerOutputs(this.outputs);
    }
}
