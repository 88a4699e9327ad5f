# NixOS module for machines that substitute from the cache. It reads the stack's `nixSettings`
# output (or `nixosClient`, which adds a private CA's certificate) from a JSON file:
#   pulumi stack output --json nixSettings > nix-cache.json
{ config, lib, pkgs, ... }:
let
  cfg = config.services.nix-binary-cache.client;
  inherit (lib) mkEnableOption mkIf mkOption optional types;
  stack = import ./lib/read-settings.nix {
    file = cfg.settingsFile;
    inherit (cfg) extraTrustedPublicKeys;
  };
in
{
  options.services.nix-binary-cache.client = {
    enable = mkEnableOption "substituting from the signed Nix binary cache deployed by the nix-cache Pulumi stack";

    settingsFile = mkOption {
      type = types.path;
      example = lib.literalExpression "./nix-cache.json";
      description = ''
        JSON written by `pulumi stack output --json nixSettings > nix-cache.json` (or by
        `pulumi stack output --json nixosClient`, which adds the private CA's certificate). Keep it
        next to the configuration: with flakes, only files inside the flake can be read.
      '';
    };

    extraTrustedPublicKeys = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "cache.example.org-2:ZmFrZS1rZXktZm9yLWRvY3VtZW50YXRpb24tb25seSE=" ];
      description = ''
        More signing keys (NAME:BASE64) to trust for this cache, e.g. a new generation that is
        already signing while the settings file still lists the old one. Keys of earlier
        generations normally come from the stack's `nix-cache:previousPublicKeys` instead.
      '';
    };

    caCertificateFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = lib.literalExpression "./nix-cache-ca.pem";
      description = ''
        PEM certificate of the private CA that signed the cache's HTTPS certificate; added to the
        system trust store, which Nix uses. Not needed when the settings file is the `nixosClient`
        output of a stack with `nix-cache:caCertificate` set.
      '';
    };
  };

  config = mkIf cfg.enable {
    # Checked before anything else is built, so a wrong file stops the build with these messages.
    assertions = map (message: { assertion = false; inherit message; }) stack.problems;

    nix.settings = {
      extra-substituters = stack.substituters;
      extra-trusted-public-keys = stack.trustedPublicKeys;
      # Users the daemon does not trust may then select it too (flake nixConfig, --option substituters).
      trusted-substituters = stack.substituters;
    };

    security.pki.certificateFiles =
      optional (cfg.caCertificateFile != null) cfg.caCertificateFile
      ++ optional (stack.caCertificate != null) (pkgs.writeText "nix-binary-cache-ca.pem" stack.caCertificate);
  };
}
