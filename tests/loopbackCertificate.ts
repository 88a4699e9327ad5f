// A self-signed certificate for 127.0.0.1 that is its own CA, made with openssl, for tests that
// serve HTTPS on loopback. Node cannot make X.509 certificates itself.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { needsTool } from "./requiredTools";

const OPENSSL_INSTALL_HINT = "openssl is not installed: apt-get install -y openssl";

/** Options for a test that makes a loopback certificate. */
export const NEEDS_OPENSSL = needsTool("openssl", OPENSSL_INSTALL_HINT);

export interface LoopbackCertificate {
    key: string;
    cert: string;
    /** The certificate's PEM file, for settings that take a path. */
    certFile: string;
}

/** Makes the certificate in a temporary directory, hands it to `use`, and deletes it afterwards. */
export async function withLoopbackCertificate<T>(use: (certificate: LoopbackCertificate) => Promise<T>): Promise<T> {
    const dir = await mkdtemp(join(tmpdir(), "nix-cache-loopback-tls-"));
    try {
        const [keyFile, certFile] = [join(dir, "key.pem"), join(dir, "cert.pem")];
        const made = spawnSync(
            "openssl",
            ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                "-subj", "/CN=nix-cache loopback test CA", "-addext", "subjectAltName=IP:127.0.0.1",
                "-addext", "basicConstraints=critical,CA:TRUE", "-keyout", keyFile, "-out", certFile],
            { encoding: "utf8" },
        );
        assert.equal(made.status, 0, made.error ? OPENSSL_INSTALL_HINT : made.stderr);
        const [key, cert] = await Promise.all([readFile(keyFile, "utf8"), readFile(certFile, "utf8")]);
        return await use({ key, cert, certFile });
    } finally {
        await rm(dir, { recursive: true, force: true });
    }
}
