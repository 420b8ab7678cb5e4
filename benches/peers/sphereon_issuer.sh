#!/usr/bin/env bash
# Installs the @sphereon/oid4vci-issuer-server 0.20 peer (benches/peers/sphereon_issuer, npm ci
# --ignore-scripts, when its node_modules is missing), then runs whole pre-authorized flows
# against it with 16 concurrent wallets: the same Rust wallets as EDK's figures
# (benches/benches/oid4vci_http.rs, target `sphereon`), which start sphereon_issuer/server.mjs.
# Prints one line: RESULT target=sphereon wallets=16 duration_s=… flows_per_sec=… p50_ms=…
# p99_ms=… flows=… failed=…
# Usage: benches/peers/sphereon_issuer.sh   (env: DURATION, seconds, default 10)
set -euo pipefail
cd "$(dirname "$0")/../.."

benches/peers/sphereon_issuer_install.sh
TARGETS=sphereon cargo bench -q -p edk-benches --bench oid4vci_http 2>/dev/null | grep -A5 '^RESULT'
