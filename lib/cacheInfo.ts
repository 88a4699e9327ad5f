// The `nix-cache-info` object at the root of a binary cache. Nix reads it before anything else and
// refuses the cache without it; Priority (lower wins; cache.nixos.org is 40) and WantMassQuery
// (allow bulk queries of the cache) come from here.

export const CACHE_INFO_KEY = "nix-cache-info";
export const CACHE_INFO_CONTENT_TYPE = "text/x-nix-cache-info";

export interface CacheInfo {
    storeDir: string;
    wantMassQuery: boolean;
    priority: number;
}

export function renderCacheInfo(info: CacheInfo): string {
    return [
        `StoreDir: ${info.storeDir}`,
        `WantMassQuery: ${info.wantMassQuery ? 1 : 0}`,
        `Priority: ${info.priority}`,
        "",
    ].join("\n");
}
