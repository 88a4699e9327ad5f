// lib/narinfo.ts without Nix: fingerprints written out by hand, and a narinfo that Nix 2.8 wrote and
// signed (`nix store sign`, then `nix copy --to file://`) with the RFC 8032 test key.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ed from "@noble/ed25519";
import { narInfoFingerprint, narInfoIsSignedBy, parseNarInfo, signNarInfo, type NarInfo } from "../lib/narinfo";
import { zip215OnlySignature } from "./zip215Vector";

// RFC 8032, section 7.1, TEST 1, in Nix's key formats.
const SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const SECRET_KEY = `cache.example.org-1:${Buffer.from(SEED + PUBLIC, "hex").toString("base64")}`;
const PUBLIC_KEY = `cache.example.org-1:${Buffer.from(PUBLIC, "hex").toString("base64")}`;

const NIX_SIGNATURE =
    "cache.example.org-1:/GS3tRLrO70ZU1YOnz9CW4O9CVDX6HPmsmHD18sU1EMfpBBNFKUGPXDP+0vym6oP3fbqDfxPfosoX8qh33paBg==";
const NARINFO_BY_NIX = `StorePath: /nix/store/xhdaqn41zfk58cb72qbigd6hg76zpvny-nix-cache-test-top
URL: nar/0dypq01q64cw125mdpn0lp0kic8s2n0gscf2mw5lwk3g21ja94nd.nar.zst
Compression: zstd
FileHash: sha256:0dypq01q64cw125mdpn0lp0kic8s2n0gscf2mw5lwk3g21ja94nd
FileSize: 142
NarHash: sha256:1bl7wwwbpdh1cbdf6ha3g4lciz928fi5pcbnhvbbh6ll0hr2h0lw
NarSize: 184
References: ajy39mfl6sd6pph2cx6xachc1j1nqw3v-nix-cache-test-dependency
Deriver: 80rq0rgnjniq8bip5smq1cxk8iivghk2-nix-cache-test-top.drv
Sig: ${NIX_SIGNATURE}
`;

const FINGERPRINT_BY_HAND =
    "1;/nix/store/xhdaqn41zfk58cb72qbigd6hg76zpvny-nix-cache-test-top;" +
    "sha256:1bl7wwwbpdh1cbdf6ha3g4lciz928fi5pcbnhvbbh6ll0hr2h0lw;184;" +
    "/nix/store/ajy39mfl6sd6pph2cx6xachc1j1nqw3v-nix-cache-test-dependency";

describe("parseNarInfo", () => {
    test("reads the signed fields and the signatures of a narinfo Nix wrote", () => {
        assert.deepEqual(parseNarInfo(NARINFO_BY_NIX), {
            storePath: "/nix/store/xhdaqn41zfk58cb72qbigd6hg76zpvny-nix-cache-test-top",
            url: "nar/0dypq01q64cw125mdpn0lp0kic8s2n0gscf2mw5lwk3g21ja94nd.nar.zst",
            narHash: "sha256:1bl7wwwbpdh1cbdf6ha3g4lciz928fi5pcbnhvbbh6ll0hr2h0lw",
            narSize: 184,
            references: ["ajy39mfl6sd6pph2cx6xachc1j1nqw3v-nix-cache-test-dependency"],
            signatures: [NIX_SIGNATURE],
        });
    });

    test("reads an empty References line, with or without its trailing space, and several Sig lines", () => {
        const base = NARINFO_BY_NIX.replace(/^References: .*$/m, "References: ");
        assert.deepEqual(parseNarInfo(base).references, []);
        assert.deepEqual(parseNarInfo(base.replace("References: ", "References:")).references, []);
        assert.deepEqual(parseNarInfo(`${base}Sig: other-1:AAAA\n`).signatures, [NIX_SIGNATURE, "other-1:AAAA"]);
    });

    const broken: [string, string, RegExp][] = [
        ["no StorePath", NARINFO_BY_NIX.replace(/^StorePath: .*\n/m, ""), /expected one StorePath line, found 0/],
        ["no URL", NARINFO_BY_NIX.replace(/^URL: .*\n/m, ""), /expected one URL line, found 0/],
        ["an empty URL", NARINFO_BY_NIX.replace(/^URL: .*$/m, "URL: "), /URL must not be empty/],
        ["two NarSize lines", `${NARINFO_BY_NIX}NarSize: 185\n`, /expected one NarSize line, found 2/],
        ["a relative StorePath", NARINFO_BY_NIX.replace("StorePath: /nix/store/", "StorePath: "), /absolute path/],
        ["an SRI NarHash", NARINFO_BY_NIX.replace(/^NarHash: .*$/m, "NarHash: sha256-JSMZUOgHY31qzveEaK3TVTCgKuSZCHwB+vCVtBJZFK0="), /NarHash must be sha256:<52 base32/],
        ["a NarSize that is not a number", NARINFO_BY_NIX.replace("NarSize: 184", "NarSize: 18x"), /NarSize must be a whole number/],
        ["a full path among References", NARINFO_BY_NIX.replace("References: ", "References: /nix/store/"), /References lists base names/],
        ["a line without a colon", `${NARINFO_BY_NIX}garbage\n`, /expected 'Name: value', got 'garbage'/],
    ];
    for (const [what, text, message] of broken) {
        test(`refuses a narinfo with ${what}`, () => {
            assert.throws(() => parseNarInfo(text), message);
        });
    }
});

