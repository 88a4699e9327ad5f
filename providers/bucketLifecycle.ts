// The stack's rule in a bucket's S3 lifecycle configuration, as a Pulumi dynamic resource:
// @pulumi/minio's IlmPolicy cannot express a size filter, and writes the whole configuration. S3 has
// no call for one rule (PutBucketLifecycleConfiguration replaces them all), so every change reads the
// configuration, replaces or removes only the rule with this stack's ID, and writes back every other
// rule exactly as the server sent it (`mc ilm rule add` also reads, adds, writes: minio/mc cmd/ilm-add.go).
//
// Pulumi serializes the provider object with everything it references and runs it in a separate
// process, from state, also at `pulumi destroy`. So the provider only captures the small functions
// below, lib/lifecycle.ts and lib/minioConnection.ts; packages are required inside the functions
// that use them. The connection is not in the state: `configure` resolves it at every run.
import * as pulumi from "@pulumi/pulumi";
import type * as Minio from "minio";
import {
    lifecycleMismatchError,
    lifecycleRequestError,
    liveRules,
    sameRule,
    type ExpiryRule,
    type LiveRule,
} from "../lib/lifecycle";
import { MINIO_CONFIG_KEYS, minioConnection, type MinioConnection } from "../lib/minioConnection";

/** The resource's inputs and its state: the bucket and the stack's rule, nothing of the connection. */
export interface BucketLifecycleState {
    bucket: string;
    /** After a refresh: the rule with this ID as found on the server. */
    rule: ExpiryRule;
}

export type BucketLifecycleArgs = { [K in keyof BucketLifecycleState]: pulumi.Input<BucketLifecycleState[K]> };

/**
 * The bucket lifecycle calls the provider makes, through the official `minio` SDK. One function
 * with its helpers inside: Pulumi's closure serializer inspects each function the provider
 * captures on its own, about 3 ms each at every `pulumi up`.
 */
function lifecycleClient(connection: MinioConnection | undefined) {
    if (connection === undefined || connection.endPoint === "" || connection.accessKey === "" || connection.secretKey === "") {
        throw new Error(
            "expiry: no MinIO endpoint or credentials; set minio:minioServer, minio:minioUser and " +
                "minio:minioPassword (or MINIO_ENDPOINT, MINIO_USER, MINIO_PASSWORD); the stack's configuration " +
                "reaches this provider from Pulumi CLI 3.139 on",
        );
    }
    const { Client } = require("minio") as typeof Minio;
    const https = require("node:https") as typeof import("node:https");
    const fs = require("node:fs") as typeof import("node:fs");
    const { createHash } = require("node:crypto") as typeof import("node:crypto");
    const { rootCertificates } = require("node:tls") as typeof import("node:tls");
    // Like the provider (configureCACert: the system pool plus the file), the CA file is trusted in
    // addition to Node's default CAs, its own and NODE_EXTRA_CA_CERTS: `ca` alone would replace them.
    const extraCaFile = process.env.NODE_EXTRA_CA_CERTS;
    const nodeDefaultCas = [...rootCertificates, ...(extraCaFile ? [fs.readFileSync(extraCaFile, "utf8")] : [])];
    const ca = connection.caCertFile === undefined ? {} : { ca: [...nodeDefaultCas, fs.readFileSync(connection.caCertFile, "utf8")] };
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

    /** A bucket without a configuration, or without the bucket, has no rules. */
    const isMissing = (error: unknown): boolean =>
        ["NoSuchLifecycleConfiguration", "NoSuchBucket"].includes(String((error as { code?: unknown }).code));

    /** The bucket's rules as the server sent them. */
    async function rules(bucket: string): Promise<LiveRule[]> {
        let answer: AsyncIterable<Buffer>;
        try {
            answer = await client.makeRequestAsync({ method: "GET", bucketName: bucket, query: "lifecycle" });
        } catch (error) {
            if (isMissing(error)) {
                return [];
            }
            throw lifecycleRequestError(error, bucket, "reading");
        }
        const chunks: Buffer[] = [];
        for await (const chunk of answer) {
            chunks.push(chunk);
        }
        return liveRules(Buffer.concat(chunks).toString("utf8"));
    }

    /** The rule as the XML element PutBucketLifecycleConfiguration takes (its values are numbers and a fixed ID). */
    const ruleXml = (rule: ExpiryRule): string =>
        `<Rule><ID>${rule.ID}</ID><Status>${rule.Status}</Status>` +
        `<Filter><ObjectSizeGreaterThan>${rule.Filter.ObjectSizeGreaterThan}</ObjectSizeGreaterThan></Filter>` +
        `<Expiration><Days>${rule.Expiration.Days}</Days></Expiration></Rule>`;

    /** Makes these rule elements the bucket's whole configuration; without any, deletes it. */
    async function store(bucket: string, elements: string[]): Promise<void> {
        if (elements.length === 0) {
            await client.removeBucketLifecycle(bucket);
            return;
        }
        const payload = `<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${elements.join("")}</LifecycleConfiguration>`;
        // The server refuses a configuration without an integrity header (MinIO: MissingContentMD5).
        const headers = { "Content-MD5": createHash("md5").update(payload).digest("base64") };
        await client.makeRequestAsyncOmit({ method: "PUT", bucketName: bucket, query: "lifecycle", headers }, payload);
    }

    const isOurs = (id: string) => (rule: LiveRule) => rule.parsed.ID === id;

    /** The rule with this ID as the server stores it, or undefined. */
    async function read(bucket: string, id: string): Promise<LiveRule["parsed"] | undefined> {
        return (await rules(bucket)).find(isOurs(id))?.parsed;
    }

    /**
     * Adds the rule or replaces the one with its ID, keeping the others, then reads it back: a server
     * that silently drops the size filter must not keep the rule.
     */
    async function write(bucket: string, rule: ExpiryRule): Promise<void> {
        const others = (await rules(bucket)).filter((live) => !isOurs(rule.ID)(live)).map((live) => live.xml);
        try {
            await store(bucket, [...others, ruleXml(rule)]);
        } catch (error) {
            throw lifecycleRequestError(error, bucket, "writing");
        }
        const stored = await read(bucket, rule.ID);
        if (!sameRule(stored, rule)) {
            await store(bucket, others);
            throw lifecycleMismatchError(bucket, stored);
        }
    }

    /** Removes the rule with this ID and keeps the others; nothing to do without it (or without the bucket). */
    async function remove(bucket: string, id: string): Promise<void> {
        const live = await rules(bucket);
        if (live.some(isOurs(id))) {
            await store(bucket, live.filter((rule) => !isOurs(id)(rule)).map((rule) => rule.xml));
        }
    }

    return { read, write, remove };
}

