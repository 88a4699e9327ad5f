// Names S3 servers (and so MinIO) accept, shared by the stack's settings and the collector's flags.
import { isIP } from "node:net";

/** Why S3 (and so MinIO) would refuse a bucket name, or undefined when it is fine. */
export function bucketNameProblem(name: string): string | undefined {
    if (name.length < 3 || name.length > 63) {
        return `must be 3 to 63 characters long (got ${name.length})`;
    }
    if (!/^[a-z0-9.-]+$/.test(name)) {
        return "may contain only lowercase letters, digits, dots and hyphens";
    }
    if (!/^[a-z0-9].*[a-z0-9]$/.test(name)) {
        return "must start and end with a lowercase letter or digit";
    }
    if (name.includes("..")) {
        return "must not contain two adjacent dots";
    }
    if (isIP(name) !== 0) {
        return "must not be formatted as an IP address";
    }
    return undefined;
}

export const REGION_NAME = /^[a-z0-9][a-z0-9-]*$/;
export const REGION_PROBLEM = "must be a region name such as us-east-1";
