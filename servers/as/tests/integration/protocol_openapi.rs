//! The hand-written OpenAPI document of the OAuth protocol endpoints
//! (`servers/as/oauth-protocol.openapi.json`): it names every endpoint the metadata advertises,
//! every documented operation is served, and schemathesis (PyPI, pinned) fuzzes the endpoints
//! from it with every check: no 5xx, and every error an RFC 6749 §5.2 JSON object.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use edk_testkit::schemathesis;

use crate::support::{Deployment, Tenant, http, workspace_root};

fn document() -> Value {
    serde_json::from_str(include_str!("../../oauth-protocol.openapi.json")).unwrap()
}

/// Registers a confidential client `svc` (client credentials, secret in the form) and a public
/// client `wallet` (code flow with PKCE), mints a pre-authorized code, and returns the
/// client secret and the code.
async fn seed(deployment: &Deployment, tenant: &Tenant) -> (String, String) {
    let token = deployment
        .admin_token(tenant.id, "oauth2:read oauth2:write")
        .await;
    let admin = deployment.first().http.url("/api/oauth2/v1");
    let mut secret = String::new();
    for client in [
        json!({"client_id": "svc", "token_endpoint_auth_method": "client_secret_post", "grant_types": ["client_credentials"], "scopes": ["read"]}),
        json!({"client_id": "wallet", "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"], "redirect_uris": ["https://wallet.example/cb"]}),
    ] {
        let response = http()
            .post(format!("{admin}/clients"))
            .bearer_auth(&token)
            .json(&client)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
        let created: Value = response.json().await.unwrap();
        if let Some(value) = created["client_secret"].as_str() {
            value.clone_into(&mut secret);
        }
    }
    let minted: Value = http()
        .post(format!("{admin}/pre-authorized-codes"))
        .bearer_auth(&token)
        .json(&json!({"subject": "holder"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = minted["pre-authorized_code"].as_str().unwrap().to_owned();
    (secret, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_document_matches_the_served_endpoints() {
    let doc = document();
    let deployment = Deployment::sqlite().await;
    let acme = deployment.tenant("acme").await;
    let paths: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();

    // Every endpoint the RFC 8414 metadata advertises is documented.
    let metadata: Value = http()
        .get(format!(
            "http://{}/.well-known/oauth-authorization-server/acme",
            acme.host
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let advertised: BTreeSet<String> = [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "pushed_authorization_request_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
    ]
    .iter()
    .map(|name| {
        let url = metadata[name].as_str().unwrap();
        url.strip_prefix(&acme.issuer)
            .unwrap_or_else(|| panic!("{name} {url} is not under {}", acme.issuer))
            .to_owned()
    })
    .collect();
    let undocumented: Vec<_> = advertised.difference(&paths).collect();
    assert!(
        undocumented.is_empty(),
        "advertised, not documented: {undocumented:?}"
    );

    // Every documented operation is served (neither 404 nor 405), and the documented paths
    // answer any other method with 405: the document holds what the dispatcher routes.
    for (path, item) in doc["paths"].as_object().unwrap() {
        let url = format!("{}{path}", acme.base);
        let methods: Vec<&String> = item.as_object().unwrap().keys().collect();
        for method in &methods {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = http()
                .request(method.clone(), &url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("")
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            assert!(
                status != 404 && status != 405,
                "{method} {path} is documented but answers {status}"
            );
        }
        for other in ["get", "post", "put", "delete", "patch"] {
            if methods.iter().any(|m| *m == other) {
                continue;
            }
            let method = reqwest::Method::from_bytes(other.to_uppercase().as_bytes()).unwrap();
            let response = http().request(method, &url).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 405, "{other} {path}");
            let allow: BTreeSet<String> = response.headers()["allow"]
                .to_str()
                .unwrap()
                .split(", ")
                .filter(|m| *m != "OPTIONS")
                .map(str::to_lowercase)
                .collect();
            let documented: BTreeSet<String> = methods.iter().map(|m| (*m).clone()).collect();
            assert_eq!(allow, documented, "Allow of {path}");
        }
    }
    let unknown = http()
        .post(format!("{}/device_authorization", acme.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        unknown.status().as_u16(),
        404,
        "an undocumented endpoint is not served"
    );
    deployment.close().await;
}

/// What the checks expect beyond their defaults, and why.
const CONFIG: &str = r#"
[checks]
enabled = true

# Schema-valid requests are mostly refused by the protocol itself: an unknown client or code,
# a missing PKCE challenge, a wrong secret (400 or 401 with an OAuth error body, which the
# response checks validate).
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "400", "401"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_in_the_protocol_endpoints() {
    let deployment = Deployment::sqlite().await;
    let acme = deployment.tenant("acme").await;
    let (secret, code) = seed(&deployment, &acme).await;
    let issued: Value = http()
        .post(format!("{}/token", acme.base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access_token = issued["access_token"].as_str().unwrap().to_owned();
    let examples = json!({
        "POST /token":
            { "grant_type": "client_credentials", "client_id": "svc", "client_secret": secret },
        "POST /introspect":
            { "token": access_token, "client_id": "svc", "client_secret": secret },
        "POST /revoke": { "token": "unknown", "client_id": "svc", "client_secret": secret },
        "POST /par": {
            "response_type": "code", "client_id": "wallet",
            "redirect_uri": "https://wallet.example/cb",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        },
    });
    let known = json!({
        "body client_id": ["svc", "wallet"],
        "body client_secret": [secret],
        "body pre-authorized_code": [code],
        "body redirect_uri": ["https://wallet.example/cb"],
        "body code_challenge_method": ["S256"],
        "body token": [access_token],
    });
    let doc: Vec<String> = edk_testkit::openapi::operations(&document())
        .iter()
        .map(edk_testkit::openapi::Operation::label)
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let schema = workspace_root().join("servers/as/oauth-protocol.openapi.json");
    let args: Vec<String> = [
        "--config-file",
        config.to_str().unwrap(),
        "run",
        schema.to_str().unwrap(),
        "--url",
        &acme.base,
        "--max-examples",
        "30",
        "--seed",
        "6749",
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
    let summary = run.summary(&doc);
    eprintln!("{summary}");
    assert!(run.success, "schemathesis failed:\n{}", run.output);
    let unreached: Vec<&String> = doc
        .iter()
        .filter(|op| run.answers.get(*op).is_none_or(|a| a.calls == 0))
        .collect();
    assert!(
        unreached.is_empty(),
        "never called: {unreached:?}\n{summary}"
    );
}
