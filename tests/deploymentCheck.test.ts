// The post-deploy check: the script run exactly as the command provider runs it (`bash -c TEXT`)
// against loopback servers that answer what a real S3 server would not (a PUT stored or answered
// 404/500, a ~/.curlrc's credentials, no server at all), and its registration under the mock
// engine. Its runs against a correct and broken deployments on a real S3 server are in
// tests/deploymentCheck.rgw.test.ts.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer as createHttpServer, type RequestListener, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { buildStack } from "../stack";
import { installMocks, resetRegistrations, settle, type Registered } from "./harness";
import { NEEDS_OPENSSL, withLoopbackCertificate } from "./loopbackCertificate";

const SCRIPT_FILE = join(__dirname, "..", "scripts", "verify-deployment.sh");
const SCRIPT = readFileSync(SCRIPT_FILE, "utf8");
const CACHE_INFO = "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n";

interface CheckResult {
    status: number | null;
    stdout: string;
    stderr: string;
}

/** Runs the check as the command provider does: its text through `bash -c`, settings in the environment. */
function runCheck(url: string, extraEnv: Record<string, string> = {}): Promise<CheckResult> {
    return new Promise((done, fail) => {
        const child = spawn("bash", ["-c", SCRIPT], {
            env: { PATH: process.env.PATH, NIX_CACHE_URL: url, NIX_CACHE_INFO: CACHE_INFO, ...extraEnv },
            // stdin from /dev/null, as a command without `stdin` gets it: on a socket (node's default pipe) Debian's
            // bash believes it runs under a remote shell daemon and sources ~/.bashrc.
            stdio: ["ignore", "pipe", "pipe"],
            timeout: 60_000,
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (chunk) => (stdout += chunk));
        child.stderr.on("data", (chunk) => (stderr += chunk));
        child.on("error", fail);
        child.on("close", (status) => done({ status, stdout, stderr }));
    });
}

async function listen(server: Server): Promise<{ port: number; close: () => Promise<void> }> {
    await new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening));
    const { port } = server.address() as AddressInfo;
    return {
        port,
        close: () =>
            new Promise((closed) => {
                server.closeAllConnections();
                server.close(() => closed());
            }),
    };
}

/** Serves the right nix-cache-info and answers every PUT with `putStatus`. */
const answeringPutWith =
    (putStatus: number): RequestListener =>
    (request, response) => {
        if (request.method === "GET" && request.url === "/nix-cache/nix-cache-info") {
            response.writeHead(200).end(CACHE_INFO);
        } else if (request.method === "PUT") {
            request.resume().on("end", () => response.writeHead(putStatus).end());
        } else {
            response.writeHead(403).end();
        }
    };

