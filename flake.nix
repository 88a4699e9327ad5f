{
  description = "nix-cache: a signed Nix binary cache on MinIO, declared with Pulumi";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forEachSystem = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      nixosModules = {
        # Machines that substitute from the cache: services.nix-binary-cache.client.
        substituter = ./nixos/substituter.nix;
        # Machines that push their builds to the cache: services.nix-binary-cache.builder.
        builder = ./nixos/builder.nix;
      };

      # The garbage collector's command, bin/nix-cache-gc (built from package-lock.json with
      # importNpmLock); the builder module's collector runs the same package by default.
      packages = forEachSystem (pkgs: {
        nix-cache-gc = pkgs.callPackage ./nixos/lib/nix-cache-gc-package.nix { };
      });

      # `nix develop`: every tool the README and docs/ use. Node.js 22 meets package.json's engines
      # (require() of ES modules); pulumi-bin brings the Pulumi CLI and its Node.js language host.
      devShells = forEachSystem (pkgs: {
        default = pkgs.mkShell {
          packages = [ pkgs.nodejs_22 pkgs.pulumi-bin pkgs.minio-client ];
        };
      });
    };
}
