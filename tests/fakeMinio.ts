// A loopback stand-in for MinIO's bucket lifecycle API (PUT, GET, DELETE /<bucket>?lifecycle) that
// checks each request as MinIO does and answers with MinIO's status codes and error documents.
// Behaviour per server generation, from MinIO's sources (internal/bucket/lifecycle/filter.go and
// lifecycle.go, cmd/api-errors.go at the named release tags); every generation refuses two rules with
// one ID (lifecycle.go, errLifecycleDuplicateID) and answers NoSuchBucket for a missing bucket
// (api-errors.go, ErrNoSuchBucket):
//   "current"        RELEASE.2023-12-02T10-51-33Z and later: ObjectSizeGreaterThan/LessThan filters.
//   "2023-06"        RELEASE.2023-06-16 to 2023-11: unknown filter element -> 400 InvalidArgument "unknown XML Tag".
//   "2021-02"        RELEASE.2021-02-07 to 2023-06: the same refusal with code InvalidRequest.
//   "2020"           before RELEASE.2021-02-07: unknown filter elements are silently dropped, leaving
//                    an empty prefix, which matches every object.
import { createHash, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { XMLBuilder, XMLParser } from "fast-xml-parser";
import { verifySigV4, type ReceivedRequest, type SigningCredentials } from "./sigv4";

export type MinioGeneration = "current" | "2023-06" | "2021-02" | "2020";

/** A rule as parsed from the XML body: element names as keys, text as strings. */
export type StoredRule = Record<string, unknown>;

export interface LoggedRequest {
    method: string;
    url: string;
    status: number;
    /** Why the request was refused, when it was. */
    problem?: string;
}

interface ApiError {
    status: number;
    code: string;
    message: string;
}

const FILTER_PREDICATES = {
    current: ["Prefix", "And", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan"],
    older: ["Prefix", "And", "Tag"],
};

const parser = new XMLParser({
    parseTagValue: false,
    isArray: (_name, jpath) => jpath === "LifecycleConfiguration.Rule",
});
const builder = new XMLBuilder({});

/**
 * A stored rule as other S3 servers and releases may answer GET with it, without changing what it
 * expires: elements in another order, an empty Prefix in the filter, empty or default actions.
 */
function withHarmlessExtras({ ID, Status, Filter, Expiration, ...rest }: StoredRule): StoredRule {
    return {
        NoncurrentVersionExpiration: "",
        Expiration: { ExpiredObjectDeleteMarker: "false", ...(Expiration as object) },
        Filter: { Prefix: "", ...(Filter as object) },
        Status,
        ID,
        ...rest,
    };
}

export class FakeMinio {
    /** The bucket's lifecycle rules, undefined when it has no configuration. */
    stored: StoredRule[] | undefined;
    /** Answer GET with harmless extra and default elements in each rule (see withHarmlessExtras). */
    decoratesAnswers = false;
    /** False: the bucket is gone, and every request is answered as MinIO answers for a missing bucket. */
    bucketExists = true;
    readonly requests: LoggedRequest[] = [];
    private server: Server | undefined;
    port = 0;

    constructor(
        readonly bucket: string,
        /** What the server accepts; a test changes them as an administrator changes the password. */
        public credentials: SigningCredentials,
        readonly generation: MinioGeneration = "current",
        /** Serve HTTPS with this PEM key and certificate instead of plain HTTP. */
        readonly tls?: { key: string; cert: string },
    ) {}

    async start(): Promise<void> {
        const listener: RequestListener = (req, res) => {
            const chunks: Buffer[] = [];
            req.on("data", (chunk: Buffer) => chunks.push(chunk));
            req.on("end", () => this.handle(req, Buffer.concat(chunks), res));
        };
        this.server = this.tls === undefined ? createServer(listener) : createTlsServer(this.tls, listener);
        await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
        this.port = (this.server.address() as AddressInfo).port;
    }

    async stop(): Promise<void> {
        if (this.server !== undefined) {
            this.server.closeAllConnections();
            await new Promise((resolve) => this.server!.close(resolve));
        }
    }

    /** Requests the server refused for reasons other than the lifecycle document itself. */
    refusals(): LoggedRequest[] {
        return this.requests.filter((request) => request.problem !== undefined && request.status !== 404);
    }

    private handle(req: IncomingMessage, body: Buffer, res: ServerResponse): void {
        const request: ReceivedRequest = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body };
        const answer = (status: number, payload = "", problem?: string) => {
            this.requests.push({ method: request.method, url: request.url, status, ...(problem ? { problem } : {}) });
            res.writeHead(status, payload === "" ? {} : { "Content-Type": "application/xml" });
            res.end(payload);
        };
        const refuse = (error: ApiError, problem = error.message) => answer(error.status, this.errorDocument(error), problem);

        const verdict = verifySigV4(request, this.credentials);
        if (!verdict.ok) {
            const messages = {
                InvalidAccessKeyId: "The Access Key Id you provided does not exist in our records.",
                SignatureDoesNotMatch:
                    "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
                AccessDenied: "Access Denied.",
            };
            return refuse({ status: 403, code: verdict.code, message: messages[verdict.code] }, verdict.problem);
        }
        if (request.url !== `/${this.bucket}?lifecycle`) {
            return refuse({ status: 501, code: "NotImplemented", message: `unexpected ${request.method} ${request.url}` });
        }
        if (!this.bucketExists) {
            return refuse({ status: 404, code: "NoSuchBucket", message: "The specified bucket does not exist" });
        }
        switch (request.method) {
            case "PUT": {
                const error = this.putLifecycle(request);
                return error === undefined ? answer(200) : refuse(error);
            }
            case "GET":
                if (this.stored === undefined) {
                    return refuse({
                        status: 404,
                        code: "NoSuchLifecycleConfiguration",
                        message: "The lifecycle configuration does not exist",
                    });
                }
                return answer(200, builder.build({
                    LifecycleConfiguration: { Rule: this.decoratesAnswers ? this.stored.map(withHarmlessExtras) : this.stored },
                }));
            case "DELETE":
                this.stored = undefined;
                return answer(204);
            default:
                return refuse({ status: 405, code: "MethodNotAllowed", message: "The specified method is not allowed against this resource." });
        }
    }

    private putLifecycle(request: ReceivedRequest): ApiError | undefined {
        // MinIO's PutBucketLifecycleHandler: an integrity header is mandatory, and must match.
        const md5 = request.headers["content-md5"];
        const checksum = Object.keys(request.headers).find((name) => name.startsWith("x-amz-checksum-"));
        if (md5 === undefined && checksum === undefined) {
            return { status: 400, code: "MissingContentMD5", message: "Missing required header for this request: Content-Md5." };
        }
        if (md5 !== undefined && md5 !== createHash("md5").update(request.body).digest("base64")) {
            return { status: 400, code: "BadDigest", message: "The Content-Md5 you specified did not match what we received." };
        }
        const malformed = {
            status: 400,
            code: "MalformedXML",
            message: "The XML you provided was not well-formed or did not validate against our published schema.",
        };
        let document: { LifecycleConfiguration?: { Rule?: StoredRule[] } };
        try {
            document = parser.parse(request.body.toString("utf8"), true);
        } catch {
            return malformed;
        }
        const rules = document.LifecycleConfiguration?.Rule;
        if (rules === undefined || rules.length === 0) {
            return { status: 400, code: "InvalidArgument", message: "Lifecycle configuration should have at least one rule" };
        }
        const allowed = this.generation === "current" ? FILTER_PREDICATES.current : FILTER_PREDICATES.older;
        const ids = rules.map((rule) => rule.ID);
        if (new Set(ids).size !== ids.length) {
            return {
                status: 400,
                code: "InvalidArgument",
                message: "Lifecycle configuration has rule with the same ID. Rule ID must be unique.",
            };
        }
        const stored: StoredRule[] = [];
        for (const rule of rules) {
            if (rule.Status !== "Enabled" && rule.Status !== "Disabled") {
                return { status: 400, code: "InvalidArgument", message: "Status must be set to either Enabled or Disabled" };
            }
            const filter = { ...((rule.Filter as Record<string, unknown> | undefined) ?? {}) };
            for (const element of Object.keys(filter).filter((name) => !allowed.includes(name))) {
                if (this.generation === "2020") {
                    delete filter[element];
                } else {
                    return {
                        status: 400,
                        code: this.generation === "2021-02" ? "InvalidRequest" : "InvalidArgument",
                        message: "unknown XML Tag",
                    };
                }
            }
            if (this.generation === "2020" && Object.keys(filter).length === 0) {
                filter.Prefix = ""; // what those releases store (and return) for an empty filter: all objects
            }
            if (Object.keys(filter).length > 1) {
                return { status: 400, code: "InvalidArgument", message: "Filter must have exactly one of Prefix, Tag, or And specified" };
            }
            const days = (rule.Expiration as { Days?: unknown } | undefined)?.Days;
            if (days !== undefined && !/^[1-9][0-9]*$/.test(String(days))) {
                return { status: 400, code: "InvalidArgument", message: "Days must be positive integer when used with Expiration" };
            }
            stored.push({ ...rule, Filter: filter });
        }
        this.stored = stored;
        return undefined;
    }

    private errorDocument(error: ApiError): string {
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n' +
            builder.build({
                Error: {
                    Code: error.code,
                    Message: error.message,
                    BucketName: this.bucket,
                    Resource: `/${this.bucket}`,
                    RequestId: randomUUID(),
                    HostId: "fake-minio",
                },
            })
        );
    }
}