describe("the check script", () => {
    let root: string;
    before(async () => {
        root = await mkdtemp(join(tmpdir(), "nix-cache-check-"));
    });
    after(() => rm(root, { recursive: true, force: true }));

    // MinIO refuses an anonymous PUT that the bucket policy does not allow with 403 AccessDenied
    // (minio/minio cmd/object-handlers.go PutObjectHandler -> cmd/auth-handler.go isPutActionAllowed:
    // no access key and globalPolicySys.IsAllowed false -> ErrAccessDenied, which cmd/api-errors.go
    // maps to http.StatusForbidden). So 403 is the only pass: a 2xx stored the probe, and any other
    // answer (no such bucket, a proxy's 404, a server error) does not show that writes are refused.
    for (const putStatus of [200, 201, 204, 404, 500]) {
        test(`fails when the anonymous PUT is answered ${putStatus}`, async () => {
            const server = await listen(createHttpServer(answeringPutWith(putStatus)));
            try {
                const result = await runCheck(`http://127.0.0.1:${server.port}/nix-cache`);
                assert.equal(result.status, 1);
                assert.match(
                    result.stderr,
                    new RegExp(
                        `^nix-cache deployment check failed: anonymous PUT .*/nix-cache-deployment-check-probe answered HTTP ${putStatus}, expected 403 \\(refused\\)`,
                    ),
                );
                assert.equal(result.stdout, "");
            } finally {
                await server.close();
            }
        });
    }

    test("ignores a ~/.curlrc that adds credentials: its requests stay anonymous", async () => {
        // curl reads ~/.curlrc ($HOME/.curlrc) unless -q / --disable is its FIRST argument (curl's
        // man page, docs/cmdline-opts/disable.md: "If used as the first parameter on the command
        // line, the curlrc config file is not read or used"). Here the credentials would make a
        // bucket without anonymous read look fine: only an authenticated GET gets nix-cache-info.
        const home = join(root, "home-with-curlrc");
        await mkdir(home, { recursive: true });
        await writeFile(join(home, ".curlrc"), 'user = "nix-cache-reader:reader-secret"\n');
        const authorizations: string[] = [];
        const readableWithCredentialsOnly: RequestListener = (request, response) => {
            authorizations.push(`${request.method} ${request.headers.authorization ?? "anonymous"}`);
            const authenticated = request.headers.authorization !== undefined;
            if (request.method === "GET" && request.url === "/nix-cache/nix-cache-info" && authenticated) {
                response.writeHead(200).end(CACHE_INFO);
            } else {
                request.resume().on("end", () => response.writeHead(403).end());
            }
        };
        const server = await listen(createHttpServer(readableWithCredentialsOnly));
        try {
            const result = await runCheck(`http://127.0.0.1:${server.port}/nix-cache`, { HOME: home });
            assert.equal(result.status, 1);
            assert.match(result.stderr, /anonymous GET .*\/nix-cache\/nix-cache-info answered HTTP 403, expected 200/);
            assert.deepEqual(authorizations, ["GET anonymous"]);
        } finally {
            await server.close();
        }
    });

    test("fails when the server cannot be reached, and says how to turn the check off", async () => {
        const server = await listen(createHttpServer());
        await server.close();
        const result = await runCheck(`http://127.0.0.1:${server.port}/nix-cache`);
        assert.equal(result.status, 1);
        assert.match(result.stderr, /could not fetch .* pulumi config set nix-cache:verifyDeployment false/);
    });

    test("fails without its settings", async () => {
        const result = await runCheck("");
        assert.equal(result.status, 1);
        assert.match(result.stderr, /NIX_CACHE_URL must be the substituter URL/);
    });

    test("trusts a private CA only when given its certificate", NEEDS_OPENSSL, async () => {
        await withLoopbackCertificate(async ({ key, cert }) => {
            const refusing: RequestListener = (request, response) =>
                request.method === "GET" && request.url === "/nix-cache/nix-cache-info"
                    ? response.writeHead(200).end(CACHE_INFO)
                    : request.resume().on("end", () => response.writeHead(403).end());
            const server = await listen(createHttpsServer({ key, cert }, refusing));
            try {
                const url = `https://127.0.0.1:${server.port}/nix-cache`;
                const trusted = await runCheck(url, { NIX_CACHE_CA_CERTIFICATE: cert });
                assert.equal(trusted.status, 0, trusted.stderr);
                const untrusted = await runCheck(url);
                assert.equal(untrusted.status, 1);
                assert.match(untrusted.stderr, /could not fetch .*nix-cache-info/);
            } finally {
                await server.close();
            }
        });
    });

    test("fails when given a CA that did not sign the server's certificate", NEEDS_OPENSSL, async () => {
        // Both certificates have the same subject and address; only the key that signed them differs.
        await withLoopbackCertificate(async (serverCertificate) => {
            await withLoopbackCertificate(async (unrelatedCa) => {
                const log: string[] = [];
                const server = await listen(
                    createHttpsServer({ key: serverCertificate.key, cert: serverCertificate.cert }, (request, response) => {
                        log.push(`${request.method} ${request.url}`);
                        answeringPutWith(403)(request, response);
                    }),
                );
                try {
                    const result = await runCheck(`https://127.0.0.1:${server.port}/nix-cache`, {
                        NIX_CACHE_CA_CERTIFICATE: unrelatedCa.cert,
                    });
                    assert.equal(result.status, 1);
                    assert.match(result.stderr, /could not fetch .*nix-cache-info/);
                    assert.deepEqual(log, [], "no request should get past the TLS handshake");
                } finally {
                    await server.close();
                }
            });
        });
    });
});

