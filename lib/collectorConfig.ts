// What a scheduled run of the garbage collector needs (the NixOS timer, .github/workflows/gc.yml):
// one environment file with the arguments of
//   nix-cache-gc --endpoint "$NIX_CACHE_GC_ENDPOINT" --bucket "$NIX_CACHE_GC_BUCKET"
//     --region "$NIX_CACHE_GC_REGION" --keep-days "$NIX_CACHE_GC_KEEP_DAYS"
//     --grace-hours "$NIX_CACHE_GC_GRACE_HOURS"
// and the collector's credentials in the variables the command (like Nix) reads them from.
import { renderEnvironmentFile } from "./builderConfig";

export interface CollectorRun {
    /** The S3 endpoint, `scheme://host[:port]`: the cache's public URL. */
    endpoint: string;
    bucket: string;
    /** The region requests are signed for: the upload region. */
    region: string;
    keepDays: number;
    graceHours: number;
    accessKey: string;
    secretKey: string;
}

/** The collector's environment file (systemd `EnvironmentFile=`, also valid shell). Secret. */
export function renderCollectorEnvironment(run: CollectorRun): string {
    return renderEnvironmentFile([
        ["NIX_CACHE_GC_ENDPOINT", run.endpoint],
        ["NIX_CACHE_GC_BUCKET", run.bucket],
        ["NIX_CACHE_GC_REGION", run.region],
        ["NIX_CACHE_GC_KEEP_DAYS", String(run.keepDays)],
        ["NIX_CACHE_GC_GRACE_HOURS", String(run.graceHours)],
        ["AWS_ACCESS_KEY_ID", run.accessKey],
        ["AWS_SECRET_ACCESS_KEY", run.secretKey],
    ]);
}
