// The "Who may do what" table of docs/security.md, row by row, with real requests to a real S3 server (Ceph
// RGW, tests/rgwCluster.ts) to which the program's registered bucket policy and writer policy are
// applied byte for byte, anonymous and as the writer, for both values of `allowAnonymousList`.
// Each row's answer from RGW must equal the table's and the IAM evaluator's (accessEvaluation.ts).
//
// The collector (retention gc's third user) is created on RGW like the writer, with the
// registered collector policy as its user policy.
//
// RGW is not MinIO. Where their models differ, and why the table still means the same here:
// - RGW applies a bucket policy to every principal it names, `*` included authenticated users
//   (ceph/ceph doc/radosgw/bucketpolicy.rst); MinIO to anonymous requests only. The registered
//   bucket policy grants only reads the writer's and the collector's own policies grant too, so no
//   writer or collector row changes.
// - The writer and the collector are not the buckets' owner (the admin user is), as on MinIO, where buckets belong to
//   the root user: RGW then decides by the user policy (RGW's IAM PutUserPolicy) and the bucket
//   policy; the bucket's ACL grants them nothing.
// - `GET /` (ListAllMyBuckets) answers 200 to anyone with the caller's own buckets only
//   (ceph/ceph doc/radosgw/s3/serviceops.rst): "allowed" means the answer names the cache's bucket.
// - MinIO's admin API (`admin:*`) has no counterpart in RGW: those rows stay with the evaluator
//   (accessTable.test.ts), and this test says which rows it could not send.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { before, describe, test, type TestContext } from "node:test";
import {
    isAllowed,
    policiesWithAndWithoutListing,
    STACK_CONFIG,
    type RegisteredPolicies,
} from "./accessEvaluation";
import { documentedAccessRows, type AccessRow } from "./accessTableDoc";
import { widenedPolicy } from "./rgwCache";
import { NEEDS_RGW, withRgwCluster, type Credentials, type S3Response } from "./rgwCluster";

const BUCKET = "nix-cache";
const WRITER = "nixbuilder";
const COLLECTOR = "nixcollector";
const CONFIG = { ...STACK_CONFIG, "nix-cache:bucket": BUCKET };

/** What one real request showed: whether RGW allowed the row's action. */
type Decision = boolean;

/** Splits a row's target (`bucket/key`, `bucket` or `*`) into path parts. */
function partsOf(row: AccessRow): { bucket: string; key: string } {
    const [bucket = "", ...key] = row.target.split("/");
    return { bucket, key: key.join("/") };
}

