// docs/operations.md, "Adopting a cache set up by hand": the import file must name the resources exactly as the
// program registers them, or `pulumi up` would create a second set beside the imported one (and
// delete the imported one). `pulumi import` builds each URN from the entry's type, name and its
// parent chain (pulumi/pulumi pkg/cmd/pulumi/operations/import.go, parseImportFile: NewURN(stack,
// project, parentType, spec.Type, spec.LogicalName), LogicalName defaulting to Name), so type, name
// and parent are compared here. The ids are the ones terraform-provider-minio v1.20.1 imports by
// (minio/import_minio_s3_buckets.go and ImportStatePassthroughContext: the bucket name for the
// bucket and its policy, the user's and policy's names; resource_minio_iam_user_policy_attachment.go,
// minioImportUserPolicyAttachment: "<user-name>/<policy_name>").
import assert from "node:assert/strict";
import { before, beforeEach, describe, test } from "node:test";
import { buildStack } from "../stack";
import { docSection } from "./docSection";
import { installMocks, resetRegistrations, settle, type Registered } from "./harness";

interface ImportEntry {
    type: string;
    name: string;
    id?: string;
    parent?: string;
    component?: boolean;
}

const CONFIG = { "minio:minioServer": "s3.homelab.local:9000", "minio:minioSsl": "true" };

function importFile(): ImportEntry[] {
    const section = docSection("docs/operations.md", "## Adopting a cache set up by hand");
    const block = /```json\n([\s\S]*?)\n```/.exec(section);
    assert.ok(block, "the adoption section has a JSON import file");
    return (JSON.parse(block[1]!) as { resources: ImportEntry[] }).resources;
}

/** The id terraform-provider-minio imports each type by, from the registered inputs. */
function importIdOf(resource: Registered): string | undefined {
    const inputs = resource.inputs as Record<string, string>;
    switch (resource.type) {
        case "minio:index/s3Bucket:S3Bucket":
        case "minio:index/s3BucketPolicy:S3BucketPolicy":
            return inputs.bucket;
        case "minio:index/iamUser:IamUser":
        case "minio:index/iamPolicy:IamPolicy":
            return inputs.name;
        case "minio:index/iamUserPolicyAttachment:IamUserPolicyAttachment":
            return `${inputs.userName}/${inputs.policyName}`;
        default:
            return undefined;
    }
}

// What the how-to's commands create on the server (mc mb, mc anonymous set download, mc admin user
// add, mc admin policy create, mc admin policy attach): each must be imported, or up collides with it.
const MADE_BY_THE_HOW_TO = [
    "minio:index/s3Bucket:S3Bucket",
    "minio:index/s3BucketPolicy:S3BucketPolicy",
    "minio:index/iamUser:IamUser",
    "minio:index/iamPolicy:IamPolicy",
    "minio:index/iamUserPolicyAttachment:IamUserPolicyAttachment",
];

before(installMocks);
beforeEach(resetRegistrations);

describe("adopting a cache set up by hand", () => {
    test("every import entry is a resource the program registers: type, name, parent and id", async () => {
        const registered = await settle(buildStack(CONFIG));
        const nameOfUrn = new Map(registered.map((resource) => [resource.urn, resource.name]));
        const problems: string[] = [];
        for (const entry of importFile()) {
            const match = registered.find((resource) => resource.name === entry.name && resource.type === entry.type);
            if (match === undefined) {
                problems.push(`${entry.name} (${entry.type}) is not registered by the program`);
                continue;
            }
            const parent = nameOfUrn.get(match.parentUrn);
            if (parent !== entry.parent) {
                problems.push(`${entry.name}: parent ${entry.parent} in the file, ${parent} in the program`);
            }
            const isComponent = match.type.startsWith("nix-cache:index:");
            if (isComponent !== (entry.component === true) || (isComponent && entry.id !== undefined)) {
                problems.push(`${entry.name}: components are marked component and carry no id, others need one`);
            }
            if (!isComponent && entry.id !== importIdOf(match)) {
                problems.push(`${entry.name}: id ${entry.id} in the file, ${importIdOf(match)} in the program`);
            }
        }
        assert.deepEqual(problems, []);
    });

    test("imports everything the how-to's commands create, each parent before its children", () => {
        const entries = importFile();
        assert.deepEqual(
            entries.filter((entry) => MADE_BY_THE_HOW_TO.includes(entry.type)).map((entry) => entry.type).sort(),
            [...MADE_BY_THE_HOW_TO].sort(),
        );
        entries.forEach((entry, index) => {
            if (entry.parent !== undefined) {
                const parentAt = entries.findIndex((candidate) => candidate.name === entry.parent);
                assert.ok(parentAt >= 0 && parentAt < index, `${entry.parent} comes before ${entry.name}`);
            }
        });
    });

    test("the how-to's names are the program's defaults, so a plain up would collide (why the section exists)", async () => {
        const registered = await settle(buildStack(CONFIG));
        const ids = registered.map(importIdOf).filter((id) => id !== undefined);
        // mc mb s3/nix-cache; mc admin user add s3 nixbuilder; mc admin policy create s3 nix-cache-write.
        for (const madeByHand of ["nix-cache", "nixbuilder", "nix-cache-write", "nixbuilder/nix-cache-write"]) {
            assert.ok(ids.includes(madeByHand), `${madeByHand} is a default id`);
        }
    });
});
