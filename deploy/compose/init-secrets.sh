#!/usr/bin/env bash
# Writes the secrets compose.yaml mounts, under deploy/compose/secrets/ (never
# committed): the KMS's key encryption key `kek-k1` (32 random bytes, base64), one ES256
# private JWK per service that calls the KMS, the runtime services and the platform
# (`<service>-service.jwk`), and `kms-services.yaml`, the KMS's `grpc.auth.services` with the
# public half of each, `platform-services.yaml`, the platform's `grpc.services` (the runtime
# services that read its tenant directory) with the same public keys, and the KMS's trust list
# as a Helm values file for the chart (`values-trusted-services.yaml`: kms.trustedServices, which
# the chart's tenant directory trusts too). Existing files are
# kept; delete the directory to start over (keys sealed under the old KEK are then lost).
# Needs openssl and python3.
# Usage: deploy/compose/init-secrets.sh [DIR]   (DIR: where to write, default deploy/compose/secrets)
set -euo pipefail

umask 077
out=${1:-$(dirname "$0")/secrets}
mkdir -p "$out"
cd "$out"

if [ ! -s kek-k1 ]; then
    openssl rand -base64 32 >kek-k1
fi

for service in as did issuer verifier platform; do
    if [ ! -s "$service-service.jwk" ]; then
        openssl ecparam -name prime256v1 -genkey -noout |
            openssl ec -text -noout 2>/dev/null |
            python3 -c '
import base64, json, re, sys
text = sys.stdin.read()
def block(name):
    part = re.search(name + r":\s*((?:[0-9a-f]{2}:?\s*)+)", text).group(1)
    return bytes.fromhex(re.sub(r"[^0-9a-f]", "", part))
b64 = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
d = block("priv").rjust(33, b"\0")[-32:]
point = block("pub")
assert point[0] == 4 and len(point) == 65, "expected an uncompressed P-256 point"
print(json.dumps({"kty": "EC", "crv": "P-256", "alg": "ES256",
                  "x": b64(point[1:33]), "y": b64(point[33:]), "d": b64(d)}))
' >"$service-service.jwk"
    fi
done

python3 - <<'PY'
import json
services = []
for name in ("as", "did", "issuer", "verifier", "platform"):
    private = json.load(open(f"{name}-service.jwk"))
    public = {k: private[k] for k in ("kty", "crv", "alg", "x", "y")}
    services.append({"name": name, "jwks": {"keys": [public]}})
# The platform runs the operator authorization server and makes the tenants' as.* and did.*
# keys when it onboards them: the KMS lets it use those reserved aliases.
kms_services = [dict(s, acts_as=["as", "did"]) if s["name"] == "platform" else s for s in services]
with open("kms-services.yaml", "w") as out:
    out.write("# The services edk-kms trusts: written by init-secrets.sh.\n")
    out.write(json.dumps({"grpc": {"auth": {"services": kms_services}}}, indent=2) + "\n")
with open("platform-services.yaml", "w") as out:
    out.write("# The services edk-platform's tenant directory trusts: written by init-secrets.sh.\n")
    readers = [s for s in services if s["name"] != "platform"]
    out.write(json.dumps({"grpc": {"services": readers}}, indent=2) + "\n")
with open("values-trusted-services.yaml", "w") as out:
    out.write("# kms.trustedServices for deploy/helm/edk: written by init-secrets.sh.\n")
    trusted = {s["name"]: {"jwks": s["jwks"]} for s in services}
    out.write(json.dumps({"kms": {"trustedServices": trusted}}, indent=2) + "\n")
PY
# The servers run as uid 10001 and read these files through compose secrets.
chmod 0644 kek-k1 as-service.jwk did-service.jwk issuer-service.jwk verifier-service.jwk \
    platform-service.jwk kms-services.yaml platform-services.yaml values-trusted-services.yaml
echo "secrets written to $out"
