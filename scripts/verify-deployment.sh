#!/usr/bin/env bash
# The post-deploy check (components/deploymentCheck.ts runs this text with `bash -c` on the
# deployer's machine): anonymous readers must get exactly the nix-cache-info the stack rendered,
# and anonymous uploads must be refused. Any other outcome fails the deployment.
#
# Environment:
#   NIX_CACHE_URL             the substituter URL, <publicUrl>/<bucket>
#   NIX_CACHE_INFO            the nix-cache-info text the stack rendered
#   NIX_CACHE_CA_CERTIFICATE  optional PEM of a private CA that signed the server's certificate
set -euo pipefail

: "${NIX_CACHE_URL:?NIX_CACHE_URL must be the substituter URL}"
: "${NIX_CACHE_INFO:?NIX_CACHE_INFO must be the rendered nix-cache-info}"

# Not a Nix store path, narinfo, nar/, log/ or realisations/ key, so it never shadows cache content.
probe_key="nix-cache-deployment-check-probe"
unreachable_hint="if the deployer cannot reach the public URL, turn this check off: pulumi config set nix-cache:verifyDeployment false"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() {
  echo "nix-cache deployment check failed: $*" >&2
  exit 1
}

command -v curl >/dev/null || fail "curl is not installed on the deployer's machine (or set nix-cache:verifyDeployment false)"

# -q (first argument) ignores ~/.curlrc, so no configured credentials or options make the requests non-anonymous.
curl_args=(-q --silent --show-error --max-time 30 --proto "=http,https")
if [ -n "${NIX_CACHE_CA_CERTIFICATE:-}" ]; then
  printf '%s' "$NIX_CACHE_CA_CERTIFICATE" >"$work/ca.pem"
  curl_args+=(--cacert "$work/ca.pem")
fi

info_url="$NIX_CACHE_URL/nix-cache-info"
status=$(curl "${curl_args[@]}" --output "$work/served" --write-out '%{http_code}' "$info_url") ||
  fail "could not fetch $info_url ($unreachable_hint)"
if [ "$status" != 200 ]; then
  fail "anonymous GET $info_url answered HTTP $status, expected 200: nix-cache-info is missing or not anonymously readable, and Nix clients refuse a cache without it"
fi
printf '%s' "$NIX_CACHE_INFO" >"$work/expected"
if ! cmp -s "$work/expected" "$work/served"; then
  fail "$info_url does not match what the stack rendered (re-create it: pulumi up --replace on the nix-cache-info S3Object)
--- expected
$(cat "$work/expected")
--- served
$(head -c 2000 "$work/served")"
fi

probe_url="$NIX_CACHE_URL/$probe_key"
status=$(curl "${curl_args[@]}" --output /dev/null --write-out '%{http_code}' --upload-file "$work/expected" "$probe_url") ||
  fail "could not send an anonymous PUT to $probe_url ($unreachable_hint)"
if [ "$status" != 403 ]; then
  fail "anonymous PUT $probe_url answered HTTP $status, expected 403 (refused): anyone may be able to write to the cache; check the bucket policy, and delete $probe_key if it was stored"
fi

echo "nix-cache deployment check passed: $info_url matches the stack, anonymous upload refused"
