// AWS Signature Version 4 verification for the loopback S3 server, written from the spec
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html) with
// node:crypto's HMAC and SHA-256. It checks what the SDK sends; it signs nothing in production.
import { createHash, createHmac } from "node:crypto";

export interface ReceivedRequest {
    method: string;
    /** Path and query as received, e.g. `/nix-cache?lifecycle`. */
    url: string;
    /** Header names in lower case, as node's http server gives them. */
    headers: Record<string, string | string[] | undefined>;
    body: Buffer;
}

export interface SigningCredentials {
    accessKey: string;
    secretKey: string;
    region: string;
}

const sha256Hex = (data: string | Buffer): string => createHash("sha256").update(data).digest("hex");
const hmac = (key: string | Buffer, data: string): Buffer => createHmac("sha256", key).update(data).digest();

// RFC 3986 unreserved characters stay; everything else is percent-encoded with upper-case hex.
const encodeRfc3986 = (text: string): string =>
    encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** Query parameters decoded, re-encoded, sorted by name then value; a bare name gets "=". */
export function canonicalQuery(query: string): string {
    if (query === "") {
        return "";
    }
    return query
        .split("&")
        .map((pair) => {
            const [name, value = ""] = pair.split(/=(.*)/s);
            return [encodeRfc3986(decodeURIComponent(name!)), encodeRfc3986(decodeURIComponent(value))] as const;
        })
        .sort(([a, av], [b, bv]) => (a === b ? (av < bv ? -1 : av > bv ? 1 : 0) : a < b ? -1 : 1))
        .map(([name, value]) => `${name}=${value}`)
        .join("&");
}

const headerValue = (value: string | string[] | undefined): string =>
    (Array.isArray(value) ? value.join(",") : (value ?? "")).trim().replace(/\s+/g, " ");

/** The signature the spec gives for a request, its signed headers, date and payload hash. */
export function expectedSignature(
    request: ReceivedRequest,
    signedHeaders: string[],
    secretKey: string,
    region: string,
    amzDate: string,
    payloadHash: string,
    service = "s3",
): string {
    const [path, query = ""] = request.url.split(/\?(.*)/s);
    const canonicalRequest = [
        request.method,
        path,
        canonicalQuery(query),
        signedHeaders.map((name) => `${name}:${headerValue(request.headers[name])}\n`).join(""),
        signedHeaders.join(";"),
        payloadHash,
    ].join("\n");
    const day = amzDate.slice(0, 8);
    const scope = `${day}/${region}/${service}/aws4_request`;
    const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256Hex(canonicalRequest)].join("\n");
    const signingKey = hmac(hmac(hmac(hmac(`AWS4${secretKey}`, day), region), service), "aws4_request");
    return createHmac("sha256", signingKey).update(stringToSign).digest("hex");
}

export type Verdict = { ok: true } | { ok: false; code: "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "AccessDenied"; problem: string };

const AUTHORIZATION =
    /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/s3\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/;

/**
 * Verifies a request signed with an Authorization header (not a presigned URL) as an S3 server
 * does: credential scope, signed headers, clock skew, payload hash, and the signature itself.
 */
export function verifySigV4(request: ReceivedRequest, credentials: SigningCredentials, now = new Date()): Verdict {
    const fail = (code: "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "AccessDenied", problem: string): Verdict => ({
        ok: false,
        code,
        problem,
    });
    const match = AUTHORIZATION.exec(headerValue(request.headers.authorization));
    if (match === null) {
        return fail("AccessDenied", `no well-formed SigV4 Authorization header: '${headerValue(request.headers.authorization)}'`);
    }
    const [, accessKey, day, region, signedList, signature] = match as unknown as string[];
    if (accessKey !== credentials.accessKey) {
        return fail("InvalidAccessKeyId", `unknown access key '${accessKey}'`);
    }
    if (region !== credentials.region) {
        return fail("SignatureDoesNotMatch", `credential scope names region '${region}', not '${credentials.region}'`);
    }
    const amzDate = headerValue(request.headers["x-amz-date"]);
    if (!/^\d{8}T\d{6}Z$/.test(amzDate) || amzDate.slice(0, 8) !== day) {
        return fail("AccessDenied", `x-amz-date '${amzDate}' is missing or does not match the scope's day ${day}`);
    }
    const signedAt = Date.UTC(
        Number(amzDate.slice(0, 4)),
        Number(amzDate.slice(4, 6)) - 1,
        Number(amzDate.slice(6, 8)),
        Number(amzDate.slice(9, 11)),
        Number(amzDate.slice(11, 13)),
        Number(amzDate.slice(13, 15)),
    );
    if (Math.abs(now.getTime() - signedAt) > 15 * 60 * 1000) {
        return fail("AccessDenied", `x-amz-date ${amzDate} is more than 15 minutes from the server's clock`);
    }
    const signedHeaders = signedList!.split(";");
    const sorted = [...signedHeaders].sort();
    if (signedHeaders.some((name, i) => name !== sorted[i])) {
        return fail("SignatureDoesNotMatch", `SignedHeaders are not sorted: ${signedList}`);
    }
    const mustBeSigned = Object.keys(request.headers).filter(
        (name) => name === "host" || name === "content-md5" || name.startsWith("x-amz-"),
    );
    const unsigned = mustBeSigned.filter((name) => !signedHeaders.includes(name));
    if (unsigned.length > 0) {
        return fail("SignatureDoesNotMatch", `headers sent but not signed: ${unsigned.join(", ")}`);
    }
    // Over TLS, clients may leave the body out of the signature; S3 and MinIO accept that.
    const payloadHash = headerValue(request.headers["x-amz-content-sha256"]);
    if (payloadHash !== "UNSIGNED-PAYLOAD" && payloadHash !== sha256Hex(request.body)) {
        return fail("SignatureDoesNotMatch", `x-amz-content-sha256 '${payloadHash}' is not the SHA-256 of the body`);
    }
    const expected = expectedSignature(request, signedHeaders, credentials.secretKey, region!, amzDate, payloadHash);
    if (expected !== signature) {
        return fail("SignatureDoesNotMatch", "the signature does not verify with the configured secret key");
    }
    return { ok: true };
}
