//! schemathesis (PyPI, pinned) fuzzes the all-in-one server from its OpenAPI document (KMS,
//! authorization server admin and DID APIs in one process) with every check and its
//! stateful phase, on the default tenant seeded with keys, clients and DIDs.

use std::sync::Arc;

use serde_json::{Value, json};

use edk::bootstrap::DataDir;
use edk::{Edk, EdkConfig};
use edk_core::FixedClock;
use edk_server::spawn_server;
use edk_testkit::schemathesis;

/// Examples per operation and phase.
const MAX_EXAMPLES: &str = "30";

/// What the checks expect beyond their defaults, and why.
const CONFIG: &str = r#"
# Every check (what `--checks all` selects, in the form that per-operation settings below can
# refine):
[checks]
enabled = true

# DID Resolution prescribes 501 for METHOD_NOT_SUPPORTED and FEATURE_NOT_SUPPORTED.
[checks.not_a_server_error]
expected-statuses = ["2xx", "3xx", "4xx", "501"]

# Schema-valid input the document cannot tell apart from wrong input: a key, client or DID
# that does not exist (404) or already does (409), an algorithm, alias, JWK, certificate,
# grant type, redirect URI or DID path the server does not accept (400, 422), an alias
# reserved for another service (403), a DID method without that operation (422), a DID
# method the resolver does not know (501), a deactivated DID (410).
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "400", "403", "404", "409", "410", "422", "501"]
"#;

async fn post(client: &reqwest::Client, url: String, token: &str, body: &Value) -> Value {
    let response = client
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert!((200..300).contains(&status), "{status} {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_or_schema_violation() {
    edk_server::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::at_unix(1_700_000_000));
    let data = DataDir::open(&dir.path().join("data")).unwrap();
    let client = reqwest::Client::builder().build().unwrap();
    let edk = Edk::start(&EdkConfig::default(), &data, clock, &client)
        .await
        .unwrap();
    let token = edk.bootstrap_token().unwrap().to_owned();
    let server = spawn_server(edk.app()).await.unwrap();
    let port = server.addr().port();
    edk.bind_default_tenant(port).await.unwrap();

    for (alias, usage, algorithm) in [
        ("issuer.credential-signing", "sign", "ES256"),
        ("verifier.request-decryption", "decrypt", "ECDH-ES"),
    ] {
        let body = json!({ "alias": alias, "usage": usage, "algorithm": algorithm });
        post(&client, server.url("/api/kms/v1/keys"), &token, &body).await;
    }
    for body in [
        json!({"client_id": "wallet", "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"], "redirect_uris": ["https://wallet.example/cb"]}),
        json!({"client_id": "svc", "token_endpoint_auth_method": "client_secret_post", "grant_types": ["client_credentials"]}),
    ] {
        post(&client, server.url("/api/oauth2/v1/clients"), &token, &body).await;
    }
    let mut dids = Vec::new();
    for method in ["web", "webvh"] {
        let body = json!({ "method": method, "path": format!("issuer-{method}") });
        let created = post(
            &client,
            server.url("/api/did/v1/identifiers"),
            &token,
            &body,
        )
        .await;
        dids.push(created["did"].as_str().unwrap().to_owned());
    }

    let examples = json!({
        "POST /api/kms/v1/keys":
            { "alias": "issuer.example-signing", "usage": "sign", "algorithm": "ES256" },
        "POST /api/kms/v1/signatures/raw/create":
            { "key": "issuer.credential-signing", "message": "aGVsbG8" },
        "POST /api/kms/v1/signatures/jws/create":
            { "key": "issuer.credential-signing", "payload": "eyJzdWIiOiJ4In0" },
        "POST /api/kms/v1/encryption/encrypt": {
            "key": "verifier.request-decryption", "alg": "ECDH-ES", "enc": "A256GCM",
            "plaintext": "aGVsbG8",
        },
        "POST /api/oauth2/v1/clients": {
            "client_id": "example", "token_endpoint_auth_method": "client_secret_post",
            "grant_types": ["client_credentials"],
        },
        "POST /api/oauth2/v1/pre-authorized-codes": { "subject": "holder", "tx_code_digits": 6 },
        "POST /api/did/v1/identifiers": { "method": "web", "path": "example" },
    });
    let doc: Value = serde_json::from_str(include_str!("../../openapi.json")).unwrap();
    let secured: Vec<String> = edk_testkit::openapi::operations(&doc)
        .into_iter()
        .filter(|op| op.secured)
        .map(|op| op.label())
        .collect();
    let known = json!({
        "alias": ["issuer.credential-signing", "verifier.request-decryption"],
        "aliasOrKid": ["issuer.credential-signing", "verifier.request-decryption"],
        "providerId": ["software"],
        "id": ["did", "kid", "jwk", "x5c"],
        "clientId": ["wallet", "svc"],
        "did": dids,
        "DELETE aliasOrKid": ["issuer.unused"],
        "DELETE clientId": ["nobody"],
        "body key": ["issuer.credential-signing", "verifier.request-decryption"],
        "body algorithm": ["ES256", "EdDSA", "ECDH-ES"],
        "body alg": ["ES256", "ECDH-ES"],
        "body enc": ["A256GCM"],
        "body message": ["aGVsbG8"],
        "body payload": ["eyJzdWIiOiJ4In0"],
        "body method": ["web", "webvh", "jwk", "key"],
        "body did": dids,
        "body token_endpoint_auth_method": ["none", "client_secret_post"],
        "body grant_types": [["authorization_code"], ["client_credentials"]],
        "body redirect_uris": [["https://wallet.example/cb"]],
        "body subject": ["holder"],
    });
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("schemathesis.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let args: Vec<String> = [
        "--config-file",
        config.to_str().unwrap(),
        "run",
        &server.url("/openapi.json"),
        "--url",
        &server.url(""),
        "--header",
        &format!("Authorization: Bearer {token}"),
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        "20261123",
        // One worker: Hypothesis describes strategies with `ast.parse`, which CPython 3.11 does not
        // survive from two threads at once (SystemError: AST constructor recursion depth mismatch).
        "--workers",
        "1",
        "--request-timeout",
        "10",
    ]
    .map(str::to_owned)
    .to_vec();
    let run = tokio::task::spawn_blocking(move || schemathesis::run(&args, &known, &examples))
        .await
        .unwrap();
    server.shutdown().await.unwrap();
    edk.shutdown().await;
    let summary = run.summary(&secured);
    eprintln!("{summary}");
    assert!(run.success, "schemathesis failed:\n{}", run.output);
    let unreached = run.unauthenticated(&secured);
    assert!(
        unreached.is_empty(),
        "never past authentication: {unreached:?}\n{summary}"
    );
}
