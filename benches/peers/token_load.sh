#!/usr/bin/env bash
# Loads an OAuth token endpoint with client_credentials requests (wrk, keep-alive) and prints
# one line: requests/s, p50/p99 latency and failed (non-200) answers. Used for EDK's AS and,
# by oidc_provider_token.sh, for npm oidc-provider, so both are measured the same way.
# Usage: benches/peers/token_load.sh TOKEN_URL CLIENT_ID CLIENT_SECRET [scope]
# Env:   CONNECTIONS (16), THREADS (2), DURATION (10s)
set -euo pipefail
cd "$(dirname "$0")"

[ "$#" -ge 3 ] || { sed -n 2,6p "$0" >&2; exit 2; }
url=$1 client_id=$2 client_secret=$3 scope=${4:-}

if ! command -v wrk >/dev/null 2>&1; then
    echo "installing wrk" >&2
    as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

body="grant_type=client_credentials"
[ -n "$scope" ] && body="$body&scope=$(printf %s "$scope" | sed 's/ /%20/g; s/:/%3A/g')"
basic=$(printf '%s:%s' "$client_id" "$client_secret" | base64 -w0)

# One request first: a wrong URL or credential fails here, not as a fast stream of 401s.
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Basic $basic" -d "$body" "$url")
[ "$status" = 200 ] || { echo "token request to $url answered $status" >&2; exit 1; }

TOKEN_BODY="$body" TOKEN_AUTHORIZATION="Basic $basic" \
    wrk -t "${THREADS:-2}" -c "${CONNECTIONS:-16}" -d "${DURATION:-10s}" -s token_request.lua "$url" \
    | grep '^RESULT' | sed 's/^RESULT //'
