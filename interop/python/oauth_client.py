"""Drives EDK's authorization server with authlib as the OAuth 2 client.

Reads a JSON job on stdin, runs one flow and prints a JSON result on stdout. The job names
`flow`, `base` (the http URL the test server answers at, e.g. http://localhost:PORT/acme),
`issuer` (the AS issuer identifier) and the client's credentials.
"""

import json
import sys
from urllib.parse import parse_qs, urlparse

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.common.security import generate_token
from joserfc.jwk import ECKey


def error_of(exc):
    return getattr(exc, "error", None) or str(exc)


def client_credentials(job):
    method = job["method"]
    kwargs = {"client_id": job["client_id"], "token_endpoint_auth_method": method}
    if method == "private_key_jwt":
        kwargs["client_secret"] = ECKey.import_key(job["private_jwk"])
        session = OAuth2Session(**kwargs)
        # The assertion's audience is the public token endpoint, not the loopback URL.
        session.register_client_auth_method(PrivateKeyJWT(job["issuer"] + "/token", alg="ES256"))
    else:
        kwargs["client_secret"] = job["client_secret"]
        session = OAuth2Session(**kwargs)
    token = session.fetch_token(job["base"] + "/token", grant_type="client_credentials", scope=job.get("scope"))
    return {"token": dict(token)}


def authorize(job, session, extra=None):
    verifier = generate_token(48)
    url, state = session.create_authorization_url(
        job["base"] + "/authorize", code_verifier=verifier, **(extra or {})
    )
    response = requests.get(url, allow_redirects=False, timeout=10)
    if response.status_code != 303:
        return None, verifier, {"status": response.status_code, "body": response.json()}
    location = response.headers["location"]
    query = parse_qs(urlparse(location).query)
    return location, verifier, {"iss": query.get("iss", [None])[0], "state_ok": query.get("state", [None])[0] == state}


def authorization_code(job):
    session = OAuth2Session(
        job["client_id"],
        redirect_uri=job["redirect_uri"],
        scope=job.get("scope"),
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    location, verifier, seen = authorize(job, session)
    token = session.fetch_token(job["base"] + "/token", authorization_response=location, code_verifier=verifier)
    out = {"authorize": seen, "token": dict(token)}
    # Rotation: the new refresh token works, the old one is refused and revokes the family.
    old = token["refresh_token"]
    rotated = session.refresh_token(job["base"] + "/token", refresh_token=old)
    out["rotated"] = dict(rotated)
    try:
        session.refresh_token(job["base"] + "/token", refresh_token=old)
        out["reuse"] = "accepted"
    except Exception as exc:  # noqa: BLE001 - the error is the result
        out["reuse"] = error_of(exc)
    try:
        session.refresh_token(job["base"] + "/token", refresh_token=rotated["refresh_token"])
        out["after_reuse"] = "accepted"
    except Exception as exc:  # noqa: BLE001
        out["after_reuse"] = error_of(exc)
    return out


def par(job):
    verifier = generate_token(48)
    form = {
        "response_type": "code",
        "redirect_uri": job["redirect_uri"],
        "scope": job.get("scope", ""),
        "state": "par-state",
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    pushed = requests.post(job["base"] + "/par", data=form, auth=(job["client_id"], job["client_secret"]), timeout=10)
    body = pushed.json()
    out = {"par_status": pushed.status_code, "par": body}
    params = {"client_id": job["client_id"], "request_uri": body["request_uri"]}
    response = requests.get(job["base"] + "/authorize", params=params, allow_redirects=False, timeout=10)
    location = response.headers["location"]
    out["replay_status"] = requests.get(job["base"] + "/authorize", params=params, allow_redirects=False, timeout=10).status_code
    session = OAuth2Session(job["client_id"], job["client_secret"], redirect_uri=job["redirect_uri"], token_endpoint_auth_method="client_secret_basic")
    token = session.fetch_token(job["base"] + "/token", authorization_response=location, code_verifier=verifier, state="par-state")
    out["token"] = dict(token)
    return out


def introspect_and_revoke(job):
    session = OAuth2Session(job["client_id"], job["client_secret"], token_endpoint_auth_method="client_secret_basic")
    token = session.fetch_token(job["base"] + "/token", grant_type="client_credentials")
    out = {}
    out["active"] = session.introspect_token(job["base"] + "/introspect", token=token["access_token"]).json()
    out["revoke_status"] = session.revoke_token(job["base"] + "/revoke", token=token["access_token"]).status_code
    out["after"] = session.introspect_token(job["base"] + "/introspect", token=token["access_token"]).json()
    return out


def pre_authorized(job):
    # A public wallet client: identified by client_id, no client authentication.
    session = OAuth2Session(job["client_id"], token_endpoint_auth_method="none")
    params = {"pre-authorized_code": job["code"]}
    if job.get("tx_code"):
        params["tx_code"] = job["tx_code"]
    token = session.fetch_token(
        job["base"] + "/token",
        grant_type="urn:ietf:params:oauth:grant-type:pre-authorized_code",
        **params,
    )
    return {"token": dict(token)}


FLOWS = {
    "client_credentials": client_credentials,
    "authorization_code": authorization_code,
    "par": par,
    "introspect_and_revoke": introspect_and_revoke,
    "pre_authorized": pre_authorized,
}

if __name__ == "__main__":
    job = json.load(sys.stdin)
    print(json.dumps(FLOWS[job["flow"]](job)))
