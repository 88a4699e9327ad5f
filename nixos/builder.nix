# NixOS module for build machines that push every build to the cache. Nix runs post-build-hook
# synchronously and fails the build when the hook fails, so the hook only queues the built paths
# (scripts/enqueue); a systemd service (scripts/drain), started when the queue fills and by a
# timer, uploads them signed, with retries. Another timer queues the paths set aside in failed/ again.
# `collector` runs the cache's garbage collector (nix-cache-gc) on a timer, on this machine or alone.
{ config, lib, pkgs, utils, ... }:
let
  cfg = config.services.nix-binary-cache.builder;
  collector = cfg.collector;
  inherit (lib) mkEnableOption mkIf mkMerge mkOption optionalAttrs types;

  settings = import ./lib/builder-settings.nix {
    inherit (cfg) uploadUrl secretKeyFile credentialsFile queueDir batchSize;
    inherit (cfg.retry) attempts initialDelay maxDelay setAsideAfter;
  };

  # writeShellApplication puts its own shebang, `set -euo pipefail` and PATH first, and shellchecks.
  # `environment` is exported before the script's text, so callers need not set it.
  script = name: file: environment: pkgs.writeShellApplication {
    inherit name;
    runtimeInputs = [ config.nix.package pkgs.coreutils pkgs.findutils pkgs.util-linux ];
    text = lib.concatStrings (lib.mapAttrsToList (name: value: "export ${name}=${lib.escapeShellArg value}\n") environment)
      + lib.removePrefix "#!/usr/bin/env bash\n" (builtins.readFile file);
  };
  # The post-build-hook (the daemon runs it with its own environment), and on PATH the command
  # that queues paths built before, both with the queue's location built in.
  enqueue = script "nix-cache-enqueue" ../scripts/enqueue settings.enqueueEnvironment;
  drain = script "nix-cache-drain" ../scripts/drain { };

  secretPath = types.either types.str types.path;

  # The drainer as a oneshot service; systemd gives it its environment (see `systemctl show`).
  drainService = description: arguments: {
    inherit description;
    wants = [ "network-online.target" ];
    after = [ "network-online.target" ];
    environment = settings.drainEnvironment;
    serviceConfig = {
      Type = "oneshot";
      ExecStart = "${drain}/bin/nix-cache-drain${arguments}";
      # Compressing NARs is background work: builds come first.
      Nice = 10;
      IOSchedulingClass = "idle";
    };
  };

  # The collector's settings come from the environment file (the stack output collectorEnv), which
  # systemd reads before it starts the service; `${NAME}` on a command line is that variable's value
  # as one argument. The extra arguments are escaped so that systemd expands nothing in them.
  collectorCommand = lib.concatStringsSep " " ([
    "${collector.package}/bin/nix-cache-gc"
    "--endpoint \${NIX_CACHE_GC_ENDPOINT}"
    "--bucket \${NIX_CACHE_GC_BUCKET}"
    "--region \${NIX_CACHE_GC_REGION}"
    "--keep-days \${NIX_CACHE_GC_KEEP_DAYS}"
    "--grace-hours \${NIX_CACHE_GC_GRACE_HOURS}"
  ] ++ lib.optional (collector.extraArgs != [ ]) (utils.escapeSystemdExecArgs collector.extraArgs));
