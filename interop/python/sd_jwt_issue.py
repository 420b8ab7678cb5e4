"""Issues an SD-JWT with PyPI sd-jwt and, optionally, presents it with key binding.

stdin: {
  "claims": {...}, "sd": [path, ...], "issuer_jwk": {...}, "holder_jwk": {...} | null,
  "typ": str, "decoys": bool,
  "present": {"disclose": {...}, "aud": str, "nonce": str} | null
}
A path is a list of object keys and array indices; its claim is marked selectively
disclosable. "disclose" uses the sd-jwt holder's format (true / nested objects / lists).
stdout: {"issuance": str, "presentation": str | null}
"""

import json
import sys

from jwcrypto.jwk import JWK
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer


def mark(value, path):
    """Wraps the claim at path in SDObj (keys for objects, the value for array elements)."""
    if len(path) == 1:
        head = path[0]
        if isinstance(value, list):
            value[head] = SDObj(value[head])
        else:
            value[SDObj(head)] = value.pop(head)
        return
    head, rest = path[0], path[1:]
    if isinstance(value, list):
        mark(value[head], rest)
        return
    for key in list(value.keys()):
        if key == head or (isinstance(key, SDObj) and key.value == head):
            mark(value[key], rest)
            return
    raise KeyError(head)


def main() -> None:
    request = json.load(sys.stdin)
    claims = request["claims"]
    # Deepest paths first, so that wrapping a parent does not hide its children's keys.
    for path in sorted(request["sd"], key=len, reverse=True):
        mark(claims, path)
    issuer_key = JWK(**request["issuer_jwk"])
    holder_jwk = request.get("holder_jwk")
    holder_key = JWK(**holder_jwk) if holder_jwk else None
    issuer = SDJWTIssuer(
        claims,
        issuer_key,
        holder_key.public() if holder_key else None,
        add_decoy_claims=request.get("decoys", False),
        extra_header_parameters={"typ": request["typ"]},
    )
    result = {"issuance": issuer.sd_jwt_issuance, "presentation": None}
    present = request.get("present")
    if present:
        holder = SDJWTHolder(issuer.sd_jwt_issuance)
        holder.create_presentation(
            present["disclose"], present.get("nonce"), present.get("aud"), holder_key
        )
        result["presentation"] = holder.sd_jwt_presentation
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
