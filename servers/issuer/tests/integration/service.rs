//! `IssuerServer` as the `edk-issuer` binary builds it: from its configuration, on its own
//! dependencies (migrations of edk-oauth and edk-oid4vci, a local KMS), serving a tenant's
//! metadata and refusing the admin API without a token.

use std::sync::Arc;

use edk_core::{SystemClock, TenantSlug};
use edk_issuer_server::{IssuerServer, IssuerServerConfig};
use edk_kms::provider::software::generate_kek;
use edk_server::{Service as _, spawn_server};
use edk_tenancy::{EndpointBinding, ServiceType, WellKnownLayout};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use crate::support::{header, http};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_is_built_from_its_configuration_and_serves_a_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let config: IssuerServerConfig = serde_json::from_value(json!({
        "database": { "backend": "sqlite", "directory": dir.path() },
        "kms": { "mode": "local", "providers": [{
            "kind": "software", "id": "software", "current_kek": "k1",
            "keks": [{ "id": "k1", "key": generate_kek().unwrap().expose_secret() }],
        }] },
        "issuer": { "metadata_max_age_secs": 60, "batch_size": 4, "encryption": "required" },
    }))
    .unwrap();
    let started =
        edk_server::service::start::<IssuerServer>(&config, Arc::new(SystemClock), http())
            .await
            .unwrap();
    assert_eq!(
        started
            .jobs()
            .iter()
            .map(|job| job.name().to_owned())
            .collect::<Vec<_>>(),
        vec![
            "oid4vci.purge_expired".to_owned(),
            "oid4vci.publish_status_lists".to_owned(),
            "oauth.purge_expired".to_owned()
        ]
    );
    let server = spawn_server(started.app()).await.unwrap();
    let port = server.addr().port();
    let tenancy = started.deps().tenancy();
    let tenant = tenancy
        .provision(TenantSlug::new("acme").unwrap(), "acme")
        .await
        .unwrap();
    for service in [ServiceType::As, ServiceType::Issuer] {
        let binding = EndpointBinding::new(
            tenant.id,
            service,
            "localhost",
            Some(port),
            "/acme",
            WellKnownLayout::Inserted,
        )
        .unwrap();
        tenancy.bind(&binding).await.unwrap();
    }

    let response = http()
        .get(format!(
            "http://localhost:{port}/.well-known/openid-credential-issuer/acme"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(header(&response, "cache-control"), "public, max-age=60");
    let mut metadata: Value = response.json().await.unwrap();
    // Encryption is required: the tenant's request decryption key (created on first use) is
    // advertised with the algorithms.
    let request_encryption = metadata
        .as_object_mut()
        .unwrap()
        .remove("credential_request_encryption")
        .unwrap();
    let keys = request_encryption["jwks"]["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["alg"], "ECDH-ES");
    assert_eq!(keys[0]["crv"], "P-256");
    assert!(keys[0]["kid"].is_string());
    assert!(keys[0].get("d").is_none());
    assert_eq!(
        request_encryption["enc_values_supported"],
        json!(["A128GCM", "A256GCM"])
    );
    assert_eq!(request_encryption["encryption_required"], true);
    assert_eq!(
        metadata,
        json!({
            "credential_issuer": format!("https://localhost:{port}/acme"),
            "authorization_servers": [format!("https://localhost:{port}/acme")],
            "credential_endpoint": format!("https://localhost:{port}/acme/credential"),
            "nonce_endpoint": format!("https://localhost:{port}/acme/nonce"),
            "deferred_credential_endpoint":
                format!("https://localhost:{port}/acme/deferred_credential"),
            "notification_endpoint": format!("https://localhost:{port}/acme/notification"),
            "batch_credential_issuance": { "batch_size": 4 },
            "credential_response_encryption": {
                "alg_values_supported":
                    ["ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A256KW", "RSA-OAEP-256"],
                "enc_values_supported": ["A128GCM", "A256GCM"],
                "encryption_required": true,
            },
            "credential_configurations_supported": {},
        })
    );

    let response = http()
        .get(server.url("/api/oid4vci/v1/configurations"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(
        header(&response, "content-type"),
        "application/problem+json"
    );
    let live = http().get(server.url("/health/live")).send().await.unwrap();
    assert_eq!(live.status().as_u16(), 200);

    server.shutdown().await.unwrap();
    started.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limits_of_its_configuration_cut_off_the_nonce_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let config: IssuerServerConfig = serde_json::from_value(json!({
        "database": { "backend": "sqlite", "directory": dir.path() },
        "kms": { "mode": "local", "providers": [{
            "kind": "software", "id": "software", "current_kek": "k1",
            "keks": [{ "id": "k1", "key": generate_kek().unwrap().expose_secret() }],
        }] },
        "rate_limits": { "limits": { "per_ip": { "requests": 2, "window_secs": 60 } } },
    }))
    .unwrap();
    let started =
        edk_server::service::start::<IssuerServer>(&config, Arc::new(SystemClock), http())
            .await
            .unwrap();
    let server = spawn_server(started.app()).await.unwrap();
    let port = server.addr().port();
    let tenancy = started.deps().tenancy();
    for slug in ["acme", "other"] {
        let tenant = tenancy
            .provision(TenantSlug::new(slug).unwrap(), slug)
            .await
            .unwrap();
        for service in [ServiceType::As, ServiceType::Issuer] {
            let binding = EndpointBinding::new(
                tenant.id,
                service,
                "localhost",
                Some(port),
                &format!("/{slug}"),
                WellKnownLayout::Inserted,
            )
            .unwrap();
            tenancy.bind(&binding).await.unwrap();
        }
    }
    let nonce = |slug: &str| {
        http()
            .post(format!("http://localhost:{port}/{slug}/nonce"))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(nonce("acme").await.unwrap().status().as_u16(), 200);
    }
    let refused = nonce("acme").await.unwrap();
    assert_eq!(refused.status().as_u16(), 429);
    let retry_after: u64 = header(&refused, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    // Each tenant counts its own requests.
    assert_eq!(nonce("other").await.unwrap().status().as_u16(), 200);
    let metrics = http().get(server.url("/metrics")).send().await.unwrap();
    assert!(
        metrics
            .text()
            .await
            .unwrap()
            .contains("rate_limited_requests_total{scope=\"ip\"} 1")
    );

    server.shutdown().await.unwrap();
    started.shutdown().await;
}
