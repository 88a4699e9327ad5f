# Reads the JSON that `pulumi stack output --json nixSettings > nix-cache.json` writes, or the
# `nixosClient` output (the same fields plus `caCertificate`), for nixos/substituter.nix.
#
# Plain Nix without nixpkgs, so that tests can evaluate it with `nix-instantiate --eval`. It never
# fails on a wrong shape: it returns `problems`, which the module turns into assertions that say
# what is wrong and how to write the file.
{ file, extraTrustedPublicKeys ? [ ] }:
let
  where = "services.nix-binary-cache.client.settingsFile (${toString file})";
  writeHint = "write it with: pulumi stack output --json nixSettings > nix-cache.json";

  exists = builtins.pathExists file;
  # A failed `pulumi stack output ... > file` leaves the file empty, which fromJSON cannot parse.
  isEmpty = exists && builtins.match "[[:space:]]*" (builtins.readFile file) != null;
  json = if exists && !isEmpty then builtins.fromJSON (builtins.readFile file) else null;
  isObject = builtins.isAttrs json;
  field = name: if isObject && builtins.hasAttr name json then json.${name} else null;

  isStringList = value: builtins.isList value && builtins.all builtins.isString value;
  isUrl = text: builtins.match "https?://[^[:space:]]+" text != null;
  # NAME:BASE64 of a 32-byte Ed25519 key; Nix rejects anything else.
  isPublicKey = text: builtins.match "[^:[:space:]]+:[A-Za-z0-9+/]{43}=" text != null;

  listProblems = name: valid: what:
    let value = field name; in
    if value == null then [ "${where}: lacks \"${name}\"; ${writeHint}" ]
    else if !(isStringList value) || value == [ ] then [ "${where}: \"${name}\" must be a non-empty list of strings" ]
    else map (item: "${where}: \"${name}\" has ${builtins.toJSON item}, which is not ${what}")
      (builtins.filter (item: !(valid item)) value);

  caCertificate = field "caCertificate";

  problems =
    if !exists then [ "${where}: the file does not exist; ${writeHint}" ]
    else if isEmpty then [ "${where}: the file is empty (did the pulumi command that writes it fail?); ${writeHint}" ]
    else if !isObject then [ "${where}: must hold a JSON object; ${writeHint}" ]
    else if builtins.hasAttr "nixSettings" json then
      [ "${where}: holds every output of the stack; write only one: ${writeHint}" ]
    else
      listProblems "extra-substituters" isUrl "an http(s) URL"
      ++ listProblems "extra-trusted-public-keys" isPublicKey "a Nix public key (NAME:BASE64)"
      ++ (if caCertificate == null
            || (builtins.isString caCertificate && builtins.length (builtins.split "-----BEGIN CERTIFICATE-----" caCertificate) > 1)
          then [ ]
          else [ "${where}: \"caCertificate\" must be PEM certificate text or null" ]);

  extraKeyProblems = map
    (key: "services.nix-binary-cache.client.extraTrustedPublicKeys: ${builtins.toJSON key} is not a Nix public key (NAME:BASE64)")
    (builtins.filter (key: !(isPublicKey key)) extraTrustedPublicKeys);

  listOrEmpty = name: if isStringList (field name) then field name else [ ];
in
{
  substituters = listOrEmpty "extra-substituters";
  trustedPublicKeys = listOrEmpty "extra-trusted-public-keys" ++ extraTrustedPublicKeys;
  caCertificate = if builtins.isString caCertificate then caCertificate else null;
  problems = problems ++ extraKeyProblems;
}
