// A throw-away single-node Ceph cluster with its RADOS Gateway (RGW), a real S3 server, on
// 127.0.0.1: one ceph-mon, one ceph-osd on memstore, no ceph-mgr, radosgw with the beast frontend.
// Every file lives under the cluster's own temp dir; every daemon is stopped by its pid.
// Installed with `apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd ceph-common`
// (Ceph 16.2.15 on Debian 12). The traps each setting below avoids are in ../shared/NOTES.md.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes, randomInt, randomUUID } from "node:crypto";
import { openSync, closeSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, type TestOptions } from "node:test";
import { Client, type ClientOptions } from "minio";
import { needsTool } from "./requiredTools";
import { expectedSignature } from "./sigv4";

const INSTALL_HINT =
    "Ceph's RGW is not installed: apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd ceph-common";
const CEPH_TOOLS = ["monmaptool", "ceph-mon", "ceph-osd", "ceph", "radosgw", "radosgw-admin"];

/** Options for a `describe` whose tests need the cluster: fail in CI, skip loudly elsewhere. */
export const NEEDS_RGW: TestOptions = CEPH_TOOLS.map((tool) => needsTool(tool, INSTALL_HINT)).find((options) => options.skip) ?? {
    skip: false,
};

/** RGW accepts any region name in a SigV4 scope for its default zonegroup; this is the stack's default. */
export const REGION = "us-east-1";

export interface Credentials {
    accessKey: string;
    secretKey: string;
}

export interface S3Request {
    method: "GET" | "HEAD" | "PUT" | "POST" | "DELETE";
    /** Path-style: `/<bucket>` or `/<bucket>/<key>` (not yet encoded), or `/` for the service. */
    path: string;
    /** Raw query string without `?`, e.g. `uploads` or `uploadId=...`. */
    query?: string;
    body?: string | Buffer;
    headers?: Record<string, string>;
    /** Signs with SigV4 as this user; unsigned (anonymous) without. */
    as?: Credentials;
    /** SigV4 service name: `s3`, or `iam` for RGW's IAM API. */
    service?: "s3" | "iam";
}

export interface S3Response {
    status: number;
    /** The `<Code>` of an S3 error document, or "" when there is none. */
    code: string;
    body: string;
}

const sha256Hex = (data: string | Buffer): string => createHash("sha256").update(data).digest("hex");
const alphanumeric = (length: number): string =>
    [...randomBytes(length)].map((byte) => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[byte % 62]).join("");

/** Whether something on 127.0.0.1 already listens on `port`. */
function portTaken(port: number): Promise<boolean> {
    return new Promise((answer) => {
        const probe = createServer();
        probe.once("error", () => answer(true));
        probe.listen(port, "127.0.0.1", () => probe.close(() => answer(false)));
    });
}

/**
 * A block of 50 ports below Linux's ephemeral range (32768+), free when probed. Each cluster takes
 * its own block, so test files may run clusters in parallel: the monitor gets the first port, RGW
 * the last two (HTTPS, HTTP), and the OSD's four msgr2 listeners pick free ports in between (`ms bind port min/max`,
 * ceph/ceph doc/rados/configuration/network-config-ref.rst). msgr1 (6789) is not bound at all.
 */
async function freePortBlock(): Promise<number> {
    for (let attempt = 0; attempt < 20; attempt++) {
        const base = 20000 + randomInt(0, 250) * 50;
        if (!(await portTaken(base)) && !(await portTaken(base + 49))) {
            return base;
        }
    }
    throw new Error("no free block of 50 ports between 20000 and 32500 on 127.0.0.1");
}

/** A certificate and its key (PEM) for RGW to serve HTTPS with, beside HTTP. */
export interface TlsIdentity {
    cert: string;
    key: string;
}

