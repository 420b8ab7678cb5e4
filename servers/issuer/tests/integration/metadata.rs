//! Signed Credential Issuer Metadata (OpenID4VCI 1.0 §12.2.3): the well-known document as a
//! JWT when the wallet's `Accept` header prefers `application/jwt`, verified by PyPI
//! `jwcrypto` with a key of the JWT VC Issuer Metadata; JSON otherwise.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::flow::on_both_backends;
use crate::support::{Deployment, header, http, workspace_root};

/// Verifies the compact JWS `token` with `jwk` through `interop/python/jws.py`: the payload
/// and the protected header, or `None` when jwcrypto refuses it.
async fn jwcrypto_verify(token: String, jwk: Value) -> Option<(Value, Value)> {
    tokio::task::spawn_blocking(move || {
        let python = workspace_root().join("target/interop/venv/bin/python");
        let mut child = Command::new(python)
            .arg("jws.py")
            .current_dir(workspace_root().join("interop/python"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let request = serde_json::json!({ "verify": token, "jwk": jwk });
        child
            .stdin
            .take()
            .unwrap()
            .write_all(request.to_string().as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        if !output.status.success() {
            return None;
        }
        let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
        let payload: Value = serde_json::from_str(answer["payload"].as_str().unwrap()).unwrap();
        Some((payload, answer["protectedHeader"].clone()))
    })
    .await
    .unwrap()
}

async fn the_metadata_is_signed_when_the_wallet_asks_for_a_jwt(deployment: Deployment) {
    let tenant = deployment.tenant("acme").await;
    deployment.configure(&tenant).await;
    let url = format!(
        "{}/.well-known/openid-credential-issuer/acme",
        tenant.issuer_origin
    );
    let get = |accept: &'static str| http().get(&url).header("accept", accept).send();

    let response = get("application/jwt").await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(header(&response, "content-type"), "application/jwt");
    assert_eq!(header(&response, "vary"), "accept");
    assert_eq!(header(&response, "cache-control"), "public, max-age=300");
    let jwt = response.text().await.unwrap();
    let issuer_jwks: Value = http()
        .get(format!(
            "{}/.well-known/jwt-vc-issuer/acme",
            tenant.issuer_origin
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = issuer_jwks["jwks"]["keys"].as_array().unwrap();
    let (payload, protected) = jwcrypto_verify(jwt.clone(), keys[0].clone())
        .await
        .expect("jwcrypto verifies the signed metadata");
    assert_eq!(protected["typ"], "openidvci-issuer-metadata+jwt");
    assert_eq!(protected["kid"], keys[0]["kid"]);
    assert_eq!(payload["sub"], tenant.credential_issuer.as_str());
    assert_eq!(
        payload["credential_issuer"],
        tenant.credential_issuer.as_str()
    );
    assert!(payload["exp"].as_i64().unwrap() > payload["iat"].as_i64().unwrap());
    assert_eq!(
        payload["credential_configurations_supported"]["identity"]["vct"],
        "https://credentials.example.com/identity"
    );
    // A changed signature does not verify.
    let mut forged = jwt.clone().into_bytes();
    let at = forged.len() - 10;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert!(jwcrypto_verify(forged, keys[0].clone()).await.is_none());

    // JSON by default, when JSON is preferred, and for */*.
    for accept in [
        "application/json",
        "application/jwt;q=0.5, application/json",
        "*/*",
    ] {
        let response = get(accept).await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{accept}");
        assert_eq!(
            header(&response, "content-type"),
            "application/json",
            "{accept}"
        );
        assert_eq!(header(&response, "vary"), "accept");
        let metadata: Value = response.json().await.unwrap();
        assert_eq!(
            metadata["credential_issuer"],
            tenant.credential_issuer.as_str()
        );
    }
    deployment.close().await;
}
on_both_backends!(the_metadata_is_signed_when_the_wallet_asks_for_a_jwt);