const SERVER = { "minio:minioServer": "s3.example.org:9000", "minio:minioSsl": "true" };
const COMMAND = "command:local:Command";

function only(registered: Registered[], predicate: (resource: Registered) => boolean, what: string): Registered {
    const found = registered.filter(predicate);
    assert.equal(found.length, 1, `expected exactly one ${what}, found ${found.length}`);
    return found[0]!;
}

const checkCommand = (registered: Registered[]) =>
    only(registered, (resource) => resource.type === COMMAND, "check command");

describe("the check in the stack", () => {
    before(installMocks);
    beforeEach(resetRegistrations);

    test("runs the script with the stack's URL and cache info, after the bucket, policy and nix-cache-info", async () => {
        const registered = await settle(buildStack(SERVER));
        const command = checkCommand(registered);
        const component = only(registered, (resource) => resource.urn === command.parentUrn, "parent of the check");
        assert.equal(component.type, "nix-cache:index:DeploymentCheck");
        assert.equal(component.name, "nix-cache-deployment-check");
        assert.equal(command.name, "nix-cache-deployment-check-anonymous-access");
        assert.equal(only(registered, (resource) => resource.urn === component.parentUrn, "cache").name, "nix-cache");

        const policy =
            '{"Version":"2012-10-17","Statement":[{"Sid":"AnonymousDownload","Effect":"Allow","Principal":{"AWS":["*"]},' +
            '"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::nix-cache/*"]}]}';
        assert.deepEqual(command.inputs, {
            create: SCRIPT,
            interpreter: ["bash", "-c"],
            environment: { NIX_CACHE_URL: "https://s3.example.org:9000/nix-cache", NIX_CACHE_INFO: CACHE_INFO },
            triggers: [CACHE_INFO, policy],
            addPreviousOutputInEnv: false,
        });

        const urnOfName = (name: string) => only(registered, (resource) => resource.name === name, name).urn;
        for (const name of ["nix-cache-storage-bucket", "nix-cache-storage-anonymous-read", "nix-cache-storage-cache-info"]) {
            assert.ok(command.dependencies.includes(urnOfName(name)), `the check should wait for ${name}`);
        }
    });

    test("the same settings register the same inputs, so a second `up` does not run it again", async () => {
        const first = checkCommand(await settle(buildStack(SERVER))).inputs;
        resetRegistrations();
        const second = checkCommand(await settle(buildStack(SERVER))).inputs;
        assert.deepEqual(second, first);
    });

    test("a change of cache info or policy changes its triggers, so it runs again", async () => {
        const base = checkCommand(await settle(buildStack(SERVER))).inputs.triggers;
        resetRegistrations();
        const priority = checkCommand(await settle(buildStack({ ...SERVER, "nix-cache:priority": "30" }))).inputs.triggers;
        resetRegistrations();
        const listing = checkCommand(await settle(buildStack({ ...SERVER, "nix-cache:allowAnonymousList": "true" }))).inputs.triggers;
        assert.deepEqual(priority, [CACHE_INFO.replace("Priority: 40", "Priority: 30"), base[1]]);
        assert.equal(listing[0], base[0]);
        assert.match(listing[1], /"Sid":"AnonymousList"/);
    });

    test("a private CA certificate is handed to the script", async () => {
        const pem = readFileSync(join(__dirname, "fixtures", "private-ca.pem"), "utf8");
        const command = checkCommand(await settle(buildStack({ ...SERVER, "nix-cache:caCertificate": pem })));
        assert.equal(command.inputs.environment.NIX_CACHE_CA_CERTIFICATE, pem);
    });

    test("verifyDeployment false registers no check at all", async () => {
        const registered = await settle(buildStack({ ...SERVER, "nix-cache:verifyDeployment": "false" }));
        assert.ok(registered.length > 0);
        assert.deepEqual(
            registered.filter((resource) => resource.type === COMMAND || resource.type === "nix-cache:index:DeploymentCheck"),
            [],
        );
    });
});
