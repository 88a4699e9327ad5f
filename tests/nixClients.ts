// The two real Nix clients the tests run: Debian 12's Nix 2.8 on the host and Debian testing's
// Nix 2.34 in a chroot (tests/nixChroot.ts), each with a fresh, empty store of its own.
import { after, before, type TestOptions } from "node:test";
import { ChrootNixWorkspace, NEEDS_NIX_CHROOT } from "./nixChroot";
import { NEEDS_NIX, NixWorkspace, type NixResult } from "./nixSupport";

/** A fresh Nix client with an empty store of its own. */
export interface NixClient {
    run(command: string, args: string[], input?: string): Promise<NixResult>;
    /** Runs a command that must succeed; returns its stdout. */
    ok(command: string, args: string[], input?: string): Promise<string>;
    /** The client's store as its Nix sees it (`--store` / `--to`). */
    store: string;
    /** A path in the client's own directory as its Nix sees it ... */
    path(...parts: string[]): string;
    /** ... and the same path as this process writes it. */
    hostPath(...parts: string[]): string;
}

/** What removes a client when it ends: a test's TestContext, or a `describe` block (`clientForBlock`). */
export interface ClientScope {
    after(removal: () => Promise<void>): void;
}

/**
 * The two Nix versions, each with how it refuses a path without a signature it trusts (NixOS/nix
 * src/libstore/local-store.cc, LocalStore::addToStore: the message changed between the two).
 */
export const NIX_CLIENTS: { version: string; options: TestOptions; refusal: RegExp; create(t: ClientScope): Promise<NixClient> }[] = [
    {
        version: "2.8",
        options: NEEDS_NIX,
        refusal: /because it lacks a valid signature/,
        async create(t) {
            const workspace = await NixWorkspace.create();
            t.after(() => workspace.remove());
            const path = (...parts: string[]) => workspace.path(...parts);
            return {
                run: (command, args, input) => workspace.run(command, args, input),
                ok: (command, args, input) => workspace.ok(command, args, input),
                store: path("store"),
                path,
                hostPath: path,
            };
        },
    },
    {
        version: "2.34",
        options: NEEDS_NIX_CHROOT,
        refusal: /because it lacks a signature by a trusted key/,
        async create(t) {
            const workspace = await ChrootNixWorkspace.create();
            t.after(() => workspace.remove());
            return {
                run: (command, args, input) => workspace.run(command, args, input),
                ok: (command, args, input) => workspace.ok(command, args, input),
                store: workspace.path("store"),
                path: (...parts) => workspace.path(...parts),
                hostPath: (...parts) => workspace.hostPath(...parts),
            };
        },
    },
];

/** For a `describe` block: a fresh client made by `create` before its tests, removed after them. */
export function clientForBlock(create: (scope: ClientScope) => Promise<NixClient>): { client: NixClient } {
    const fixture = {} as { client: NixClient };
    const removals: (() => Promise<void>)[] = [];
    before(async () => {
        fixture.client = await create({ after: (removal) => removals.push(removal) });
    });
    after(async () => {
        for (const removal of removals.splice(0)) {
            await removal();
        }
    });
    return fixture;
}
