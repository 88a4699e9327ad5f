// Uploads to a real S3 server with the writer's credentials: a path with a NAR larger than one
// part, signed and packed by Nix 2.8 (`nix copy --to file://` with the upload URL's compression),
// goes to RGW as a multipart upload under the program's writer policy, and real Nix clients
// substitute it afterwards. The S3 client is the `minio` SDK, not Nix's own S3 store: Debian's
// Nix 2.8 has none and Debian's 2.34 sends unsigned requests, so Nix's signed multipart upload
// itself is not exercised here.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import { NIX_CLIENTS } from "./nixClients";
import { NEEDS_NIX, NixWorkspace, trustOnly } from "./nixSupport";
import { deployCache, uploadAsWriter, type RgwCache } from "./rgwCache";
import { NEEDS_RGW, withRgwCluster } from "./rgwCluster";

/** The smallest part S3 allows (and the minio SDK's minimum): the NAR below needs three. */
const PART_SIZE = 5 * 1024 * 1024;
const PAYLOAD_BYTES = 12 * 1024 * 1024;

describe("uploads with the writer's credentials to a real S3 server (Ceph RGW)", [NEEDS_NIX, NEEDS_RGW].find((o) => o.skip) ?? {}, () => {
    const rgw = withRgwCluster();
    let cache: RgwCache;
    let builder: NixWorkspace;
    let large: string;
    let uploaded: string[];
    const derivations: string[] = [];

    before(async () => {
        cache = await deployCache(rgw);
        builder = await NixWorkspace.create();
        const expression = builder.path("large.nix");
        // Random bytes do not compress, so the NAR stays larger than two parts whatever the compression.
        await writeFile(
            expression,
            `derivation {
              name = "nix-cache-test-large"; system = builtins.currentSystem; builder = "/bin/sh";
              args = [ "-c" "/usr/bin/head -c ${PAYLOAD_BYTES} /dev/urandom > $out # ${randomUUID()}" ];
            }`,
        );
        derivations.push((await builder.ok("nix-instantiate", [expression])).trim());
        large = (await builder.ok("nix-store", ["--realise", derivations[0]!])).trim();
        const keyFile = await builder.writePrivateFile("signing-key", cache.program.secretKey);
        await builder.ok("nix", ["store", "sign", "--key-file", keyFile, large]);
        const local = builder.path("cache");
        await builder.ok("nix", ["copy", "--to", `file://${local}?compression=${cache.program.uploadCompression}`, large]);
        uploaded = await uploadAsWriter(rgw, cache, local, { partSize: PART_SIZE });
    });
    after(async () => {
        if (large !== undefined) {
            await builder.ok("nix-store", ["--delete", large, ...derivations]);
        }
        await builder?.remove();
    });

    test("the NAR went up as a multipart upload, which the writer policy allows", async () => {
        const nars = uploaded.filter((key) => key.startsWith("nar/"));
        assert.equal(nars.length, 1, uploaded.join(", "));
        const stat = await rgw.cluster.s3(rgw.admin).statObject(cache.bucket, nars[0]!);
        assert.ok(stat.size > 2 * PART_SIZE, `the NAR is only ${stat.size} bytes`);
        // A multipart object's ETag is `<hash>-<number of parts>` (S3's convention, which RGW follows:
        // ceph/ceph src/rgw/rgw_op.cc, RGWCompleteMultipart::execute).
        assert.match(stat.etag, /-3$/, `ETag ${stat.etag} is not that of a three-part upload`);
    });

    for (const { version, options, create } of NIX_CLIENTS) {
        test(`Nix ${version} substitutes the uploaded path anonymously, content intact`, options, async (t) => {
            const client = await create(t);
            const copied = await client.run("nix", ["copy", "--from", cache.substituter, "--to", client.store, ...trustOnly(cache.program.publicKey), large]);
            assert.equal(copied.status, 0, copied.stderr);
            // Nix checks the NAR against the signed NarHash on import; the hash it recorded must be the builder's.
            const hashIn = async (run: typeof client.run, store: string[]) =>
                (await run("nix-store", [...store, "--query", "--hash", large])).stdout.trim();
            const expected = await hashIn((command, args) => builder.run(command, args), []);
            assert.match(expected, /^sha256:/);
            assert.equal(await hashIn(client.run, ["--store", client.store]), expected);
        });
    }
});
