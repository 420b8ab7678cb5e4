"""Verifies an SD-JWT (optionally an SD-JWT+KB) with PyPI sd-jwt.

stdin: {"sd_jwt": str, "issuer_jwk": {...}, "aud": str | null, "nonce": str | null}
stdout: {"payload": {...}} (the processed claims)
"""

import json
import sys

from jwcrypto.jwk import JWK
from sd_jwt.verifier import SDJWTVerifier


def main() -> None:
    request = json.load(sys.stdin)
    issuer_key = JWK(**request["issuer_jwk"])
    verifier = SDJWTVerifier(
        request["sd_jwt"],
        lambda _iss, _header: issuer_key,
        request.get("aud"),
        request.get("nonce"),
    )
    json.dump({"payload": verifier.get_verified_payload()}, sys.stdout)


if __name__ == "__main__":
    main()