function configuration(dir: string, fsid: string, base: number, tls: boolean): string {
    // beast's options: ceph/ceph doc/radosgw/frontends.rst.
    const https = tls ? ` ssl_endpoint=127.0.0.1:${base + 48} ssl_certificate=${dir}/tls/cert.pem ssl_private_key=${dir}/tls/key.pem` : "";
    return `[global]
fsid = ${fsid}
mon host = v2:127.0.0.1:${base}
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind port min = ${base + 1}
ms bind port max = ${base + 47}
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
osd objectstore = memstore
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
paxos propose interval = 0.05
rgw lc debug interval = 10
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
log file = ${dir}/log/$name.log
mon data = ${dir}/mon/$name
osd data = ${dir}/osd/$name
rgw data = ${dir}/rgw/$name

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:${base + 49}${https}
`;
}

export class RgwCluster {
    private readonly daemons: { name: string; child: ChildProcess; stopSignal: NodeJS.Signals }[] = [];

    private constructor(
        readonly dir: string,
        private readonly conf: string,
        /** `http://127.0.0.1:PORT`: RGW's S3 and IAM endpoint. */
        readonly origin: string,
        readonly port: number,
        /** `https://127.0.0.1:PORT` when started with a TLS identity. */
        readonly httpsOrigin: string | undefined,
    ) {}

    /**
     * Starts mon, OSD and RGW (about 2 s) and waits until RGW answers HTTP; HTTPS too with `tls`.
     * A second attempt, in a new dir on a new port block, covers another test file having taken the
     * same block between its probe and the daemons' binds.
     */
    static async start(tls?: TlsIdentity): Promise<RgwCluster> {
        try {
            return await RgwCluster.startOnce(tls);
        } catch (error) {
            if (error instanceof Error && error.message.includes(INSTALL_HINT)) {
                throw error;
            }
            console.warn(`RGW start-up failed, trying once more on other ports: ${error}`);
            return await RgwCluster.startOnce(tls);
        }
    }

    private static async startOnce(tls?: TlsIdentity): Promise<RgwCluster> {
        const dir = await mkdtemp(join(tmpdir(), "nix-cache-rgw-"));
        for (const sub of ["run", "log", "mon", "osd", "rgw", "tls"]) {
            await mkdir(join(dir, sub));
        }
        if (tls !== undefined) {
            await writeFile(join(dir, "tls", "cert.pem"), tls.cert);
            await writeFile(join(dir, "tls", "key.pem"), tls.key, { mode: 0o600 });
        }
        const base = await freePortBlock();
        const fsid = randomUUID();
        const conf = join(dir, "ceph.conf");
        await writeFile(conf, configuration(dir, fsid, base, tls !== undefined));
        const httpsOrigin = tls === undefined ? undefined : `https://127.0.0.1:${base + 48}`;
        const cluster = new RgwCluster(dir, conf, `http://127.0.0.1:${base + 49}`, base + 49, httpsOrigin);
        try {
            await cluster.bootstrap(fsid, base);
        } catch (error) {
            await cluster.stop();
            throw error;
        }
        return cluster;
    }

    private async bootstrap(fsid: string, base: number): Promise<void> {
        const monmap = join(this.dir, "monmap");
        await this.run("monmaptool", ["--create", "--fsid", fsid, "--addv", "a", `[v2:127.0.0.1:${base}]`, monmap]);
        await this.run("ceph-mon", ["-c", this.conf, "--mkfs", "-i", "a", "--monmap", monmap]);
        this.daemon("ceph-mon", ["-c", this.conf, "-f", "-i", "a"]);
        const osdUuid = randomUUID();
        const osdId = (await this.run("ceph", ["-c", this.conf, "--connect-timeout", "20", "osd", "new", osdUuid])).trim();
        assert.match(osdId, /^\d+$/, `ceph osd new answered '${osdId}'`);
        await mkdir(join(this.dir, "osd", `osd.${osdId}`));
        await this.run("ceph-osd", ["-c", this.conf, "-i", osdId, "--mkfs", "--osd-uuid", osdUuid]);
        this.daemon("ceph-osd", ["-c", this.conf, "-f", "-i", osdId]);
        // RGW keeps no state of its own (it lives in the OSD), and its SIGTERM shutdown takes 5 s here.
        this.daemon("radosgw", ["-c", this.conf, "-f", "-n", "client.rgw"], "SIGKILL");
        const deadline = Date.now() + 60_000;
        for (;;) {
            const exited = this.daemons.find(({ child }) => child.exitCode !== null || child.signalCode !== null);
            if (exited) {
                throw new Error(`${exited.name} exited during start-up:\n${this.logTail(exited.name)}`);
            }
            const answered = await fetch(`${this.origin}/`).then(
                (response) => response.status,
                () => 0,
            );
            if (answered === 200) {
                return;
            }
            if (Date.now() > deadline) {
                throw new Error(`RGW did not answer on ${this.origin} within 60 s:\n${this.logTail("radosgw")}`);
            }
            await new Promise((resolve) => setTimeout(resolve, 50));
        }
    }

