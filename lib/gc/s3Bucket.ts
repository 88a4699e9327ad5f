// The collector's only contact with a server: list, read and delete objects of one bucket over S3
// (path-style, as MinIO serves buckets), with the `minio` SDK.
import { Client } from "minio";
import type { BucketObject } from "./bucketObjects";

/** What the collector needs of a bucket; tests wrap it to pause or fail a run. */
export interface CacheBucketClient {
    /** Every object of the bucket. */
    list(): Promise<BucketObject[]>;
    /** An object's content as text. */
    read(key: string): Promise<string>;
    /** Deletes the objects; throws if the server refused any of them. */
    remove(keys: string[]): Promise<void>;
}

export interface S3Location {
    /** `http(s)://host[:port]`. */
    endpoint: URL;
    bucket: string;
    region: string;
    accessKey: string;
    secretKey: string;
}

export function s3Bucket({ endpoint, bucket, region, accessKey, secretKey }: S3Location): CacheBucketClient {
    const client = new Client({
        endPoint: endpoint.hostname.replace(/^\[(.*)\]$/, "$1"),
        ...(endpoint.port === "" ? {} : { port: Number(endpoint.port) }),
        useSSL: endpoint.protocol === "https:",
        region,
        accessKey,
        secretKey,
        pathStyle: true,
    });
    return {
        list: () =>
            new Promise<BucketObject[]>((resolve, reject) => {
                const objects: BucketObject[] = [];
                client
                    .listObjectsV2(bucket, "", true)
                    .on("data", (item) => {
                        if (item.name !== undefined) {
                            objects.push({ key: item.name, size: item.size, lastModified: item.lastModified, etag: item.etag });
                        }
                    })
                    .on("error", reject)
                    .on("end", () => resolve(objects));
            }),
        read: async (key) => {
            const chunks: Buffer[] = [];
            for await (const chunk of await client.getObject(bucket, key)) {
                chunks.push(chunk as Buffer);
            }
            return Buffer.concat(chunks).toString("utf8");
        },
        remove: async (keys) => {
            if (keys.length === 0) {
                return;
            }
            const refused = (await client.removeObjects(bucket, keys)).filter((result) => result?.Error !== undefined);
            if (refused.length > 0) {
                const first = refused[0]!.Error!;
                throw new Error(
                    `the server refused to delete ${refused.length} of ${keys.length} objects ` +
                        `(first: ${first.Key}: ${first.Code ?? "error"} ${first.Message ?? ""})`.trimEnd(),
                );
            }
        },
    };
}
