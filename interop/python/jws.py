"""JWS peer for EDK's interop tests, on PyPI `jwcrypto`.

Used where npm `jose` cannot help: jose 6 runs on WebCrypto, which has no secp256k1, so
ES256K is cross-checked here. Reads one JSON request from stdin and prints one JSON answer:

  {"verify": "<compact JWS>", "jwk": {...}}  -> {"payload": "<utf-8>", "protectedHeader": {...}}
  {"sign": "<utf-8 payload>", "alg": "ES256K", "typ": "JWT"}
                                              -> {"token": "<compact JWS>", "jwk": {public JWK}}
  {"thumbprint": {...jwk}}                    -> {"thumbprint": "<RFC 7638 SHA-256, base64url>"}
"""

import json
import sys

from jwcrypto import jwk, jws

CURVES = {"ES256": "P-256", "ES384": "P-384", "ES256K": "secp256k1"}


def answer(request):
    if "verify" in request:
        key = jwk.JWK(**request["jwk"])
        token = jws.JWS()
        token.deserialize(request["verify"])
        alg = request["jwk"].get("alg") or token.jose_header["alg"]
        token.verify(key, alg=alg)
        return {"payload": token.payload.decode("utf-8"), "protectedHeader": token.jose_header}
    if "sign" in request:
        alg = request["alg"]
        key = jwk.JWK.generate(kty="EC", crv=CURVES[alg])
        header = {"alg": alg}
        if "typ" in request:
            header["typ"] = request["typ"]
        token = jws.JWS(request["sign"].encode("utf-8"))
        token.add_signature(key, alg=alg, protected=json.dumps(header))
        return {"token": token.serialize(compact=True), "jwk": key.export_public(as_dict=True)}
    if "thumbprint" in request:
        return {"thumbprint": jwk.JWK(**request["thumbprint"]).thumbprint()}
    raise ValueError('expected one of "verify", "sign" or "thumbprint"')


if __name__ == "__main__":
    sys.stdout.write(json.dumps(answer(json.load(sys.stdin))))
