// The policy pack behind `pulumi preview --policy-pack policy`. Constructing a PolicyPack starts the
// analyzer's gRPC server, so this file does nothing else; the rules are in ./rules.
//
// The pack has no node_modules of its own: the engine starts it in this directory and Node resolves
// @pulumi/policy and @pulumi/pulumi from the project's node_modules one level up, so a single
// `npm ci` at the root serves both and there is exactly one copy of @pulumi/pulumi.
import { PolicyPack } from "@pulumi/policy";
import { NIX_CACHE_POLICIES } from "./rules";

new PolicyPack("nix-cache", { policies: NIX_CACHE_POLICIES, enforcementLevel: "mandatory" });
