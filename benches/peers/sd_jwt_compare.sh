#!/usr/bin/env bash
# Times SD-JWT VC issue / present / verify in EDK (criterion) and in PyPI sd-jwt on the same
# payload, and prints EDK's speed-up per operation. Needs the interop venv (scripts/test).
# Usage: benches/peers/sd_jwt_compare.sh [python iterations]
set -euo pipefail
cd "$(dirname "$0")/../.."

python=target/interop/venv/bin/python
[ -x "$python" ] || { echo "missing $python: run scripts/test first" >&2; exit 1; }

cargo bench -q -p edk-benches --bench sd_jwt -- --warm-up-time 1 --measurement-time 3 >/dev/null 2>&1 \
    || { echo "cargo bench failed; run it directly to see why" >&2; exit 1; }

# criterion's estimate (nanoseconds) for one benchmark of the sd_jwt_vc/ES256 group.
edk_ns() {
    local dir
    dir=$(find target/criterion -path "*sd_jwt_vc_ES256/$1*/new/estimates.json" | head -n 1)
    "$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["mean"]["point_estimate"])' "$dir"
}

peer=$("$python" benches/peers/sd_jwt_peer.py "${1:-200}")
"$python" - "$peer" "$(edk_ns 'issue')" "$(edk_ns 'present')" "$(edk_ns 'verify with')" \
    "$(edk_ns 'raw sign')" "$(edk_ns 'raw verify')" <<'PY'
import json, sys
peer = json.loads(sys.argv[1])
issue, present, verify, sign, raw_verify = (float(x) / 1000 for x in sys.argv[2:7])
print(f"{'operation':<22}{'EDK µs':>10}{'sd-jwt µs':>12}{'speed-up':>10}")
for name, ours, theirs in [("issue", issue, peer["issue_us"]),
                           ("present (KB-JWT)", present, peer["present_us"]),
                           ("verify (KB-JWT)", verify, peer["verify_us"])]:
    print(f"{name:<22}{ours:>10.1f}{theirs:>12.1f}{theirs / ours:>9.1f}x")
print(f"raw ES256 sign {sign:.1f} µs, verify {raw_verify:.1f} µs; "
      f"issue/sign {issue / sign:.2f}, verify(KB)/verify {verify / raw_verify:.2f}")
PY
