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
    /** Deletes one object; throws if the server refused. */
    remove(key: string): Promise<void>;
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
        // One DeleteObject per key (the run deletes several at a time), rather than a multi-object
        // delete: Ceph RGW 16.2 judges a multi-object delete by s3:DeleteObject on the bucket's ARN,
        // not on each object's (ceph/ceph src/rgw/rgw_op.cc, RGWDeleteMultiObj::verify_permission),
        // so a collector granted deletion on `<bucket>/*` only is refused there (seen here).
        remove: (key) => client.removeObject(bucket, key),
    };
}
