#!/usr/bin/env bash
# Starts npm oidc-provider (interop/node/oidc_provider.mjs) with client_credentials and JWT
# (ES256) access tokens, loads its token endpoint at 16 connections with token_load.sh and
# prints the figures. Run it next to EDK's AS on the same machine, in the same run.
# Needs interop/node/node_modules (scripts/test --setup-only) and Node.js.
# Usage: benches/peers/oidc_provider_token.sh   (env: CONNECTIONS, THREADS, DURATION)
set -euo pipefail
cd "$(dirname "$0")/../.."

[ -d interop/node/node_modules/oidc-provider ] \
    || { echo "interop/node/node_modules is missing: run scripts/test --setup-only" >&2; exit 1; }

out=$(mktemp)
trap 'kill "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
(cd interop/node && OIDC_CLIENTS='[{"client_id":"bench","client_secret":"bench-secret"}]' \
    exec node oidc_provider.mjs --mode client-credentials --ignore-stdin) </dev/null >"$out" 2>/dev/null &
pid=$!
for _ in $(seq 1 50); do
    [ -s "$out" ] && break
    sleep 0.2
done
issuer=$(head -n 1 "$out" | sed -n 's/.*"issuer":"\([^"]*\)".*/\1/p')
[ -n "$issuer" ] || { echo "oidc-provider did not start" >&2; exit 1; }

echo "oidc-provider $(node -p 'require("./interop/node/node_modules/oidc-provider/package.json").version') (Node $(node --version)), JWT access tokens, ES256:"
benches/peers/token_load.sh "$issuer/token" bench bench-secret "api:read"
