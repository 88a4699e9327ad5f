// A bucket's S3 lifecycle configuration as a Pulumi dynamic resource: @pulumi/minio's IlmPolicy
// cannot express a size filter, so the configuration is written with the official `minio` SDK
// (PutBucketLifecycleConfiguration, GetBucketLifecycleConfiguration, DeleteBucketLifecycle).
//
// Pulumi serializes the provider object with everything it references and runs it in a separate
// process, from state, also at `pulumi destroy`. So the provider only captures the small functions
// below and lib/lifecycle.ts; packages are required inside the functions that use them.
import * as pulumi from "@pulumi/pulumi";
import type * as Minio from "minio";
import {
    lifecycleMismatchError,
    lifecycleWriteError,
    liveRules,
    sameConfiguration,
    type LifecycleConfiguration,
} from "../lib/lifecycle";
import type { MinioConnection } from "../lib/minioConnection";

/** The resource's inputs and its state: the bucket, the wanted configuration, the connection. */
export interface BucketLifecycleState extends MinioConnection {
    bucket: string;
    /** After a refresh: the configuration found on the server. */
    configuration: LifecycleConfiguration;
}

export type BucketLifecycleArgs = { [K in keyof BucketLifecycleState]: pulumi.Input<BucketLifecycleState[K]> };

/** What a change of each property means; the connection is updated in place, a new bucket is a new rule. */
const REPLACING_PROPERTIES = ["bucket"] as const satisfies (keyof BucketLifecycleState)[];
const UPDATING_PROPERTIES = [
    "endPoint",
    "port",
    "useSSL",
    "region",
    "accessKey",
    "secretKey",
    "caCertFile",
    "insecure",
] as const satisfies (keyof BucketLifecycleState)[];

/**
 * The bucket lifecycle calls the provider makes, through the official `minio` SDK. One function
 * with its helpers inside: Pulumi's closure serializer inspects each function the provider
 * captures on its own, about 3 ms each at every `pulumi up`.
 */
function lifecycleClient(connection: MinioConnection) {
    if (connection.endPoint === "" || connection.accessKey === "" || connection.secretKey === "") {
        throw new Error(
            "expiry: no MinIO endpoint or credentials; set minio:minioServer, minio:minioUser and " +
                "minio:minioPassword (or MINIO_ENDPOINT, MINIO_USER, MINIO_PASSWORD)",
        );
    }
    const { Client } = require("minio") as typeof Minio;
    const https = require("node:https") as typeof import("node:https");
    const fs = require("node:fs") as typeof import("node:fs");
    const { rootCertificates } = require("node:tls") as typeof import("node:tls");
    // Like the provider: the CA file is trusted in addition to the system's CAs, not instead.
    const ca = connection.caCertFile === undefined ? {} : { ca: [...rootCertificates, fs.readFileSync(connection.caCertFile, "utf8")] };
    const tls = connection.useSSL
        ? { transportAgent: new https.Agent({ ...ca, rejectUnauthorized: !connection.insecure }) }
        : {};
    const client = new Client({
        endPoint: connection.endPoint,
        ...(connection.port === undefined ? {} : { port: connection.port }),
        useSSL: connection.useSSL,
        region: connection.region,
        accessKey: connection.accessKey,
        secretKey: connection.secretKey,
        pathStyle: true,
        ...tls,
    });

    const isMissing = (error: unknown): boolean =>
        ["NoSuchLifecycleConfiguration", "NoSuchBucket"].includes(String((error as { code?: unknown }).code));

    /** The bucket's configuration as the SDK parses it, or undefined when it has none. */
    async function read(bucket: string): Promise<unknown> {
        try {
            return await client.getBucketLifecycle(bucket);
        } catch (error) {
            if (isMissing(error)) {
                return undefined;
            }
            throw error;
        }
    }

    /** Writes the configuration, then reads it back: a server that silently drops the size filter must not keep the rule. */
    async function write(bucket: string, configuration: LifecycleConfiguration): Promise<void> {
        try {
            // The SDK's LifecycleConfig type predates size filters; it renders any object to XML as is.
            await client.setBucketLifecycle(bucket, configuration as unknown as Minio.LifecycleConfig);
        } catch (error) {
            throw lifecycleWriteError(error, bucket);
        }
        const stored = await read(bucket);
        if (!sameConfiguration(stored, configuration)) {
            await client.removeBucketLifecycle(bucket);
            throw lifecycleMismatchError(bucket, stored);
        }
    }

    /** Removes the configuration; a bucket without one (or without the bucket) is already done. */
    async function remove(bucket: string): Promise<void> {
        try {
            await client.removeBucketLifecycle(bucket);
        } catch (error) {
            if (!isMissing(error)) {
                throw error;
            }
        }
    }

    return { read, write, remove };
}

/** The provider. Its id is the bucket name: the stack owns the bucket's whole lifecycle configuration. */
export const bucketLifecycleProvider: pulumi.dynamic.ResourceProvider<BucketLifecycleState, BucketLifecycleState> = {
    async create(inputs) {
        await lifecycleClient(inputs).write(inputs.bucket, inputs.configuration);
        return { id: inputs.bucket, outs: inputs };
    },

    async read(id, props) {
        const state = props!;
        const live = await lifecycleClient(state).read(state.bucket);
        if (live === undefined) {
            // No configuration: the resource is gone, and the next `pulumi up` writes it again.
            return {};
        }
        if (sameConfiguration(live, state.configuration)) {
            // The server's answer may add default elements or reorder them; that is not drift.
            return { id, props: state };
        }
        return { id, props: { ...state, configuration: { Rule: liveRules(live) } as LifecycleConfiguration } };
    },

    async diff(_id, olds, news) {
        const replaces = REPLACING_PROPERTIES.filter((key) => olds[key] !== news[key]);
        const updates = UPDATING_PROPERTIES.filter((key) => olds[key] !== news[key]);
        const changes = replaces.length > 0 || updates.length > 0 || !sameConfiguration(olds.configuration, news.configuration);
        return { changes, replaces, deleteBeforeReplace: false };
    },

    async update(_id, _olds, news) {
        await lifecycleClient(news).write(news.bucket, news.configuration);
        return { outs: news };
    },

    async delete(_id, props) {
        await lifecycleClient(props).remove(props.bucket);
    },
};

/** The lifecycle configuration of one bucket. Registers as `pulumi-nodejs:dynamic:Resource`. */
export class BucketLifecycle extends pulumi.dynamic.Resource {
    constructor(name: string, args: BucketLifecycleArgs, opts?: pulumi.CustomResourceOptions) {
        // The state keeps the credentials (refresh and delete need them): they stay secret there.
        super(bucketLifecycleProvider, name, args, {
            ...opts,
            additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "accessKey", "secretKey"],
        });
    }
}
