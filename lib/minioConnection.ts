// The connection the `minio` provider uses, resolved the way terraform-provider-minio resolves it:
// the `minio:*` config first, then its environment variables, then its defaults. Whatever talks to
// MinIO beside the provider (the expiry rule) uses the same endpoint, TLS settings and credentials.

export interface MinioConnection {
    /** Host name or IP address, without brackets or port. */
    endPoint: string;
    /** Undefined: the scheme's default port. */
    port?: number;
    useSSL: boolean;
    region: string;
    /** Secret. */
    accessKey: string;
    /** Secret. */
    secretKey: string;
    /** PEM file with the CA that signed the server's certificate. */
    caCertFile?: string;
    /** Skip TLS certificate verification. */
    insecure: boolean;
}

export type Environment = Readonly<Record<string, string | undefined>>;

/** `host`, `host:port` or `[v6]:port` as in minio:minioServer; undefined when it is none of those. */
export function parseServer(server: string): { endPoint: string; port?: number } | undefined {
    const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::([0-9]{1,5}))?$/.exec(server);
    if (match === null) {
        return undefined;
    }
    const endPoint = match[1] ?? match[2]!;
    if (match[3] === undefined) {
        return { endPoint };
    }
    const port = Number(match[3]);
    return port >= 1 && port <= 65535 ? { endPoint, port } : undefined;
}

/** Every `minio:*` key minioConnection reads: what the expiry provider looks up in the stack's configuration. */
export const MINIO_CONFIG_KEYS = [
    "minio:minioServer",
    "minio:minioSsl",
    "minio:minioRegion",
    "minio:minioUser",
    "minio:minioPassword",
    "minio:minioCacertFile",
    "minio:minioInsecure",
] as const;

/** terraform-provider-minio reads booleans from the environment as "true", "1" or "on". */
const truthy = (value: string | undefined): boolean => value === "true" || value === "1" || value === "on";

/**
 * Resolves the provider's connection from the Pulumi config map and the environment. Returns the
 * connection and the problems with it, each naming the setting. A missing endpoint or credentials
 * are not a problem here: the provider itself refuses to run without them, and so does expiry.
 */
export function minioConnection(
    config: Record<string, string>,
    env: Environment,
): { connection: MinioConnection; problems: string[] } {
    const problems: string[] = [];
    const setting = (key: string, variable: string): string | undefined => config[`minio:${key}`] ?? env[variable];

    const server = setting("minioServer", "MINIO_ENDPOINT");
    const parsed = server === undefined ? undefined : parseServer(server);
    if (server !== undefined && parsed === undefined) {
        problems.push(
            `minio:minioServer: must be host or host:port without a scheme, e.g. s3.example.org:9000 (got '${server}')`,
        );
    }
    const ssl = config["minio:minioSsl"];
    if (ssl !== undefined && ssl !== "true" && ssl !== "false") {
        problems.push(`minio:minioSsl: must be true or false (got '${ssl}')`);
    }
    const caCertFile = setting("minioCacertFile", "MINIO_CACERT_FILE");
    const connection: MinioConnection = {
        endPoint: parsed?.endPoint ?? "",
        ...(parsed?.port === undefined ? {} : { port: parsed.port }),
        useSSL: ssl !== undefined ? ssl === "true" : truthy(env.MINIO_ENABLE_HTTPS),
        region: config["minio:minioRegion"] ?? "us-east-1",
        accessKey: setting("minioUser", "MINIO_USER") ?? "",
        secretKey: setting("minioPassword", "MINIO_PASSWORD") ?? "",
        ...(caCertFile === undefined || caCertFile === "" ? {} : { caCertFile }),
        insecure: config["minio:minioInsecure"] !== undefined ? config["minio:minioInsecure"] === "true" : truthy(env.MINIO_INSECURE),
    };
    return { connection, problems };
}

/** The connection's endpoint as `http(s)://host[:port]`, or undefined when it has none. */
export function endpointUrl(connection: MinioConnection): string | undefined {
    if (connection.endPoint === "") {
        return undefined;
    }
    const host = connection.endPoint.includes(":") ? `[${connection.endPoint}]` : connection.endPoint;
    const port = connection.port === undefined ? "" : `:${connection.port}`;
    return `${connection.useSSL ? "https" : "http"}://${host}${port}`;
}