/** The provider. Its id is the bucket name: the stack has one rule per bucket. */
class BucketLifecycleProvider implements pulumi.dynamic.ResourceProvider<BucketLifecycleState, BucketLifecycleState> {
    /** Resolved at every run, never stored: a changed password is used as soon as Pulumi passes it. */
    private connection: MinioConnection | undefined;

    /**
     * Pulumi's Node.js dynamic provider host calls this once per process with the stack's whole
     * configuration (pulumi/pulumi sdk/nodejs/cmd/dynamic-provider/index.ts, getProvider; namespaced
     * keys, as pkg/resource/deploy/target.go, Target.GetPackageConfig, passes every key to
     * pulumi-nodejs). The process's environment is the `pulumi` CLI's (pkg/resource/plugin/
     * provider_plugin.go joins the CLI's environment under the plugin's), as for the minio provider.
     */
    async configure(request: pulumi.dynamic.ConfigureRequest): Promise<void> {
        const config = Object.fromEntries(
            MINIO_CONFIG_KEYS.flatMap((key) => {
                const value = request.config.get(key);
                return value === undefined ? [] : [[key, value]];
            }),
        );
        this.connection = minioConnection(config, process.env).connection;
    }

    async create(inputs: BucketLifecycleState) {
        await lifecycleClient(this.connection).write(inputs.bucket, inputs.rule);
        return { id: inputs.bucket, outs: inputs };
    }

    async read(id: string, props?: BucketLifecycleState) {
        const state = props!;
        const live = await lifecycleClient(this.connection).read(state.bucket, state.rule.ID);
        if (live === undefined) {
            // No rule with this ID (or no bucket): the resource is gone, and the next `pulumi up` writes it again.
            return {};
        }
        if (sameRule(live, state.rule)) {
            // The server's answer may add default elements or reorder them; that is not drift.
            return { id, props: state };
        }
        return { id, props: { ...state, rule: live as unknown as ExpiryRule } };
    }

    async diff(_id: string, olds: BucketLifecycleState, news: BucketLifecycleState) {
        const replaces = olds.bucket === news.bucket ? [] : ["bucket"];
        return { changes: replaces.length > 0 || !sameRule(olds.rule, news.rule), replaces, deleteBeforeReplace: false };
    }

    async update(_id: string, _olds: BucketLifecycleState, news: BucketLifecycleState) {
        await lifecycleClient(this.connection).write(news.bucket, news.rule);
        return { outs: news };
    }

    async delete(_id: string, props: BucketLifecycleState) {
        await lifecycleClient(this.connection).remove(props.bucket, props.rule.ID);
    }
}

export const bucketLifecycleProvider = new BucketLifecycleProvider();

/** The stack's rule in one bucket's lifecycle configuration. Registers as `pulumi-nodejs:dynamic:Resource`. */
export class BucketLifecycle extends pulumi.dynamic.Resource {
    constructor(name: string, args: BucketLifecycleArgs, opts?: pulumi.CustomResourceOptions) {
        super(bucketLifecycleProvider, name, args, opts);
    }
}
