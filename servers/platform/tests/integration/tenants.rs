//! Tenant onboarding through the API: validation naming the field, recorded steps, a failed
//! step resumed by the same request, and the lifecycle (suspend, resume, delete).

use reqwest::Method;
use serde_json::{Value, json};

use edk_core::TenantId;
use edk_kms::{Caller, KeyAlias, KeyRef};
use edk_tenancy::{ServiceType, TenantDirectory as _};

use crate::support::{Backend, Platform};

const TENANTS: &str = "/api/platform/v1/tenants";

fn request(slug: &str, port: u16) -> Value {
    json!({
        "slug": slug,
        "display_name": format!("Tenant {slug}"),
        "bindings": [{
            "service": "as", "host": "localhost", "port": port, "path_prefix": "/acme",
            "dangerous_loopback_http": true,
        }],
    })
}

fn step<'a>(detail: &'a Value, name: &str) -> &'a Value {
    detail["onboarding"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["step"] == name)
        .unwrap()
}

async fn onboarding_resumes_after_a_failed_step(backend: Backend) {
    let platform = Platform::start(backend).await;
    let (_, operator) = platform.setup(&platform.setup_token()).await;
    let token = platform
        .operator_token(&operator, "platform:tenants:read platform:tenants:write")
        .await;
    let port = platform.http.addr().port();
    let post = |body: Value| platform.call(Method::POST, TENANTS, Some(&token), Some(body));

    // Validation names the field, and writes nothing.
    for (body, field) in [
        (request("Not A Slug", port), "`slug`"),
        (request("edk-operators", port), "`slug`"),
        (
            json!({"slug": "acme", "display_name": " ", "bindings": []}),
            "`display_name`",
        ),
        (
            json!({"slug": "acme", "display_name": "Acme", "bindings": []}),
            "`bindings`",
        ),
        (
            json!({"slug": "acme", "display_name": "Acme", "bindings": [
                {"service": "as", "host": "not a host", "path_prefix": "/"}]}),
            "`bindings[0].host`",
        ),
        (
            json!({"slug": "acme", "display_name": "Acme", "bindings": [
                {"service": "mail", "host": "as.example.com", "path_prefix": "/"}]}),
            "`bindings[0].service`",
        ),
        (
            json!({"slug": "acme", "display_name": "Acme", "bindings": [
                {"service": "as", "host": "as.example.com", "path_prefix": "/"}],
                "issuer_did": {"method": "web"}}),
            "`issuer_did`",
        ),
        (
            json!({"slug": "acme", "display_name": "Acme", "bindings": [
                {"service": "as", "host": "as.example.com", "path_prefix": "/"},
                {"service": "did", "host": "did.example.com", "path_prefix": "/"}],
                "issuer_did": {"method": "key"}}),
            "`issuer_did.method`",
        ),
        (
            json!({"slug": "acme", "display_name": "Acme", "bindings": [
                {"service": "as", "host": "as.example.com", "path_prefix": "/"}],
                "credential_configuration": {"id": "with space", "vct": "urn:x"}}),
            "`credential_configuration.id`",
        ),
        (
            json!({"slug": "acme", "display_name": "Acme", "bindings": [
                {"service": "as", "host": "as.example.com", "path_prefix": "/"}],
                "credential_configuration": {"id": "x", "vct": "urn:x", "lifetime_secs": 0}}),
            "`credential_configuration.lifetime_secs`",
        ),
    ] {
        let (status, problem) = post(body.clone()).await;
        assert_eq!(status, 400, "{body}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().starts_with(field),
            "{field}: {problem}"
        );
    }
    let (_, list) = platform
        .call(Method::GET, TENANTS, Some(&token), None)
        .await;
    assert_eq!(list["tenants"], json!([]));

    // Another tenant holds the endpoint: the `bindings` step fails and is recorded.
    let (status, blocker) = post(request("blocker", port)).await;
    assert_eq!(status, 201, "{blocker}");
    let (status, problem) = post(request("acme", port)).await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("onboarding step `bindings` failed"),
        "{problem}"
    );
    let (_, list) = platform
        .call(Method::GET, TENANTS, Some(&token), None)
        .await;
    let acme = list["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|tenant| tenant["slug"] == "acme")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, failed) = platform
        .call(
            Method::GET,
            &format!("{TENANTS}/{acme}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{failed}");
    let states: Vec<&str> = failed["onboarding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "done", "done", "failed", "pending", "pending", "pending", "pending"
        ],
        "{failed}"
    );
    assert!(step(&failed, "bindings")["error"].is_string());

    // The endpoint is freed; the same request resumes at `bindings`.
    let tenancy = platform.started.deps().tenancy().clone();
    let blocker_id: TenantId = blocker["id"].as_str().unwrap().parse().unwrap();
    tenancy.unbind(blocker_id, ServiceType::As).await.unwrap();
    let (status, done) = post(request("acme", port)).await;
    assert_eq!(status, 201, "{done}");
    assert_eq!(done["id"], acme.as_str());
    assert!(
        done["onboarding"]
            .as_array()
            .unwrap()
            .iter()
            .all(|step| step["state"] == "done"),
        "{done}"
    );
    assert_eq!(
        step(&done, "kms_aliases")["at"],
        step(&failed, "kms_aliases")["at"],
        "a step done before is not run again"
    );
    let (status, problem) = post(request("acme", port)).await;
    assert_eq!(
        status, 409,
        "a finished onboarding is not run again: {problem}"
    );

    // The tenant serves: its authorization server's metadata, its default keys.
    let metadata_url = platform.url("/.well-known/oauth-authorization-server/acme");
    let metadata: Value = platform
        .client
        .get(&metadata_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], platform.url("/acme").as_str());
    let acme_id: TenantId = acme.parse().unwrap();
    let caller = Caller::new(tenancy.context(acme_id).await.unwrap(), "test");
    let kms = platform.started.deps().kms().kms();
    for alias in [
        "issuer.credential-signing",
        "verifier.request-object-signing",
    ] {
        let alias: KeyAlias = alias.parse().unwrap();
        kms.key(&caller, &KeyRef::Alias(alias)).await.unwrap();
    }

    // Suspend, resume, delete.
    let lifecycle = |action: &str| {
        let (method, path) = match action {
            "delete" => (Method::DELETE, format!("{TENANTS}/{acme}")),
            other => (Method::POST, format!("{TENANTS}/{acme}/{other}")),
        };
        let token = token.clone();
        let platform = &platform;
        async move { platform.call(method, &path, Some(&token), None).await }
    };
    let (status, suspended) = lifecycle("suspend").await;
    assert_eq!(
        (status, suspended["status"].as_str()),
        (200, Some("suspended"))
    );
    let status = platform
        .client
        .get(&metadata_url)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404, "a suspended tenant does not serve");
    let (status, resumed) = lifecycle("resume").await;
    assert_eq!((status, resumed["status"].as_str()), (200, Some("active")));
    let (status, deleted) = lifecycle("delete").await;
    assert_eq!((status, deleted["status"].as_str()), (200, Some("deleted")));
    assert!(deleted["deleted_at"].is_string());
    let (status, problem) = lifecycle("resume").await;
    assert_eq!(status, 409, "a deleted tenant is not resumed: {problem}");

    // The operator realm is not the API's.
    let realm = platform.started.realm();
    let (status, _) = platform
        .call(
            Method::POST,
            &format!("{TENANTS}/{realm}/suspend"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 404);
    platform.close().await;
}

#[tokio::test]
async fn onboarding_resumes_after_a_failed_step_on_sqlite() {
    Box::pin(onboarding_resumes_after_a_failed_step(Backend::Sqlite)).await;
}

#[tokio::test]
async fn onboarding_resumes_after_a_failed_step_on_postgres() {
    Box::pin(onboarding_resumes_after_a_failed_step(Backend::Postgres)).await;
}
