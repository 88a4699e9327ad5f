# Checks shared by the builder module's settings (builder-settings.nix) and its collector options:
# whether a path is in the Nix store, and what is wrong with an option that names a secret file.
# Plain Nix without nixpkgs, like the settings files that use it.
{ storeDir ? builtins.storeDir }:
let
  option = name: "services.nix-binary-cache.builder.${name}";
in
rec {
  inStore = text: builtins.substring 0 (builtins.stringLength storeDir + 1) text == "${storeDir}/";

  # Secrets must stay out of the Nix store, which every local user can read. A Nix path literal
  # (./secret.key) would be copied there as soon as it is used in a string, so only strings count.
  secretFileProblems = name: value:
    if builtins.isPath value then
      [ "${option name}: ${toString value} is a Nix path literal, which would copy the secret into the world-readable Nix store; give the path as a string, e.g. \"/run/secrets/nix-cache\"" ]
    else if !(builtins.isString value) || builtins.substring 0 1 value != "/" then
      [ "${option name}: must be an absolute path such as \"/run/secrets/nix-cache\", got ${builtins.toJSON value}" ]
    else if inStore value then
      [ "${option name}: ${value} is in the Nix store, which every local user can read; keep the secret in a root-only file outside it" ]
    else [ ];
}
