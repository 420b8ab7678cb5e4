//! schemathesis (PyPI, pinned) fuzzes the admin API from its OpenAPI document with every
//! check (server errors, response schema, status codes, content types, headers, positive and
//! negative data, authentication) and its stateful phase, on a tenant that already has
//! clients and a pre-authorized code.

use serde_json::{Value, json};

use edk_testkit::schemathesis;

use crate::support::{Deployment, http};

/// Examples per operation and phase.
const MAX_EXAMPLES: &str = "30";

/// What the checks expect beyond their defaults, and why.
const CONFIG: &str = r#"
# Every check (what `--checks all` selects, in the form that per-operation settings below can
# refine):
[checks]
enabled = true

# Schema-valid registrations the document cannot tell apart from wrong ones: a grant type,
# authentication method or redirect URI the server does not accept, or a client_id outside
# its syntax (400); a client_id that exists (409); a client that does not (404).
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "404", "409"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_or_schema_violation_in_the_admin_api() {
    let deployment = Deployment::sqlite().await;
    let acme = deployment.tenant("acme").await;
    let token = deployment
        .admin_token(acme.id, "oauth2:read oauth2:write")
        .await;
    let base = deployment.first().http.url("/api/oauth2/v1");
    for client in [
        json!({"client_id": "wallet", "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"], "redirect_uris": ["https://wallet.example/cb"]}),
        json!({"client_id": "svc", "token_endpoint_auth_method": "client_secret_post", "grant_types": ["client_credentials"]}),
        json!({"client_id": "doomed", "token_endpoint_auth_method": "client_secret_basic", "grant_types": ["client_credentials"]}),
    ] {
        let response = http()
            .post(format!("{base}/clients"))
            .bearer_auth(&token)
            .json(&client)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
    }
    let minted = http()
        .post(format!("{base}/pre-authorized-codes"))
        .bearer_auth(&token)
        .json(&json!({"subject": "holder", "tx_code_digits": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(minted.status().as_u16(), 201);
    let upstream =
        json!({"issuer": "https://op.example", "client_id": "edk", "client_secret": "s3cret"});
    let stored = http()
        .put(format!("{base}/upstream-oidc"))
        .bearer_auth(&token)
        .json(&upstream)
        .send()
        .await
        .unwrap();
    assert_eq!(
        stored.status().as_u16(),
        200,
        "{}",
        stored.text().await.unwrap()
    );
    let examples = json!({
        "POST /api/oauth2/v1/clients": {"client_id": "example", "token_endpoint_auth_method": "client_secret_post", "grant_types": ["client_credentials"]},
        "POST /api/oauth2/v1/pre-authorized-codes": {"subject": "holder", "tx_code_digits": 6},
        "PUT /api/oauth2/v1/upstream-oidc": upstream,
    });

    let doc: Value = serde_json::from_str(include_str!("../../openapi.json")).unwrap();
    let secured: Vec<String> = edk_testkit::openapi::operations(&doc)
        .into_iter()
        .filter(|op| op.secured)
        .map(|op| op.label())
        .collect();
    let known = json!({
        "clientId": ["wallet", "svc"],
        "DELETE clientId": ["doomed"],
        "body token_endpoint_auth_method": ["none", "client_secret_post", "client_secret_basic", "private_key_jwt"],
        "body grant_types": [["authorization_code"], ["client_credentials"], ["authorization_code", "refresh_token"]],
        "body redirect_uris": [["https://wallet.example/cb"]],
        "body subject": ["holder"],
        "body tx_code_digits": [4, 6],
        "body ttl_secs": [300],
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let args: Vec<String> = [
        "--config-file",
        config.to_str().unwrap(),
        "run",
        &deployment.first().http.url("/openapi.json"),
        "--url",
        &deployment.first().http.url(""),
        "--header",
        &format!("Authorization: Bearer {token}"),
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        "1",
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
    deployment.close().await;
    let summary = run.summary(&secured);
    eprintln!("{summary}");
    assert!(run.success, "schemathesis failed:\n{}", run.output);
    let unreached = run.unauthenticated(&secured);
    assert!(
        unreached.is_empty(),
        "never past authentication: {unreached:?}\n{summary}"
    );
}