    private logTail(name: string): string {
        try {
            return readFileSync(join(this.dir, `${name}.stderr`), "utf8").split("\n").slice(-20).join("\n");
        } catch {
            return "(no output)";
        }
    }

    /** Runs a Ceph tool to completion; returns stdout, throws with stderr on failure. */
    private run(command: string, args: string[]): Promise<string> {
        return new Promise((done, fail) => {
            const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 });
            let stdout = "";
            let stderr = "";
            child.stdout.on("data", (chunk) => (stdout += chunk));
            child.stderr.on("data", (chunk) => (stderr += chunk));
            child.on("error", (error: NodeJS.ErrnoException) =>
                fail(error.code === "ENOENT" ? new Error(`${command}: ${INSTALL_HINT}`) : error),
            );
            child.on("close", (status) =>
                status === 0 ? done(stdout) : fail(new Error(`${command} ${args.join(" ")} exited ${status}:\n${stderr}`)),
            );
        });
    }

    /** Starts a daemon in the foreground (`-f`), so that its pid is the daemon's own. */
    private daemon(name: string, args: string[], stopSignal: NodeJS.Signals = "SIGTERM"): void {
        const output = openSync(join(this.dir, `${name}.stderr`), "w");
        const child = spawn(name, args, { stdio: ["ignore", output, output] });
        closeSync(output);
        child.on("error", () => {}); // ENOENT shows as an exit during start-up, with the log.
        this.daemons.push({ name, child, stopSignal });
        // Safety net if the test process ends without running its `after` hooks.
        process.once("exit", () => {
            if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
                process.kill(child.pid, "SIGKILL");
            }
        });
    }

    /** Stops RGW, then the OSD, then the monitor, each by its pid (SIGKILL after 10 s); removes the dir. */
    async stop(): Promise<void> {
        for (const { child, stopSignal } of [...this.daemons].reverse()) {
            if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
                continue;
            }
            const exited = new Promise((resolve) => child.once("exit", resolve));
            process.kill(child.pid, stopSignal);
            const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, "SIGKILL"), 10_000);
            await exited;
            clearTimeout(timer);
        }
        this.daemons.length = 0;
        await rm(this.dir, { recursive: true, force: true });
    }

    /**
     * Creates an RGW user with random keys (`radosgw-admin user create`). An admin gets the caps to
     * manage users, buckets and user policies; any other user gets `--max-buckets=-1`, so that it
     * cannot create buckets of its own (ceph/ceph doc/man/8/radosgw-admin.rst, `--max-buckets`).
     */
    async createUser(uid: string, { admin = false } = {}): Promise<Credentials> {
        const credentials = { accessKey: alphanumeric(20), secretKey: alphanumeric(40) };
        await this.run("radosgw-admin", [
            "-c",
            this.conf,
            "user",
            "create",
            `--uid=${uid}`,
            `--display-name=${uid}`,
            `--access-key=${credentials.accessKey}`,
            `--secret-key=${credentials.secretKey}`,
            ...(admin ? ["--caps=users=*;buckets=*;user-policy=*"] : ["--max-buckets=-1"]),
        ]);
        return credentials;
    }

    /** An S3 client for this RGW, path-style; anonymous without credentials. */
    s3(credentials?: Credentials, options: Partial<ClientOptions> = {}): Client {
        return new Client({
            endPoint: "127.0.0.1",
            port: this.port,
            useSSL: false,
            region: REGION,
            pathStyle: true,
            ...(credentials ?? {}),
            ...options,
        });
    }

    /** Sends one request, signed with SigV4 (tests/sigv4.ts) when `as` is given; never throws for a status. */
    async request({ method, path, query = "", body = "", headers = {}, as, service = "s3" }: S3Request): Promise<S3Response> {
        const encodedPath = path.split("/").map(encodeURIComponent).join("/");
        const url = `${encodedPath}${query === "" ? "" : `?${query}`}`;
        const sent: Record<string, string> = { ...headers };
        if (as !== undefined) {
            const amzDate = new Date().toISOString().replace(/[-:]|\.\d{3}/g, "");
            const payloadHash = sha256Hex(body);
            Object.assign(sent, { host: `127.0.0.1:${this.port}`, "x-amz-date": amzDate, "x-amz-content-sha256": payloadHash });
            const signedHeaders = Object.keys(sent)
                .map((name) => name.toLowerCase())
                .filter((name) => name === "host" || name === "content-type" || name === "content-md5" || name.startsWith("x-amz-"))
                .sort();
            const lowerCased = Object.fromEntries(Object.entries(sent).map(([name, value]) => [name.toLowerCase(), value]));
            const signature = expectedSignature(
                { method, url, headers: lowerCased, body: Buffer.from(body) },
                signedHeaders,
                as.secretKey,
                REGION,
                amzDate,
                payloadHash,
                service,
            );
            sent.authorization =
                `AWS4-HMAC-SHA256 Credential=${as.accessKey}/${amzDate.slice(0, 8)}/${REGION}/${service}/aws4_request, ` +
                `SignedHeaders=${signedHeaders.join(";")}, Signature=${signature}`;
            delete sent.host; // fetch sets it, to the same value
        }
        const response = await fetch(`${this.origin}${url}`, {
            method,
            headers: sent,
            ...(method === "GET" || method === "HEAD" ? {} : { body }),
        });
        const text = await response.text();
        return { status: response.status, code: /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? "", body: text };
    }

    /** Applies a bucket policy (S3 PutBucketPolicy) as `owner`, exactly the given bytes. */
    async putBucketPolicy(owner: Credentials, bucket: string, policy: string): Promise<void> {
        const response = await this.request({ method: "PUT", path: `/${bucket}`, query: "policy", body: policy, as: owner });
        assert.equal(response.status, 204, `PutBucketPolicy on ${bucket}: ${response.status} ${response.body}`);
    }

    /**
     * Attaches an inline policy to a user with RGW's IAM API: a SigV4 form POST with service `iam`
     * (AWS's PutUserPolicy, https://docs.aws.amazon.com/IAM/latest/APIReference/API_PutUserPolicy.html;
     * RGW's handler is RGWPutUserPolicy in ceph/ceph src/rgw/rgw_rest_user_policy.cc, which needs the
     * caller's `user-policy=*` cap). Never follow it with `radosgw-admin user modify`: that silently
     * deletes the user's policies (checked here, 16.2.15).
     */
    async putUserPolicy(admin: Credentials, userName: string, policyName: string, policy: string): Promise<void> {
        const form = new URLSearchParams({
            Action: "PutUserPolicy",
            Version: "2010-05-08",
            UserName: userName,
            PolicyName: policyName,
            PolicyDocument: policy,
        }).toString();
        const response = await this.request({
            method: "POST",
            path: "/",
            body: form,
            headers: { "content-type": "application/x-www-form-urlencoded" },
            as: admin,
            service: "iam",
        });
        assert.equal(response.status, 200, `PutUserPolicy for ${userName}: ${response.status} ${response.body}`);
    }
}

export interface RgwFixture {
    cluster: RgwCluster;
    /** The admin user (caps users, buckets, user-policy); owns the buckets the tests create. */
    admin: Credentials;
}

/**
 * For a `describe` block: starts a cluster with an admin user before its tests and stops it after
 * them, also when they fail. The fields are set once the `before` hook has run.
 */
export function withRgwCluster(): RgwFixture {
    const fixture = {} as RgwFixture;
    before(async () => {
        fixture.cluster = await RgwCluster.start();
        fixture.admin = await fixture.cluster.createUser("admin", { admin: true });
    });
    after(() => fixture.cluster?.stop());
    return fixture;
}
