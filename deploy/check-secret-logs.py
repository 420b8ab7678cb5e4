"""Secrets never appear in logs: runs EDK's flows with debug logging and scans the output.

Starts the all-in-one `edk` (target/<profile>/edk) on a fresh data directory with
`log.filter: debug` and JSON logs, then drives it as an operator and a wallet would: an OAuth
client registered and its secret rotated, client credentials and introspection, a private key
imported into the KMS and used to sign, a did:webvh created, a credential configuration
stored, an offer with a transaction code redeemed at the token endpoint, a nonce, an SD-JWT VC
issued against a key proof, and that credential presented to the verifier (a request made
through its admin API, answered by direct_post with a Key Binding JWT), then the platform's
first-run setup with its setup token and a token for the first operator from the operator
authorization server, used on the platform API. Each step must answer as documented. Then
nothing secret may appear in the server's output: the KEK, the bootstrap admin key and token,
the client secrets, the access tokens, the imported private key, the pre-authorized code, the
wallet's private key, the credential, the key binding JWT, the setup token, or the operator's
client secret and access token.

Needs jwcrypto (the interop virtualenv has it) for the wallet's key proof.
Usage: python deploy/check-secret-logs.py [profile]     (profile: debug, the default, or release)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from jwcrypto import jwk, jws

REPO = Path(__file__).resolve().parent.parent
GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"

passed = 0
failures: list[str] = []


def check(name: str, condition: bool, detail: str = "") -> None:
    global passed
    if condition:
        passed += 1
    else:
        failures.append(f"{name}: {detail}" if detail else name)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def call(method: str, url: str, *, token: str | None = None, body: dict | None = None,
         form: dict | None = None, basic: tuple[str, str] | None = None) -> tuple[int, dict]:
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["content-type"] = "application/x-www-form-urlencoded"
    if token:
        headers["authorization"] = f"Bearer {token}"
    if basic:
        headers["authorization"] = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            status, text = answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        status, text = err.code, err.read().decode()
    try:
        return status, json.loads(text) if text else {}
    except json.JSONDecodeError:
        return status, {"text": text}


def main() -> int:
    profile = sys.argv[1] if len(sys.argv) > 1 else "debug"
    binary = REPO / "target" / profile / "edk"
    if not binary.is_file():
        print(f"secret logs: target/{profile}/edk not built: skipped")
        return 0
    with tempfile.TemporaryDirectory(prefix="edk-logs-") as tmp:
        data = Path(tmp) / "data"
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDK_")}
        env.update({"EDK_LOG__FILTER": "debug", "EDK_LOG__JSON": "true"})
        log_path = Path(tmp) / "edk.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen([str(binary), "--listen", f"127.0.0.1:{port}", "--data-dir", str(data)],
                                       env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            secrets = run_flows(port, data)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        logs = log_path.read_text()
        check("the server logged at debug level", '"level":"DEBUG"' in logs)
        for name, value in secrets.items():
            check(f"{name} is not in the logs", bool(value) and value not in logs,
                  "empty" if not value else "found in the logs")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    print(f"secret logs: {passed} passed, {len(failures)} failed")
    return 1 if failures else 0


def run_flows(port: int, data: Path) -> dict[str, str]:
    admin = f"http://127.0.0.1:{port}"
    local = f"http://localhost:{port}"
    deadline = time.monotonic() + 120
    status = 0
    while time.monotonic() < deadline:
        try:
            status, _ = call("GET", f"{admin}/health/ready")
        except OSError:
            status = 0
        if status == 200 and (data / "bootstrap-token").is_file():
            break
        time.sleep(0.5)
    check("edk is ready", status == 200, str(status))
    token = (data / "bootstrap-token").read_text().strip()
    secrets = {
        "the KEK": (data / "kek").read_text().strip(),
        "the bootstrap admin key": json.loads((data / "admin-key.jwk").read_text())["d"],
        "the bootstrap admin token": token,
        "the bootstrap admin token's signature": token.rsplit(".", 1)[-1],
    }

    status, client = call("POST", f"{admin}/api/oauth2/v1/clients", token=token, body={
        "client_id": "backend", "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["client_credentials"], "scopes": ["api:read"]})
    check("a client is registered", status == 201, f"{status} {client}")
    secret = client.get("client_secret", "")
    secrets["the client secret"] = secret
    status, issued = call("POST", f"{local}/token", form={"grant_type": "client_credentials", "scope": "api:read"},
                          basic=("backend", secret))
    check("client credentials give an access token", status == 200 and issued.get("token_type") == "Bearer", f"{status} {issued}")
    access = issued.get("access_token", "")
    secrets["the client's access token"] = access
    secrets["the client's access token's signature"] = access.rsplit(".", 1)[-1]
    status, introspected = call("POST", f"{local}/introspect", form={"token": access}, basic=("backend", secret))
    check("introspection says active", status == 200 and introspected.get("active") is True, f"{status} {introspected}")
    status, rotated = call("POST", f"{admin}/api/oauth2/v1/clients/backend/secret", token=token)
    check("the client secret is rotated", status == 200 and rotated.get("client_secret") not in (None, secret), f"{status}")
    secrets["the rotated client secret"] = rotated.get("client_secret", "")

    key = jwk.JWK.generate(kty="EC", crv="P-256")
    private = json.loads(key.export_private())
    secrets["the imported private key"] = private["d"]
    status, imported = call("POST", f"{admin}/api/kms/v1/keys/import", token=token, body={
        "alias": "check.imported", "usage": "sign", "algorithm": "ES256", "private_jwk": private})
    check("a private key is imported", status == 201, f"{status} {imported}")
    status, signed = call("POST", f"{admin}/api/kms/v1/signatures/jws/create", token=token, body={
        "key": "check.imported", "payload": b64url(b"hello")})
    check("the imported key signs", status == 200, f"{status} {signed}")
    status, did = call("POST", f"{admin}/api/did/v1/identifiers", token=token, body={"method": "webvh", "path": "issuer"})
    check("a did:webvh is created", status == 201 and str(did.get("did", "")).startswith("did:webvh:"), f"{status} {did}")

    status, stored = call("PUT", f"{admin}/api/oid4vci/v1/configurations/identity", token=token, body={"configuration": {
        "format": "dc+sd-jwt", "vct": "https://credentials.example.com/identity",
        "cryptographic_binding_methods_supported": ["jwk"],
        "proof_types_supported": {"jwt": {"proof_signing_alg_values_supported": ["ES256"]}}}})
    check("a credential configuration is stored", status == 200, f"{status} {stored}")
    status, offer = call("POST", f"{admin}/api/oid4vci/v1/offers", token=token, body={
        "credential_configuration_ids": ["identity"], "claims": {"identity": {"given_name": "Erika"}},
        "tx_code": {"digits": 6}})
    check("an offer with a transaction code is made", status in (200, 201), f"{status} {offer}")
    code = offer.get("credential_offer", {}).get("grants", {}).get(GRANT, {}).get("pre-authorized_code", "")
    secrets["the pre-authorized code"] = code
    status, redeemed = call("POST", f"{local}/token", form={
        "grant_type": GRANT, "pre-authorized_code": code, "tx_code": str(offer.get("tx_code", ""))})
    check("the pre-authorized code is redeemed with its transaction code", status == 200, f"{status} {redeemed}")
    wallet_token = redeemed.get("access_token", "")
    secrets["the wallet's access token"] = wallet_token
    status, nonce = call("POST", f"{local}/nonce")
    check("a nonce is issued", status == 200 and "c_nonce" in nonce, f"{status} {nonce}")

    holder = jwk.JWK.generate(kty="EC", crv="P-256")
    secrets["the wallet's private key"] = json.loads(holder.export_private())["d"]
    proof = jws.JWS(json.dumps({"aud": local, "iat": int(time.time()), "nonce": nonce.get("c_nonce")}).encode())
    proof.add_signature(holder, alg="ES256", protected=json.dumps(
        {"alg": "ES256", "typ": "openid4vci-proof+jwt", "jwk": json.loads(holder.export_public())}))
    identifier = (redeemed.get("authorization_details") or [{}])[0].get("credential_identifiers", [None])[0]
    request = urllib.request.Request(f"{local}/credential", method="POST", headers={
        "authorization": f"Bearer {wallet_token}", "content-type": "application/json"},
        data=json.dumps({"credential_identifier": identifier,
                         "proofs": {"jwt": [proof.serialize(compact=True)]}}).encode())
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            status, body = answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        status, body = err.code, {"error": err.read().decode()}
    credential = (body.get("credentials") or [{}])[0].get("credential", "")
    check("an SD-JWT VC is issued", status == 200 and credential.count("~") >= 1, f"{status} {body}")
    secrets["the issued credential"] = credential

    # The verifier: a request passed by value (redirect_uri), answered by direct_post with the
    # issued credential and a Key Binding JWT to the request's client_id and nonce. The local
    # issuer's key is no trust anchor of the verifier, so the answer may be refused (in the
    # protocol's format); either way nothing presented may be logged.
    status, made = call("POST", f"{admin}/api/oid4vp/v1/requests", token=token, body={
        "dcql_query": {"credentials": [{
            "id": "identity", "format": "dc+sd-jwt",
            "meta": {"vct_values": ["https://credentials.example.com/identity"]},
            "claims": [{"path": ["given_name"]}]}]},
        "client_id_prefix": "redirect_uri", "correlation_id": "check-secret-logs"})
    check("a presentation request is made", status == 201, f"{status} {made}")
    query = urllib.parse.urlsplit(made.get("authorization_request_uri", "")).query
    params = dict(urllib.parse.parse_qsl(query))
    sd_hash = b64url(hashlib.sha256(credential.encode()).digest())
    kb = jws.JWS(json.dumps({"aud": params.get("client_id"), "nonce": params.get("nonce"),
                             "iat": int(time.time()), "sd_hash": sd_hash}).encode())
    kb.add_signature(holder, alg="ES256", protected=json.dumps({"alg": "ES256", "typ": "kb+jwt"}))
    key_binding = kb.serialize(compact=True)
    secrets["the presentation's key binding JWT"] = key_binding
    status, answered = call("POST", params.get("response_uri", f"{local}/response"), form={
        "vp_token": json.dumps({"identity": [credential + key_binding]}), "state": params.get("state", "")})
    check("the verifier answers the presentation in the protocol's format",
          status == 200 or (status == 400 and answered.get("error") == "invalid_request"), f"{status} {answered}")
    status, session = call("GET", f"{admin}/api/oid4vp/v1/sessions?correlation_id=check-secret-logs", token=token)
    check("the presentation session is settled", status == 200 and session.get("status") in ("verified", "failed"),
          f"{status} {session}")

    # The platform's first-run setup, and the first operator's token from the operator
    # authorization server.
    setup_token = (data / "platform-setup-token").read_text().strip()
    secrets["the platform setup token"] = setup_token
    status, operator = call("POST", f"{admin}/api/platform/v1/setup",
                            body={"setup_token": setup_token, "client_name": "check-secret-logs"})
    check("first-run setup creates the first operator", status == 201 and "client_secret" in operator,
          f"{status} {operator}")
    secrets["the operator's client secret"] = operator.get("client_secret", "")
    status, granted = call("POST", f"{local}/operators/token",
                           basic=(operator.get("client_id", ""), operator.get("client_secret", "")),
                           form={"grant_type": "client_credentials", "scope": "platform:tenants:read"})
    operator_token = granted.get("access_token", "")
    check("the operator authorization server issues a token", status == 200 and bool(operator_token),
          f"{status} {granted}")
    secrets["the operator's access token"] = operator_token
    status, tenants = call("GET", f"{admin}/api/platform/v1/tenants", token=operator_token)
    check("the operator's token lists the tenants", status == 200, f"{status} {tenants}")
    return secrets


if __name__ == "__main__":
    sys.exit(main())
