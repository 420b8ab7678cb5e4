use serde_json::{Value, json};

use crate::support::{ALL_SCOPES, Backend, Harness, expect_json, expect_problem};

fn pem(x5c: &Value) -> String {
    x5c.as_array()
        .unwrap()
        .iter()
        .map(|der| {
            let body = der.as_str().unwrap();
            let lines: Vec<&str> = body
                .as_bytes()
                .chunks(64)
                .map(|chunk| std::str::from_utf8(chunk).unwrap())
                .collect();
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                lines.join("\n")
            )
        })
        .collect()
}

async fn certificates_over_http(backend: Backend) {
    let h = Harness::start(backend).await;
    let token = h.token().await;
    for alias in ["issuer.ca-root", "issuer.credential-signing"] {
        expect_json(
            h.post(
                "/keys",
                &token,
                &json!({ "alias": alias, "usage": "sign", "algorithm": "ES256" }),
            )
            .await,
            201,
        )
        .await;
    }
    let root = expect_json(
        h.post(
            "/certificates/issue",
            &token,
            &json!({
                "ca_key": "issuer.ca-root",
                "subject_key": "issuer.ca-root",
                "profile": { "kind": "ca", "path_len": 0, "subject": "CN=Root,O=Tenant A", "validity_secs": 86400 },
            }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(root["alias"], "issuer.ca-root");
    let leaf = expect_json(
        h.post(
            "/certificates/issue",
            &token,
            &json!({
                "ca_key": "issuer.ca-root",
                "subject_key": "issuer.credential-signing",
                "profile": {
                    "kind": "leaf",
                    "subject": "CN=Issuer,O=Tenant A",
                    "validity_secs": 3600,
                    "sans": [{ "type": "dns", "value": "issuer.example.test" }],
                },
            }),
        )
        .await,
        200,
    )
    .await;
    assert!(leaf["issuer"].as_str().unwrap().contains("Root"));
    let listed = expect_json(h.get("/certificates", &token).await, 200).await;
    assert_eq!(listed["certificates"].as_array().unwrap().len(), 2);
    expect_json(
        h.get("/certificates/issuer.credential-signing", &token)
            .await,
        200,
    )
    .await;

    let csr = expect_json(
        h.post(
            "/certificates/csr",
            &token,
            &json!({ "key": "issuer.credential-signing", "subject": "CN=From CSR" }),
        )
        .await,
        200,
    )
    .await;
    assert!(csr["csr"].as_str().unwrap().contains("CERTIFICATE REQUEST"));
    let from_csr = expect_json(
        h.post(
            "/certificates/issue-from-csr",
            &token,
            &json!({ "ca_key": "issuer.ca-root", "csr": csr["csr"], "profile": { "kind": "leaf", "validity_secs": 60 } }),
        )
        .await,
        200,
    )
    .await;
    assert!(from_csr["subject"].as_str().unwrap().contains("From CSR"));

    let chain = expect_json(
        h.post(
            "/certificate-chains/roots",
            &token,
            &json!({ "chain_pem": pem(&root["x5c"]), "trust_anchor": true }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(chain["trust_anchor"], true);
    let chains = expect_json(h.get("/certificate-chains", &token).await, 200).await;
    assert_eq!(chains["chains"].as_array().unwrap().len(), 1);

    // Re-registering the issued chain under its alias works; garbage PEM is a 400.
    expect_json(
        h.post(
            "/certificates/issuer.credential-signing",
            &token,
            &json!({ "chain_pem": pem(&leaf["x5c"]) }),
        )
        .await,
        200,
    )
    .await;
    expect_problem(
        h.post(
            "/certificates/register",
            &token,
            &json!({ "alias": "issuer.credential-signing", "chain_pem": "not pem" }),
        )
        .await,
        400,
    )
    .await;

    // Another tenant sees none of it.
    let token_b = h.token_for(h.tenant_b, ALL_SCOPES).await;
    expect_problem(
        h.get("/certificates/issuer.credential-signing", &token_b)
            .await,
        404,
    )
    .await;
    expect_problem(h.get("/certificate-chains/roots", &token_b).await, 404).await;
    expect_problem(
        h.delete("/certificates/issuer.credential-signing", &token_b)
            .await,
        404,
    )
    .await;
    expect_problem(h.delete("/certificate-chains/roots", &token_b).await, 404).await;
    let none = expect_json(h.get("/certificates", &token_b).await, 200).await;
    assert_eq!(none["certificates"], json!([]));

    assert_eq!(
        h.delete("/certificate-chains/roots", &token).await.status(),
        204
    );
    assert_eq!(
        h.delete("/certificates/issuer.credential-signing", &token)
            .await
            .status(),
        204
    );
    expect_problem(
        h.get("/certificates/issuer.credential-signing", &token)
            .await,
        404,
    )
    .await;
    h.stop().await;
}

#[tokio::test]
async fn certificates_on_postgres() {
    certificates_over_http(Backend::Postgres).await;
}

#[tokio::test]
async fn certificates_on_sqlite() {
    certificates_over_http(Backend::Sqlite).await;
}

/// The ISO/IEC 18013-5 profiles over HTTP: an IACA root and a document signer under it, and
/// the refusals of subjects and validities the standard forbids.
async fn iso_profiles_over_http(backend: Backend) {
    let h = Harness::start(backend).await;
    let token = h.token().await;
    for alias in ["issuer.iaca", "issuer.mdoc-signing"] {
        expect_json(
            h.post(
                "/keys",
                &token,
                &json!({ "alias": alias, "usage": "sign", "algorithm": "ES256" }),
            )
            .await,
            201,
        )
        .await;
    }
    let issue = |subject_key: &'static str, profile: Value| {
        let h = &h;
        let token = &token;
        async move {
            h.post(
                "/certificates/issue",
                token,
                &json!({ "ca_key": "issuer.iaca", "subject_key": subject_key, "profile": profile }),
            )
            .await
        }
    };
    let refused = expect_problem(
        issue(
            "issuer.iaca",
            json!({ "kind": "iaca", "subject": "CN=IACA,O=Tenant A", "validity_secs": 86400 }),
        )
        .await,
        400,
    )
    .await;
    assert!(
        refused["detail"].as_str().unwrap().contains("country"),
        "{refused}"
    );
    expect_problem(
        issue(
            "issuer.iaca",
            json!({ "kind": "iaca", "validity_secs": 86400 }),
        )
        .await,
        400,
    )
    .await;
    let root = expect_json(
        issue(
            "issuer.iaca",
            json!({ "kind": "iaca", "subject": "C=DE,O=Tenant A,CN=Tenant A IACA", "validity_secs": 315_360_000 }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(root["subject"], root["issuer"]);
    expect_problem(
        issue(
            "issuer.mdoc-signing",
            json!({ "kind": "document_signer", "subject": "C=DE,CN=Tenant A DS", "validity_secs": 458 * 86_400 }),
        )
        .await,
        400,
    )
    .await;
    let ds = expect_json(
        issue(
            "issuer.mdoc-signing",
            json!({ "kind": "document_signer", "subject": "C=DE,CN=Tenant A DS", "validity_secs": 90 * 86_400 }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(ds["x5c"].as_array().unwrap().len(), 2);
    assert!(ds["issuer"].as_str().unwrap().contains("Tenant A IACA"));
}

#[tokio::test]
async fn iso_profiles_on_postgres() {
    iso_profiles_over_http(Backend::Postgres).await;
}

#[tokio::test]
async fn iso_profiles_on_sqlite() {
    iso_profiles_over_http(Backend::Sqlite).await;
}