describe("narInfoFingerprint", () => {
    test("is Nix's message: version 1, store path, NarHash, NarSize, references as full paths", () => {
        assert.equal(narInfoFingerprint(parseNarInfo(NARINFO_BY_NIX), "/nix/store"), FINGERPRINT_BY_HAND);
    });

    test("sorts the references and joins them with commas, in the given store dir", () => {
        const info: NarInfo = {
            storePath: "/srv/store/aaaa-x",
            url: "nar/x.nar",
            narHash: "sha256:1bl7wwwbpdh1cbdf6ha3g4lciz928fi5pcbnhvbbh6ll0hr2h0lw",
            narSize: 7,
            references: ["zzzz-z", "aaaa-x", "mmmm-m"],
            signatures: [],
        };
        assert.equal(
            narInfoFingerprint(info, "/srv/store"),
            "1;/srv/store/aaaa-x;sha256:1bl7wwwbpdh1cbdf6ha3g4lciz928fi5pcbnhvbbh6ll0hr2h0lw;7;" +
                "/srv/store/aaaa-x,/srv/store/mmmm-m,/srv/store/zzzz-z",
        );
    });

    test("refuses a store path outside the store dir", () => {
        assert.throws(
            () => narInfoFingerprint(parseNarInfo(NARINFO_BY_NIX), "/nix/store2"),
            /StorePath '\/nix\/store\/xhdaqn41.*' is not in the store \/nix\/store2/,
        );
    });
});

describe("signing and verifying", () => {
    const info = parseNarInfo(NARINFO_BY_NIX);

    test("signs exactly as Nix did with the same key (Ed25519 is deterministic)", () => {
        assert.equal(signNarInfo(info, "/nix/store", SECRET_KEY), NIX_SIGNATURE);
    });

    test("accepts Nix's signature under the trusted key", () => {
        assert.equal(narInfoIsSignedBy(info, "/nix/store", [PUBLIC_KEY]), true);
    });

    const changes: [string, Partial<NarInfo>][] = [
        ["NarHash", { narHash: "sha256:0hzzpnhnh1kx5pmr8pwsf8a9rqf6axnh0hcl1cxlay75c45gnf0i" }],
        ["NarSize", { narSize: 185 }],
        ["references (one dropped)", { references: [] }],
        ["references (one added)", { references: [...info.references, "xhdaqn41zfk58cb72qbigd6hg76zpvny-nix-cache-test-top"] }],
        ["StorePath", { storePath: "/nix/store/xhdaqn41zfk58cb72qbigd6hg76zpvny-nix-cache-test-tom" }],
    ];
    for (const [what, change] of changes) {
        test(`rejects the signature once the ${what} changed`, () => {
            assert.equal(narInfoIsSignedBy({ ...info, ...change }, "/nix/store", [PUBLIC_KEY]), false);
        });
    }

    test("counts a signature only under the trusted key of its own name", () => {
        const renamed = `other-1:${PUBLIC_KEY.split(":")[1]}`;
        assert.equal(narInfoIsSignedBy(info, "/nix/store", [renamed]), false);
        assert.equal(narInfoIsSignedBy({ ...info, signatures: [] }, "/nix/store", [PUBLIC_KEY]), false);
    });

    test("accepts when any one signature is valid", () => {
        const withForeign = { ...info, signatures: [`other-1:${Buffer.alloc(64).toString("base64")}`, NIX_SIGNATURE] };
        assert.equal(narInfoIsSignedBy(withForeign, "/nix/store", [PUBLIC_KEY]), true);
    });

    test("the ZIP-215-only construction reproduces Wycheproof's tcId 151 byte for byte", () => {
        // C2SP/wycheproof testvectors_v1/ed25519_test.json, tcId 151 (key: RFC 8032 TEST 1), "invalid".
        const signature = zip215OnlySignature(Buffer.from("313233343030", "hex"), Buffer.from(SEED, "hex"), Buffer.from(PUBLIC, "hex"));
        assert.equal(
            signature.toString("hex"),
            "0100000000000000000000000000000000000000000000000000000000000080" +
                "c803ee1f2342aa96ff698a393d1ab5e66f3eda101d6d120b394c3fd32c117d0a",
        );
    });

    test("refuses a signature that only ZIP-215 verification accepts, as libsodium in Nix does", () => {
        const message = new TextEncoder().encode(FINGERPRINT_BY_HAND);
        const signature = zip215OnlySignature(message, Buffer.from(SEED, "hex"), Buffer.from(PUBLIC, "hex"));
        // @noble/ed25519 3.x verifies with ZIP-215's rules unless told `zip215: false`
        // (node_modules/@noble/ed25519/index.ts, getZip215: `options.zip215 ?? true`): its default accepts this.
        assert.equal(ed.verify(signature, message, Buffer.from(PUBLIC, "hex")), true, "the vector should pass ZIP-215 verification");
        const forged = { ...info, signatures: [`cache.example.org-1:${signature.toString("base64")}`] };
        assert.equal(narInfoIsSignedBy(forged, "/nix/store", [PUBLIC_KEY]), false);
    });

    test("refuses a corrupt signature with a clear error", () => {
        const short = { ...info, signatures: [`cache.example.org-1:${Buffer.alloc(63).toString("base64")}`] };
        assert.throws(() => narInfoIsSignedBy(short, "/nix/store", [PUBLIC_KEY]), /expected 64 bytes, got 63/);
        const unnamed = { ...info, signatures: [NIX_SIGNATURE.replace("cache.example.org-1", "")] };
        assert.throws(() => narInfoIsSignedBy(unnamed, "/nix/store", [PUBLIC_KEY]), /key name must not be empty/);
    });
});
