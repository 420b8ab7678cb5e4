#!/usr/bin/env bash
# Starts npm did-resolver + key-did-resolver behind a Node HTTP server
# (interop/node/did_resolver_server.mjs) and runs the did_server criterion bench with
# EDK_NODE_DID_RESOLVER_URL pointing at it, so the Node baseline and EDK's DID server are
# loaded the same way (reqwest, 16 keep-alive connections, GET /1.0/identifiers/<did:key>) in
# one run. Needs interop/node/node_modules (scripts/test --setup-only) and Node.js.
# Usage: benches/peers/did_resolver_node.sh [criterion args, e.g. --warm-up-time 1 --measurement-time 3]
set -euo pipefail
cd "$(dirname "$0")/../.."

[ -d interop/node/node_modules/key-did-resolver ] \
    || { echo "interop/node/node_modules is missing: run scripts/test --setup-only" >&2; exit 1; }

out=$(mktemp)
trap 'kill "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
(cd interop/node && exec node did_resolver_server.mjs) </dev/null >"$out" 2>/dev/null &
pid=$!
for _ in $(seq 1 50); do
    [ -s "$out" ] && break
    sleep 0.2
done
url=$(head -n 1 "$out" | sed -n 's/.*"url":"\([^"]*\)".*/\1/p')
[ -n "$url" ] || { echo "the Node resolver did not start" >&2; exit 1; }

echo "did-resolver $(node -p 'require("./interop/node/node_modules/did-resolver/package.json").version'), key-did-resolver $(node -p 'require("./interop/node/node_modules/key-did-resolver/package.json").version') (Node $(node --version)) at $url"
EDK_NODE_DID_RESOLVER_URL="$url" CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" \
    cargo bench -p edk-benches --bench did_server -- "$@"