in
{
  options.services.nix-binary-cache.builder = {
    enable = mkEnableOption "pushing every local build to the signed Nix binary cache deployed by the nix-cache Pulumi stack";

    uploadUrl = mkOption {
      type = types.str;
      example = "s3://nix-cache?endpoint=https://s3.example.org:9000&region=us-east-1&profile=nixbuilder&compression=zstd&compression-level=9";
      description = "Store URL to upload to: the stack output `uploadUrl` (`pulumi stack output uploadUrl`).";
    };

    secretKeyFile = mkOption {
      type = secretPath;
      example = "/run/secrets/nix-cache-secret-key";
      description = ''
        File holding the cache's Nix secret key (`pulumi stack output --show-secrets secretKey`),
        readable by root only. A string path outside the Nix store: never a Nix path literal,
        which would copy the key into the world-readable store.
      '';
    };

    credentialsFile = mkOption {
      type = types.nullOr secretPath;
      default = null;
      example = "/run/secrets/nix-cache-credentials";
      description = ''
        AWS-style credentials file with the writer's profile (named in `uploadUrl`), readable by
        root only, outside the Nix store:
        `[nixbuilder]` / `aws_access_key_id = ...` / `aws_secret_access_key = ...`
        (the stack outputs `writerAccessKey` and `writerSecretKey`).
      '';
    };

    queueDir = mkOption {
      type = types.str;
      default = "/var/lib/nix-cache-push";
      description = "Directory of the upload queue: one small file per built path waiting for upload.";
    };

    batchSize = mkOption {
      type = types.ints.positive;
      default = 100;
      description = "Paths uploaded by one `nix copy`; a batch leaves the queue once it is uploaded.";
    };

    retry = {
      attempts = mkOption {
        type = types.ints.positive;
        default = 8;
        description = ''
          Uploads tried per batch before the drainer tries the batch's paths one by one; also how
          many paths in a row may fail alone before the destination counts as down and the drainer
          gives up until its next start.
        '';
      };
      initialDelay = mkOption {
        type = types.ints.positive;
        default = 5;
        description = "Seconds before the first retry; doubled after every failed attempt.";
      };
      maxDelay = mkOption {
        type = types.ints.positive;
        default = 300;
        description = "Longest wait between two attempts, in seconds.";
      };
      interval = mkOption {
        type = types.str;
        default = "15min";
        description = ''
          How long after the drainer stopped the timer starts it again (systemd time span), so a
          queue left behind by an unreachable cache is retried without a new build.
        '';
      };
      setAsideAfter = mkOption {
        type = types.ints.positive;
        default = 3;
        description = ''
          In how many separate runs a path may fail to upload alone, while other paths upload,
          before the drainer moves it to `failed/` (until then it goes back to the queue, so a short
          outage sets nothing aside).
        '';
      };
      setAsideSchedule = mkOption {
        type = types.nullOr types.str;
        default = "daily";
        description = ''
          When the paths in `failed/` are queued again and uploaded (`nix-cache-drain --retry-failed`;
          a systemd calendar event), or null for never: then only by hand.
        '';
      };
    };

    collector = {
      # Independent of `enable` (pushing builds): one machine that collects is enough.
      enable = mkEnableOption "the cache's garbage collector, nix-cache-gc, as a service started by a timer";

      package = mkOption {
        type = types.package;
        default = pkgs.callPackage ./lib/nix-cache-gc-package.nix { };
        defaultText = lib.literalExpression "pkgs.callPackage ./lib/nix-cache-gc-package.nix { } # the flake's packages.<system>.nix-cache-gc";
        description = "The collector's package, with bin/nix-cache-gc.";
      };

      environmentFile = mkOption {
        type = secretPath;
        example = "/run/secrets/nix-cache-gc.env";
        description = ''
          The stack output collectorEnv (`pulumi stack output --show-secrets collectorEnv`): the
          collector's endpoint, bucket, region, keep-days and grace-hours, and its credentials
          (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY). A root-only file outside the Nix store, given
          as a string: systemd reads it before it starts the service as an unprivileged user.
        '';
      };

      schedule = mkOption {
        type = types.nullOr types.str;
        default = "weekly";
        description = ''
          When the collector runs (a systemd calendar event), or null for no timer: then only by
          hand, `systemctl start nix-cache-gc`.
        '';
      };

      randomizedDelay = mkOption {
        type = types.str;
        default = "1h";
        description = "Random delay added to each scheduled run (systemd time span), so machines started together do not all run at once.";
      };

      extraArgs = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "--root" "/nix/store/00000000000000000000000000000000-nixos-system-builder" "--json" ];
        description = "More arguments for nix-cache-gc, such as `--root STORE_PATH`, `--dry-run` or `--json`.";
      };
    };
  };

  config = mkMerge [ (mkIf cfg.enable {
    assertions = map (message: { assertion = false; inherit message; }) settings.problems;
    inherit (settings) warnings;

    nix.settings = settings.nixSettings "${enqueue}/bin/nix-cache-enqueue";

    environment.systemPackages = [ enqueue ];

    systemd.tmpfiles.rules = [ "d ${cfg.queueDir} 0700 root root -" ];

    systemd.services = {
      nix-cache-drain = drainService "Upload queued Nix builds to the binary cache" "";
    } // optionalAttrs (cfg.retry.setAsideSchedule != null) {
      nix-cache-retry-failed = drainService "Queue the Nix builds set aside in failed/ again, and upload them" " --retry-failed";
    };

    # Starts the drainer as soon as a build queued something (and again while entries remain).
    systemd.paths.nix-cache-drain = {
      wantedBy = [ "paths.target" ];
      pathConfig = {
        DirectoryNotEmpty = "${cfg.queueDir}/pending";
        MakeDirectory = true;
        DirectoryMode = "0700";
      };
    };

    systemd.timers = {
      nix-cache-drain = {
        wantedBy = [ "timers.target" ];
        timerConfig = {
          OnBootSec = "2min";
          OnUnitInactiveSec = cfg.retry.interval;
        };
      };
    } // optionalAttrs (cfg.retry.setAsideSchedule != null) {
      nix-cache-retry-failed = {
        wantedBy = [ "timers.target" ];
        timerConfig = {
          OnCalendar = cfg.retry.setAsideSchedule;
          # A run missed while the machine was off happens at the next boot.
          Persistent = true;
        };
      };
    };
  }) (mkIf collector.enable {
    assertions = map (message: { assertion = false; inherit message; })
      ((import ./lib/secret-files.nix { }).secretFileProblems "collector.environmentFile" collector.environmentFile);

    systemd.services.nix-cache-gc = {
      description = "Delete from the Nix binary cache what no rooted closure needs";
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      # The command keeps its disposable cache of parsed narinfos in $XDG_CACHE_HOME/nix-cache-gc,
      # which is the CacheDirectory below.
      environment.XDG_CACHE_HOME = "/var/cache";
      serviceConfig = {
        Type = "oneshot";
        ExecStart = collectorCommand;
        EnvironmentFile = collector.environmentFile;
        DynamicUser = true;
        CacheDirectory = "nix-cache-gc";
        # Background work, like the drainer's.
        Nice = 10;
        IOSchedulingClass = "idle";
        # It only talks to the S3 endpoint (and nscd for names). Not MemoryDenyWriteExecute: V8's JIT
        # writes code.
        CapabilityBoundingSet = "";
        LockPersonality = true;
        PrivateDevices = true;
        ProtectClock = true;
        ProtectControlGroups = true;
        ProtectHome = true;
        ProtectHostname = true;
        ProtectKernelLogs = true;
        ProtectKernelModules = true;
        ProtectKernelTunables = true;
        RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        SystemCallArchitectures = "native";
        UMask = "0077";
      };
    };

    systemd.timers = optionalAttrs (collector.schedule != null) {
      nix-cache-gc = {
        wantedBy = [ "timers.target" ];
        timerConfig = {
          OnCalendar = collector.schedule;
          RandomizedDelaySec = collector.randomizedDelay;
          # A run missed while the machine was off happens at the next boot.
          Persistent = true;
        };
      };
    };
  }) ];
}
