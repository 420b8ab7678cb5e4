"""JWE peer: decrypts tokens EDK produced and produces tokens for EDK, with jwcrypto.

Reads one JSON object on stdin:
  {"decrypt": TOKEN, "jwk": PRIVATE_JWK}             -> {"plaintext": STR, "header": OBJ}
  {"encrypt": STR, "jwk": PUBLIC_JWK, "alg": A, "enc": E} -> {"token": TOKEN}
"""

import json
import sys

from jwcrypto import jwe, jwk


def main() -> None:
    request = json.load(sys.stdin)
    key = jwk.JWK(**request["jwk"])
    if "decrypt" in request:
        token = jwe.JWE()
        token.deserialize(request["decrypt"], key=key)
        print(json.dumps({
            "plaintext": token.payload.decode(),
            "header": json.loads(token.objects["protected"]),
        }))
    else:
        header = {"alg": request["alg"], "enc": request["enc"]}
        if "kid" in request["jwk"]:
            header["kid"] = request["jwk"]["kid"]
        token = jwe.JWE(request["encrypt"].encode(), protected=json.dumps(header))
        token.add_recipient(key)
        print(json.dumps({"token": token.serialize(compact=True)}))


if __name__ == "__main__":
    main()
