# What nixos/builder.nix derives from its options: the environment of the queue scripts
# (scripts/enqueue, scripts/drain), the builder's nix.conf settings, and problems with the options.
#
# Plain Nix without nixpkgs, so that tests can evaluate it with `nix-instantiate --eval` and run the
# scripts with exactly this environment. It never fails on bad options: it returns `problems`, which
# the module turns into assertions.
{ uploadUrl
, secretKeyFile
, credentialsFile ? null
, queueDir
, attempts
, initialDelay
, maxDelay
, batchSize
, setAsideAfter
, storeDir ? builtins.storeDir
}:
let
  option = name: "services.nix-binary-cache.builder.${name}";
  inherit (import ./secret-files.nix { inherit storeDir; }) inStore secretFileProblems;

  # scripts/drain adds the key file to the upload URL as is, so it must need no URL escaping.
  keyFileProblems =
    let problems = secretFileProblems "secretKeyFile" secretKeyFile; in
    if problems == [ ] && builtins.match "/[A-Za-z0-9._/+-]+" secretKeyFile == null
    then [ "${option "secretKeyFile"}: may contain only letters, digits and ._/+- (it goes into the upload URL), got ${builtins.toJSON secretKeyFile}" ]
    else problems;

  queueDirProblems =
    if !(builtins.isString queueDir) || builtins.match "/[^[:space:]]*[^/]" queueDir == null then
      [ "${option "queueDir"}: must be an absolute path without spaces or a trailing '/', got ${builtins.toJSON queueDir}" ]
    else if inStore queueDir then
      [ "${option "queueDir"}: ${queueDir} is in the read-only Nix store; use a directory such as /var/lib/nix-cache-push" ]
    else [ ];

  uploadUrlProblems =
    if builtins.isString uploadUrl && builtins.match "[a-z0-9+]+://[^[:space:]]+" uploadUrl != null then [ ]
    else [ "${option "uploadUrl"}: must be a Nix store URL such as the stack output uploadUrl (s3://nix-cache?endpoint=...), got ${builtins.toJSON uploadUrl}" ];

  isS3 = builtins.isString uploadUrl && builtins.substring 0 5 uploadUrl == "s3://";
in
{
  problems = uploadUrlProblems ++ keyFileProblems ++ queueDirProblems
    ++ (if credentialsFile == null then [ ] else secretFileProblems "credentialsFile" credentialsFile);

  warnings =
    if isS3 && credentialsFile == null
    then [ "${option "credentialsFile"} is not set: Nix's S3 client then looks for the writer's credentials in root's ~/.aws/credentials" ]
    else [ ];

  # The post-build-hook's environment (Nix runs it with the daemon's environment plus OUT_PATHS).
  enqueueEnvironment = {
    NIX_CACHE_QUEUE_DIR = queueDir;
  };

  drainEnvironment = {
    NIX_CACHE_QUEUE_DIR = queueDir;
    NIX_CACHE_UPLOAD_URL = uploadUrl;
    NIX_CACHE_SECRET_KEY_FILE = toString secretKeyFile;
    NIX_CACHE_ATTEMPTS = toString attempts;
    NIX_CACHE_RETRY_DELAY = toString initialDelay;
    NIX_CACHE_MAX_RETRY_DELAY = toString maxDelay;
    NIX_CACHE_BATCH_SIZE = toString batchSize;
    NIX_CACHE_SET_ASIDE_AFTER = toString setAsideAfter;
  } // (if credentialsFile == null then { } else {
    # Nix's S3 client reads the profile named in uploadUrl from this file.
    AWS_SHARED_CREDENTIALS_FILE = toString credentialsFile;
  });

  # The same settings as the stack output builderNixConf, with the hook given by the module. Not
  # secret-key-files: Nix would then read the key after every build and fail the build when it is
  # missing or unreadable. The drainer signs on upload instead. Nor narinfo-cache-positive-ttl = 0,
  # which would make the daemon fetch every narinfo again: the drainer passes it to its own nix copy.
  nixSettings = postBuildHook: {
    post-build-hook = postBuildHook;
  };
}
