#!/usr/bin/env bash
# Installs benches/peers/sphereon_issuer/node_modules from its package-lock.json, without
# running install scripts, unless it is already there. Needs Node.js 20 and npm.
set -euo pipefail
cd "$(dirname "$0")/sphereon_issuer"

if [ ! -d node_modules/@sphereon/oid4vci-issuer-server ]; then
    echo "installing the Sphereon issuer peer (npm ci --ignore-scripts)" >&2
    npm ci --ignore-scripts --no-audit --no-fund >&2
fi
