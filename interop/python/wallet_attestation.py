"""A wallet for EDK's attestation-based client authentication tests, on PyPI `jwcrypto`.

Generates a wallet-provider key and a wallet-instance key, and signs a client attestation
(`typ: oauth-client-attestation+jwt`, by the provider, `cnf.jwk` = the instance key) and
PoPs (`typ: oauth-client-attestation-pop+jwt`, by the instance key). Reads one JSON request
from stdin and prints one JSON answer:

  {"sub": "<client id>", "iat": <unix s>, "exp": <unix s>,
   "pops": [{"aud": "<AS issuer>", "iat": <unix s>, "challenge": "<optional>"}, ...]}
  -> {"provider_jwk": {public JWK}, "attestation": "<JWT>", "pops": ["<JWT>", ...]}
"""

import json
import sys
import uuid

from jwcrypto import jwk, jwt


def signed(key, typ, claims):
    header = {"alg": "ES256", "typ": typ, "kid": key.thumbprint()}
    token = jwt.JWT(header=header, claims=claims)
    token.make_signed_token(key)
    return token.serialize()


def answer(request):
    provider = jwk.JWK.generate(kty="EC", crv="P-256")
    instance = jwk.JWK.generate(kty="EC", crv="P-256")
    attestation = signed(
        provider,
        "oauth-client-attestation+jwt",
        {
            "iss": "https://wallet-provider.example",
            "sub": request["sub"],
            "iat": request["iat"],
            "exp": request["exp"],
            "cnf": {"jwk": instance.export_public(as_dict=True)},
        },
    )
    pops = []
    for pop in request["pops"]:
        claims = {"aud": pop["aud"], "jti": str(uuid.uuid4()), "iat": pop["iat"]}
        if "challenge" in pop:
            claims["challenge"] = pop["challenge"]
        pops.append(signed(instance, "oauth-client-attestation-pop+jwt", claims))
    provider_jwk = provider.export_public(as_dict=True)
    provider_jwk["kid"] = provider.thumbprint()
    return {"provider_jwk": provider_jwk, "attestation": attestation, "pops": pops}


if __name__ == "__main__":
    sys.stdout.write(json.dumps(answer(json.load(sys.stdin))))
