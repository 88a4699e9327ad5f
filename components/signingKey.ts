import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { nixKeyPairFromPem } from "../lib/nixKeys";

export interface SigningKeyArgs {
    /** Nix key name, by convention `<cache host>-<generation>`. */
    keyName: string;
    /** Guard the key against deletion: losing it means re-trusting a new key on every client. */
    protect: boolean;
}

/** An Ed25519 key pair in Nix's formats, kept in Pulumi state. */
export class SigningKey extends pulumi.ComponentResource {
    /** `NAME:BASE64(public)`, for `trusted-public-keys`. */
    readonly publicKey: pulumi.Output<string>;
    /** `NAME:BASE64(seed || public)`, for `nix store sign --key-file` and `secret-key=`. Secret. */
    readonly secretKey: pulumi.Output<string>;

    constructor(name: string, args: SigningKeyArgs, opts?: pulumi.ComponentResourceOptions) {
        super("nix-cache:index:SigningKey", name, {}, opts);

        // The key name is part of the resource name, so a new generation (`...-1` to `...-2`) is a
        // new resource and thus a new key pair: that is how Nix keys are rotated.
        const key = new tls.PrivateKey(
            `${name}-${args.keyName}`,
            { algorithm: "ED25519" },
            { parent: this, protect: args.protect },
        );
        const pair = pulumi
            .all([key.privateKeyPem, key.publicKeyPem])
            .apply(([privateKeyPem, publicKeyPem]) => nixKeyPairFromPem(args.keyName, privateKeyPem, publicKeyPem));

        this.secretKey = pulumi.secret(pair.secretKey);
        // Derived together with the secret half, so the engine marks it secret; the public key is not.
        this.publicKey = pulumi.unsecret(pair.publicKey);
        this.registerOutputs({ publicKey: this.publicKey, secretKey: this.secretKey });
    }
}
