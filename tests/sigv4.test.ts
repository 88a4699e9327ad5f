// The loopback server's SigV4 verifier against AWS's published examples (S3 API reference,
// "Examples: Signature Calculations in AWS Signature Version 4"), so that a request it accepts is
// one S3 would accept.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { canonicalQuery, expectedSignature, verifySigV4, type ReceivedRequest } from "./sigv4";

const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const ACCESS = "AKIAIOSFODNN7EXAMPLE";
const DATE = "20130524T000000Z";
const HOST = "examplebucket.s3.amazonaws.com";
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

function example(method: string, url: string, headers: Record<string, string>, body = ""): ReceivedRequest {
    return { method, url, headers: { host: HOST, "x-amz-date": DATE, ...headers }, body: Buffer.from(body) };
}

describe("SigV4 verification", () => {
    test("AWS example: GET Object with a Range header", () => {
        const request = example("GET", "/test.txt", { range: "bytes=0-9", "x-amz-content-sha256": EMPTY_SHA256 });
        assert.equal(
            expectedSignature(request, ["host", "range", "x-amz-content-sha256", "x-amz-date"], SECRET, "us-east-1", DATE, EMPTY_SHA256),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        );
    });

    test("AWS example: PUT Object with a body and an encoded path", () => {
        const payload = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
        const request = example(
            "PUT",
            "/test%24file.text",
            { date: "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class": "REDUCED_REDUNDANCY", "x-amz-content-sha256": payload },
            "Welcome to Amazon S3.",
        );
        assert.equal(createHash("sha256").update(request.body).digest("hex"), payload);
        assert.equal(
            expectedSignature(
                request,
                ["date", "host", "x-amz-content-sha256", "x-amz-date", "x-amz-storage-class"],
                SECRET,
                "us-east-1",
                DATE,
                payload,
            ),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
        );
    });

    test("AWS example: GET Bucket Lifecycle, a query parameter without a value", () => {
        const request = example("GET", "/?lifecycle", { "x-amz-content-sha256": EMPTY_SHA256 });
        assert.equal(canonicalQuery("lifecycle"), "lifecycle=");
        assert.equal(
            expectedSignature(request, ["host", "x-amz-content-sha256", "x-amz-date"], SECRET, "us-east-1", DATE, EMPTY_SHA256),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        );
    });

    test("a request verifies only for its own credentials, body, headers and time", () => {
        const signed = example("GET", "/?lifecycle", {
            "x-amz-content-sha256": EMPTY_SHA256,
            authorization:
                `AWS4-HMAC-SHA256 Credential=${ACCESS}/20130524/us-east-1/s3/aws4_request, ` +
                "SignedHeaders=host;x-amz-content-sha256;x-amz-date, " +
                "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        });
        const credentials = { accessKey: ACCESS, secretKey: SECRET, region: "us-east-1" };
        const then = new Date("2013-05-24T00:05:00Z");
        assert.deepEqual(verifySigV4(signed, credentials, then), { ok: true });

        const problem = (request: ReceivedRequest, creds = credentials, now = then) => {
            const verdict = verifySigV4(request, creds, now);
            return verdict.ok ? "accepted" : verdict.code;
        };
        assert.equal(problem(signed, { ...credentials, secretKey: `${SECRET}x` }), "SignatureDoesNotMatch");
        assert.equal(problem(signed, { ...credentials, accessKey: "AKIAOTHER" }), "InvalidAccessKeyId");
        assert.equal(problem(signed, { ...credentials, region: "eu-west-1" }), "SignatureDoesNotMatch");
        assert.equal(problem({ ...signed, url: "/?policy" }), "SignatureDoesNotMatch");
        assert.equal(problem({ ...signed, method: "DELETE" }), "SignatureDoesNotMatch");
        assert.equal(problem({ ...signed, body: Buffer.from("x") }), "SignatureDoesNotMatch");
        assert.equal(problem({ ...signed, headers: { ...signed.headers, "x-amz-meta-extra": "1" } }), "SignatureDoesNotMatch");
        assert.equal(problem({ ...signed, headers: { ...signed.headers, "content-md5": "AAAA" } }), "SignatureDoesNotMatch");
        assert.equal(problem(signed, credentials, new Date("2013-05-24T00:20:00Z")), "AccessDenied");
        assert.equal(problem({ ...signed, headers: { ...signed.headers, authorization: undefined } }), "AccessDenied");
    });
});
