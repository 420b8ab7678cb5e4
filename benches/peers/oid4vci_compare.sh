#!/usr/bin/env bash
# Whole OpenID4VCI pre-authorized flows per second over HTTP, in one run on this machine:
# EDK's issuer and AS on SQLite and on PostgreSQL, and @sphereon/oid4vci-issuer-server 0.20,
# each with 16 concurrent wallets (benches/benches/oid4vci_http.rs); prints a table.
# Needs Node.js 20 with npm, and PostgreSQL (EDK_TEST_DATABASE_URL, as for the tests).
# Usage: benches/peers/oid4vci_compare.sh   (env: DURATION, seconds per target, default 10)
set -euo pipefail
cd "$(dirname "$0")/../.."

benches/peers/sphereon_issuer_install.sh
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cargo bench -q -p edk-benches --bench oid4vci_http 2>/dev/null | tee "$out" >&2

awk '
/^RESULT/ && /flows_per_sec=/ {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    rows[++n] = sprintf("%-14s %7s %9s %10s %9s %9s %7s", f["target"], f["wallets"], \
        f["duration_s"] "s", f["flows_per_sec"], f["p50_ms"], f["p99_ms"], f["failed"])
    rate[f["target"]] = f["flows_per_sec"]
}
/^RESULT/ && /unavailable/ { rows[++n] = $0 }
END {
    printf "%-14s %7s %9s %10s %9s %9s %7s\n", "target", "wallets", "duration", "flows/s", \
        "p50 ms", "p99 ms", "failed"
    for (i = 1; i <= n; i++) print rows[i]
    if (rate["sphereon"] > 0) {
        for (t in rate) if (t != "sphereon")
            printf "%s / sphereon: %.1fx\n", t, rate[t] / rate["sphereon"]
    }
}' "$out"