describe("docs/security.md: who may do what, on a real S3 server (Ceph RGW)", NEEDS_RGW, () => {
    const rgw = withRgwCluster();
    const rows = documentedAccessRows(BUCKET);
    let defaults: RegisteredPolicies;
    let withList: RegisteredPolicies;
    /** The users' credentials; anonymous requests go unsigned. */
    const users: Partial<Record<AccessRow["who"], Credentials>> = {};
    /** Every object a row names, with the content it is (re)created with. */
    const fixtures = new Map<string, { bucket: string; key: string }>();

    /** Puts every fixture object back as the admin, after a row may have changed or deleted one. */
    const restoreFixtures = async () => {
        for (const { bucket, key } of fixtures.values()) {
            await rgw.cluster.s3(rgw.admin).putObject(bucket, key, `fixture ${key}\n`);
        }
    };

    before(async () => {
        ({ defaults, withList } = await policiesWithAndWithoutListing(CONFIG));
        users.writer = await rgw.cluster.createUser(WRITER);
        users.collector = await rgw.cluster.createUser(COLLECTOR);
        const buckets = new Set<string>();
        for (const row of rows.filter((row) => row.target !== "*")) {
            const { bucket, key } = partsOf(row);
            buckets.add(bucket);
            if (key !== "") {
                fixtures.set(row.target, { bucket, key });
            }
        }
        for (const bucket of buckets) {
            await rgw.cluster.s3(rgw.admin).makeBucket(bucket);
        }
        await restoreFixtures();
    });

    /** Applies the bucket policy and the users' policies as registered (PutUserPolicy replaces by name). */
    const apply = async (policies: RegisteredPolicies) => {
        await rgw.cluster.putBucketPolicy(rgw.admin, BUCKET, policies.bucketPolicy);
        await rgw.cluster.putUserPolicy(rgw.admin, WRITER, "nix-cache-writer", policies.writerPolicy);
        await rgw.cluster.putUserPolicy(rgw.admin, COLLECTOR, "nix-cache-collector", policies.collectorPolicy);
    };

    /** `allowed` when RGW answers `allowedStatus`, denied on 403 AccessDenied, anything else is a test error. */
    const decided = (row: AccessRow, response: S3Response, allowedStatus: number): Decision => {
        if (response.status === allowedStatus) {
            return true;
        }
        if (response.status === 403 && response.code === "AccessDenied") {
            return false;
        }
        throw new Error(`${row.line}: RGW answered ${response.status} ${response.code}: ${response.body}`);
    };

    /** Sends the request that performs the row's action, as anyone or as the row's user. */
    const attempt = async (row: AccessRow, applied: RegisteredPolicies): Promise<Decision> => {
        const as = users[row.who];
        const { bucket, key } = partsOf(row);
        const path = key === "" ? `/${bucket}` : `/${bucket}/${key}`;
        const send = (method: "GET" | "PUT" | "POST" | "DELETE", query = "", body = "", headers = {}) =>
            rgw.cluster.request({ method, path, query, body, headers, ...(as ? { as } : {}) });
        /** An upload the admin started, for the multipart rows to act on. */
        const startedUpload = async () => {
            const started = await rgw.cluster.request({ method: "POST", path, query: "uploads", as: rgw.admin });
            const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(started.body)?.[1];
            assert.ok(uploadId, `cannot start a multipart upload of ${path}: ${started.body}`);
            return encodeURIComponent(uploadId);
        };
        switch (row.action) {
            case "s3:GetObject":
                return decided(row, await send("GET"), 200);
            case "s3:PutObject":
                // The fixture's own content: an allowed write changes nothing the next row sees.
                return decided(row, await send("PUT", "", `fixture ${key}\n`), 200);
            case "s3:DeleteObject":
                return decided(row, await send("DELETE"), 204);
            case "s3:ListBucket":
                return decided(row, await send("GET"), 200);
            case "s3:GetBucketLocation":
                return decided(row, await send("GET", "location"), 200);
            case "s3:PutBucketPolicy":
                // The policy already in force: an allowed write changes nothing.
                return decided(row, await send("PUT", "policy", applied.bucketPolicy), 204);
            case "s3:DeleteBucket":
                // The bucket holds the fixtures: RGW checks permission first, then answers 409 BucketNotEmpty.
                return decided(row, await send("DELETE"), 409);
            case "s3:PutLifecycleConfiguration": {
                const rule =
                    "<LifecycleConfiguration><Rule><ID>probe</ID><Filter><Prefix>probe/</Prefix></Filter>" +
                    "<Status>Enabled</Status><Expiration><Days>365</Days></Expiration></Rule></LifecycleConfiguration>";
                const md5 = createHash("md5").update(rule).digest("base64");
                const allowed = decided(row, await send("PUT", "lifecycle", rule, { "content-md5": md5 }), 200);
                if (allowed) {
                    await rgw.cluster.s3(rgw.admin).removeBucketLifecycle(bucket);
                }
                return allowed;
            }
            case "s3:AbortMultipartUpload":
                return decided(row, await send("DELETE", `uploadId=${await startedUpload()}`), 204);
            case "s3:ListMultipartUploadParts":
                return decided(row, await send("GET", `uploadId=${await startedUpload()}`), 200);
            case "s3:ListAllMyBuckets": {
                const response = await rgw.cluster.request({ method: "GET", path: "/", ...(as ? { as } : {}) });
                return decided(row, response, 200) && response.body.includes(`<Name>${BUCKET}</Name>`);
            }
            default:
                throw new Error(`${row.line}: no request for ${row.action} is defined in this test`);
        }
    };

    /**
     * Sends every row's request under `applied` and returns the rows where RGW disagrees with the
     * table's column or with the evaluator. Rows RGW cannot show (MinIO admin actions) are reported
     * as a diagnostic and must be the only ones left out.
     */
    const disagreements = async (t: TestContext, applied: RegisteredPolicies, column: "allowed" | "allowedWithList") => {
        await apply(applied);
        const wrong: string[] = [];
        const unsent = rows.filter((row) => row.action.startsWith("admin:"));
        const say = (allowed: boolean) => (allowed ? "yes" : "no");
        for (const row of rows.filter((row) => !unsent.includes(row))) {
            const real = await attempt(row, applied);
            await restoreFixtures();
            const evaluated = await isAllowed(applied, row.who, row.action, row.resource);
            if (real !== row[column] || real !== evaluated) {
                wrong.push(`${row.line}  -> RGW says ${say(real)}, table ${say(row[column])}, evaluator ${say(evaluated)}`);
            }
        }
        t.diagnostic(`not sent to RGW (MinIO admin API, no RGW counterpart): ${unsent.map((row) => row.line).join(" ")}`);
        return wrong;
    };

    test("the table has rows RGW can check for every principal, allowed and denied", () => {
        for (const who of ["anonymous", "writer", "collector"] as const) {
            const sendable = rows.filter((row) => row.who === who && !row.action.startsWith("admin:"));
            assert.ok(sendable.some((row) => row.allowed), `${who}: no allowed row`);
            assert.ok(sendable.some((row) => !row.allowed), `${who}: no denied row`);
        }
    });

    test("with default settings, RGW decides every row as the table's Default column says", async (t) => {
        assert.deepEqual(await disagreements(t, defaults, "allowed"), []);
    });

    test("with allowAnonymousList, RGW decides every row as the table's last column says", async (t) => {
        assert.deepEqual(await disagreements(t, withList, "allowedWithList"), []);
    });

    test("a widened policy turns exactly the rows it widens red", async (t) => {
        const widened: RegisteredPolicies = {
            bucketPolicy: widenedPolicy(defaults.bucketPolicy, "s3:GetObject", "s3:PutObject"),
            writerPolicy: widenedPolicy(defaults.writerPolicy, "s3:PutObject", "s3:DeleteObject"),
            collectorPolicy: widenedPolicy(defaults.collectorPolicy, "s3:DeleteObject", "s3:PutObject"),
        };
        const widenedRows = rows.filter(
            (row) =>
                row.target.startsWith(`${BUCKET}/`) &&
                ((row.who === "anonymous" && row.action === "s3:PutObject") ||
                    (row.who === "writer" && row.action === "s3:DeleteObject") ||
                    (row.who === "collector" && row.action === "s3:PutObject")),
        );
        // Written out: anyone's upload of a narinfo, the writer's delete of a narinfo, the
        // collector's uploads of a narinfo and of a pin.
        assert.equal(widenedRows.length, 4, "the table should have these rows for the widenings");
        const red = await disagreements(t, widened, "allowed");
        assert.deepEqual(
            red.map((line) => line.split("  -> ")[0]),
            widenedRows.map((row) => row.line),
        );
        // RGW and the evaluator agree on the widened policy; only the table is now wrong.
        assert.ok(red.every((line) => /RGW says yes, table no, evaluator yes$/.test(line)), red.join("\n"));
    });
});
