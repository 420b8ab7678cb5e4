//! A tenant administrator's token (a trusted admin issuer's, naming its tenant) manages its
//! own tenant's bindings and configuration, never another tenant's, and never the platform
//! routes.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, Platform, wallet_attestation};

const TENANTS: &str = "/api/platform/v1/tenants";

async fn a_tenant_admin_reaches_only_its_own_tenant(backend: Backend) {
    let platform = Platform::start(backend).await;
    let (_, ops) = platform.first_operator().await;
    let acme = platform.onboard(&ops, "acme").await;
    let globex = platform.onboard(&ops, "globex").await;
    let admin = platform
        .tenant_admin_token(
            &acme,
            "tenant:config:read tenant:config:write platform:tenants:read platform:tenants:write",
        )
        .await;
    let port = platform.http.addr().port();
    let binding = json!({"host": "localhost", "port": port, "path_prefix": "/moved",
        "dangerous_loopback_http": true});
    let attestation = wallet_attestation();

    // Its own tenant: read and change bindings and configuration.
    let (status, own) = platform
        .call(
            Method::GET,
            &format!("{TENANTS}/{acme}/bindings"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["bindings"][0]["url"], platform.url("/acme").as_str());
    let (status, moved) = platform
        .call(
            Method::PUT,
            &format!("{TENANTS}/{acme}/bindings/as"),
            Some(&admin),
            Some(binding.clone()),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["url"], platform.url("/moved").as_str());
    let metadata: Value = platform
        .client
        .get(platform.url("/.well-known/oauth-authorization-server/moved"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], platform.url("/moved").as_str());
    let (status, written) = platform
        .call(
            Method::PUT,
            &format!("{TENANTS}/{acme}/config/oauth.client_attestation"),
            Some(&admin),
            Some(attestation.clone()),
        )
        .await;
    assert_eq!(status, 200, "{written}");
    assert_eq!(written["version"], 1);

    // Typed: a bad value (400) or an unknown key (404) is refused naming the key, and the
    // platform's own records are not writable.
    for (key, value, expected) in [
        (
            "oauth.client_attestation",
            json!({"value": {"max_age_seconds": "soon"}}),
            400,
        ),
        ("no.such_key", json!({"value": 1}), 404),
        ("platform.onboarding", json!({"value": null}), 400),
    ] {
        let (status, problem) = platform
            .call(
                Method::PUT,
                &format!("{TENANTS}/{acme}/config/{key}"),
                Some(&admin),
                Some(value),
            )
            .await;
        assert_eq!(status, expected, "{key}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(key),
            "{key}: {problem}"
        );
    }

    // Another tenant: neither read nor changed, whatever scopes the token carries.
    let before = platform
        .started
        .deps()
        .tenancy()
        .bindings(globex.parse().unwrap())
        .await
        .unwrap();
    for (method, path, body) in [
        (Method::GET, format!("{TENANTS}/{globex}/bindings"), None),
        (
            Method::PUT,
            format!("{TENANTS}/{globex}/bindings/as"),
            Some(binding.clone()),
        ),
        (
            Method::PUT,
            format!("{TENANTS}/{globex}/config/oauth.client_attestation"),
            Some(attestation.clone()),
        ),
    ] {
        let (status, problem) = platform.call(method, &path, Some(&admin), body).await;
        assert_eq!(status, 403, "{path}: {problem}");
        assert_eq!(problem["detail"], "the token is for another tenant");
    }
    let after = platform
        .started
        .deps()
        .tenancy()
        .bindings(globex.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(before, after, "globex's bindings are untouched");
    let config = platform
        .started
        .deps()
        .tenancy()
        .config_properties(Some(globex.parse().unwrap()))
        .await
        .unwrap();
    assert!(
        config.iter().all(|p| p.key != "oauth.client_attestation"),
        "globex's configuration is untouched"
    );

    // Platform routes refuse a tenant token even with platform scopes.
    for (method, path) in [
        (Method::GET, TENANTS.to_owned()),
        (Method::GET, format!("{TENANTS}/{acme}")),
        (Method::POST, format!("{TENANTS}/{globex}/suspend")),
        (Method::DELETE, format!("{TENANTS}/{globex}")),
    ] {
        let (status, problem) = platform.call(method, &path, Some(&admin), None).await;
        assert_eq!(status, 403, "{path}: {problem}");
        assert_eq!(
            problem["detail"],
            "a tenant administrator's token cannot call platform routes"
        );
    }

    // An operator reaches every tenant.
    let (status, _) = platform
        .call(
            Method::GET,
            &format!("{TENANTS}/{globex}/bindings"),
            Some(&ops),
            None,
        )
        .await;
    assert_eq!(status, 200);
    platform.close().await;
}

#[tokio::test]
async fn a_tenant_admin_reaches_only_its_own_tenant_on_sqlite() {
    Box::pin(a_tenant_admin_reaches_only_its_own_tenant(Backend::Sqlite)).await;
}

#[tokio::test]
async fn a_tenant_admin_reaches_only_its_own_tenant_on_postgres() {
    Box::pin(a_tenant_admin_reaches_only_its_own_tenant(
        Backend::Postgres,
    ))
    .await;
}
