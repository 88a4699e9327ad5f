import * as pulumi from "@pulumi/pulumi";
import { builderNixSettings, renderDrainEnvironment } from "../lib/builderConfig";
import { renderCacheInfo } from "../lib/cacheInfo";
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
import { CacheExpiry } from "./cacheExpiry";
import { CacheWriter } from "./cacheWriter";
import { DeploymentCheck } from "./deploymentCheck";
import { SigningKey } from "./signingKey";

/** A signed Nix binary cache on MinIO: bucket, anonymous read, writer, and signing key. */
export class NixBinaryCache extends pulumi.ComponentResource {
    readonly substituterUrl: pulumi.Output<string>;
    readonly publicKey: pulumi.Output<string>;
    readonly secretKey: pulumi.Output<string>;
    readonly bucketName: pulumi.Output<string>;
    readonly writerAccessKey: pulumi.Output<string>;
    readonly writerSecretKey: pulumi.Output<string>;
    readonly uploadUrl: pulumi.Output<string>;
    readonly nixSettings: pulumi.Output<NixSettings>;
    readonly nixConf: pulumi.Output<string>;
    /** `nixSettings` plus the private CA's PEM (or null): what `nixos/substituter.nix` reads. */
    readonly nixosClient: pulumi.Output<NixosClient>;
    /** Secret. The writer's `~/.aws/credentials` profile, named after the writer. */
    readonly awsCredentials: pulumi.Output<string>;
    /** `nix.conf` lines for builders without NixOS: queue every build for upload. */
    readonly builderNixConf: pulumi.Output<string>;
    /** Environment file of those builders' drainer (scripts/drain): upload URL, key and credentials paths. */
    readonly builderDrainEnv: pulumi.Output<string>;

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

        if (settings.expireDays > 0) {
            new CacheExpiry(
                `${name}-expiry`,
                {
                    bucket: bucket.bucketName,
                    expireDays: settings.expireDays,
                    cacheInfo,
                    connection: settings.minio,
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

        this.substituterUrl = pulumi.output(substituter);
        this.publicKey = key.publicKey;
        this.secretKey = key.secretKey;
        this.bucketName = bucket.bucketName;
        this.writerAccessKey = writer.accessKey;
        this.writerSecretKey = writer.secretKey;
        this.uploadUrl = pulumi.output(
            uploadUrl({
                bucket: settings.bucket,
                publicUrl: settings.publicUrl,
                region: settings.region,
                profile: settings.writerName,
                compression: settings.compression,
            }),
        );
        this.nixSettings = clientSettings;
        this.nixConf = clientSettings.apply(renderNixConf);
        this.nixosClient = clientSettings.apply((nix) => nixosClient(nix, settings.caCertificate));
        this.awsCredentials = pulumi.secret(
            pulumi
                .all([writer.accessKey, writer.secretKey])
                .apply(([accessKey, secretKey]) => awsCredentialsProfile(settings.writerName, accessKey, secretKey)),
        );

        this.builderNixConf = pulumi.output(renderNixConf(builderNixSettings({ postBuildHook: settings.builderHook })));
        this.builderDrainEnv = this.uploadUrl.apply((url) =>
            renderDrainEnvironment(url, {
                postBuildHook: settings.builderHook,
                secretKeyFile: settings.builderSecretKeyFile,
                credentialsFile: settings.builderCredentialsFile,
            }),
        );

        this.registerOutputs({
            substituterUrl: this.substituterUrl,
            publicKey: this.publicKey,
            secretKey: this.secretKey,
            bucketName: this.bucketName,
            writerAccessKey: this.writerAccessKey,
            writerSecretKey: this.writerSecretKey,
            uploadUrl: this.uploadUrl,
            nixSettings: this.nixSettings,
            nixConf: this.nixConf,
            nixosClient: this.nixosClient,
            awsCredentials: this.awsCredentials,
            builderNixConf: this.builderNixConf,
            builderDrainEnv: this.builderDrainEnv,
        });
    }
}
