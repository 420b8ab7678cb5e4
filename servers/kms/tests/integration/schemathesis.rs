//! schemathesis (PyPI, pinned) fuzzes the live KMS server from its own OpenAPI document with
//! every check (server errors, response schema, status codes, content types, headers,
//! positive and negative data, authentication) and its stateful phase, on a tenant that
//! already has signing, decryption and certificate-bearing keys.

use serde_json::{Value, json};

use edk_core::jose::{Algorithm, SigningKey};
use edk_testkit::schemathesis;

use crate::support::{ALL_SCOPES, Backend, Harness, expect_json};

/// Examples per operation and phase.
const MAX_EXAMPLES: &str = "30";

/// What the checks expect beyond their defaults, and why.
const CONFIG: &str = r#"
# Every check (what `--checks all` selects, in the form that per-operation settings below can
# refine):
[checks]
enabled = true

# Schema-valid input the document cannot tell apart from a wrong one: an alias or kid that
# does not exist (404), an alias that exists (409), an algorithm the key or provider does not
# support, a malformed JWK, JWS, CSR or certificate, or an alias outside `service.purpose`
# (400, 422), an alias reserved for another service (403).
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "403", "404", "409", "422"]
"#;

/// Posts `body` to `path`, asserting a 2xx, and returns the answer.
async fn ok(h: &Harness, token: &str, path: &str, body: &Value) -> Value {
    let response = h.post(path, token, body).await;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert!((200..300).contains(&status), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

/// Seeds tenant A with keys and certificates and returns request body examples that succeed
/// on it (each one that changes nothing was sent once here to prove it).
async fn seed(h: &Harness, token: &str) -> Value {
    for (alias, usage, algorithm) in [
        ("issuer.ca-root", "sign", "ES256"),
        ("issuer.credential-signing", "sign", "ES256"),
        ("issuer.status-list-signing", "sign", "ES256"),
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
    ok(h, token, "/certificates/issue", &root).await;
    let leaf = json!({
        "ca_key": "issuer.ca-root",
        "subject_key": "issuer.credential-signing",
        "profile": { "kind": "leaf", "subject": "CN=Issuer", "validity_secs": 3600 },
    });
    ok(h, token, "/certificates/issue", &leaf).await;

    let query = json!({ "usage": "sign", "algorithm": "ES256" });
    ok(h, token, "/providers/query", &query).await;
    let raw = json!({ "key": "issuer.credential-signing", "message": "aGVsbG8" });
    let signed = ok(h, token, "/signatures/raw/create", &raw).await;
    let raw_verify = json!({
        "key": "issuer.credential-signing",
        "alg": signed["alg"],
        "message": "aGVsbG8",
        "signature": signed["signature"],
    });
    ok(h, token, "/signatures/raw/verify", &raw_verify).await;
    let jws = json!({ "key": "issuer.credential-signing", "payload": "eyJzdWIiOiJ4In0" });
    let compact = ok(h, token, "/signatures/jws/create", &jws).await;
    let jws_verify = json!({ "jws": compact["jws"] });
    ok(h, token, "/signatures/jws/verify", &jws_verify).await;
    let encrypt = json!({
        "key": "verifier.request-decryption",
        "alg": "ECDH-ES",
        "enc": "A256GCM",
        "plaintext": "aGVsbG8",
    });
    let jwe = ok(h, token, "/encryption/encrypt", &encrypt).await;
    let decrypt = json!({ "key": "verifier.request-decryption", "jwe": jwe["jwe"] });
    ok(h, token, "/encryption/decrypt", &decrypt).await;
    let csr = json!({ "key": "issuer.credential-signing", "subject": "CN=Issuer" });
    let request = ok(h, token, "/certificates/csr", &csr).await;
    let from_csr = json!({
        "ca_key": "issuer.ca-root",
        "csr": request["csr"],
        "profile": { "kind": "leaf", "validity_secs": 3600 },
    });
    ok(h, token, "/certificates/issue-from-csr", &from_csr).await;

    let private = SigningKey::generate(Algorithm::Es256).unwrap();
    let partner = SigningKey::generate(Algorithm::Es256).unwrap();
    json!({
        "POST /api/kms/v1/keys":
            { "alias": "issuer.example-signing", "usage": "sign", "algorithm": "ES256" },
        "POST /api/kms/v1/keys/import": {
            "alias": "issuer.imported-signing", "usage": "sign", "algorithm": "ES256",
            "private_jwk": private.to_jwk().unwrap(),
        },
        "POST /api/kms/v1/keys/register":
            { "alias": "verifier.partner", "public_jwk": partner.public_jwk() },
        "POST /api/kms/v1/providers/query": query,
        "POST /api/kms/v1/providers/query/best": query,
        "POST /api/kms/v1/signatures/raw/create": raw,
        "POST /api/kms/v1/signatures/raw/verify": raw_verify,
        "POST /api/kms/v1/signatures/jws/create": jws,
        "POST /api/kms/v1/signatures/jws/verify": jws_verify,
        "POST /api/kms/v1/encryption/encrypt": encrypt,
        "POST /api/kms/v1/encryption/decrypt": decrypt,
        "POST /api/kms/v1/certificates/csr": csr,
        "POST /api/kms/v1/certificates/issue": leaf,
        "POST /api/kms/v1/certificates/issue-from-csr": from_csr,
    })
}

/// No request gets a 5xx, every answer matches the document, and every operation was
/// reached past authentication.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors_or_schema_violations() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = h
        .token_for(h.tenant_a, &format!("{ALL_SCOPES} platform:kms:providers"))
        .await;
    let examples = seed(&h, &token).await;
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
