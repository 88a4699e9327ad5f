# NixOS module for build machines that push every build to the cache. Nix runs post-build-hook
# synchronously and fails the build when the hook fails, so the hook only queues the built paths
# (scripts/enqueue); a systemd service (scripts/drain), started when the queue fills and by a
# timer, uploads them signed, with retries. Another timer queues the paths set aside in failed/ again.
{ config, lib, pkgs, ... }:
let
  cfg = config.services.nix-binary-cache.builder;
  inherit (lib) mkEnableOption mkIf mkOption optionalAttrs types;

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
in
{
  options.services.nix-binary-cache.builder = {
    enable = mkEnableOption "pushing every local build to the signed Nix binary cache deployed by the nix-cache Pulumi stack";

    uploadUrl = mkOption {
      type = types.str;
      example = "s3://nix-cache?endpoint=https://s3.example.org:9000&region=us-east-1&profile=nixbuilder&compression=zstd";
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
  };

  config = mkIf cfg.enable {
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
  };
}
