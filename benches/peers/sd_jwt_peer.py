"""Times SD-JWT issue and verify in PyPI sd-jwt on the payload of benches/benches/sd_jwt.rs.

Usage: python sd_jwt_peer.py [iterations]
Prints one JSON object: per-operation microseconds for issue, present (with KB-JWT) and
verify (with KB-JWT).
"""

import json
import sys
import time

from jwcrypto.jwk import JWK
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer
from sd_jwt.verifier import SDJWTVerifier

NOW = 1_700_000_000
SD = ["given_name", "family_name", "birthdate", "email", "phone_number", "address",
      "is_over_18", "is_over_21"]


def claims():
    plain = {
        "vct": "https://credentials.example/identity",
        "iss": "https://issuer.example",
        "iat": NOW,
        "exp": NOW + 86_400,
        "given_name": "Erika", "family_name": "Mustermann", "birthdate": "1963-08-12",
        "email": "erika@example.com", "phone_number": "+49-221-555-0101",
        "address": {"street_address": "Heidestraße 17", "locality": "Köln", "country": "DE"},
        "nationality": "DE", "is_over_18": True, "is_over_21": True, "is_over_65": False,
    }
    return {(SDObj(k) if k in SD else k): v for k, v in plain.items()}


def per_op(fn, iterations):
    fn()
    start = time.perf_counter()
    for _ in range(iterations):
        fn()
    return (time.perf_counter() - start) / iterations * 1e6


def main():
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    issuer_key = JWK.generate(kty="EC", crv="P-256")
    holder_key = JWK.generate(kty="EC", crv="P-256")
    header = {"typ": "dc+sd-jwt"}

    def issue():
        return SDJWTIssuer(claims(), issuer_key, holder_key.public(),
                           add_decoy_claims=True, extra_header_parameters=header)

    issuance = issue().sd_jwt_issuance
    disclose = {"given_name": True, "family_name": True, "birthdate": True, "address": True}

    def present():
        holder = SDJWTHolder(issuance)
        holder.create_presentation(disclose, "n-0S6_WzA2Mj", "https://verifier.example",
                                   holder_key)
        return holder.sd_jwt_presentation

    presentation = present()

    def verify():
        verifier = SDJWTVerifier(presentation, lambda _iss, _h: issuer_key.public(),
                                 "https://verifier.example", "n-0S6_WzA2Mj")
        return verifier.get_verified_payload()

    result = {
        "issue_us": per_op(issue, iterations),
        "present_us": per_op(present, iterations),
        "verify_us": per_op(verify, iterations),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
