//! Onboarding stopped at each step and resumed: before the step runs (recorded `failed`) and
//! after it ran but before it was recorded (as a process killed there), every step is run
//! again without harm and the tenant ends up whole: one issuer DID, its certificates, its
//! trust anchor and its credential configuration.

use reqwest::Method;
use serde_json::{Value, json};

use edk_core::TenantId;
use edk_kms::cert::Certificates;
use edk_kms::cert::store::SqlCertificateStore;
use edk_kms::{Caller, KeyAlias};
use edk_oid4vci::IssuerStore as _;
use edk_platform_server::onboarding::faults::{self, Point};
use edk_platform_server::onboarding::{STEPS, Step};
use edk_tenancy::TenantDirectory as _;

use crate::support::{Backend, Platform};

const TENANTS: &str = "/api/platform/v1/tenants";

fn request(slug: &str, port: u16) -> Value {
    let binding = |service: &str, host: &str, http: bool| {
        json!({"service": service, "host": host, "port": port,
               "path_prefix": format!("/{slug}"), "dangerous_loopback_http": http})
    };
    json!({
        "slug": slug,
        "display_name": format!("Tenant {slug}"),
        "bindings": [
            binding("as", "localhost", true),
            binding("issuer", "localhost", true),
            binding("verifier", "localhost", true),
            binding("did", &format!("{slug}.localhost"), false),
        ],
        "issuer_did": {"method": "web"},
    })
}

fn states(detail: &Value) -> Vec<(String, String)> {
    detail["onboarding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| {
            (
                step["step"].as_str().unwrap().to_owned(),
                step["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn tenant_of(platform: &Platform, token: &str, slug: &str) -> Option<Value> {
    let (_, list) = platform.call(Method::GET, TENANTS, Some(token), None).await;
    let id = list["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|tenant| tenant["slug"] == slug)?["id"]
        .as_str()?
        .to_owned();
    let (status, detail) = platform
        .call(Method::GET, &format!("{TENANTS}/{id}"), Some(token), None)
        .await;
    assert_eq!(status, 200, "{detail}");
    Some(detail)
}

#[tokio::test]
async fn onboarding_stopped_at_each_step_resumes_on_postgres() {
    let platform = Platform::start(Backend::Postgres).await;
    let (_, operator) = platform.setup(&platform.setup_token()).await;
    let token = platform
        .operator_token(&operator, "platform:tenants:read platform:tenants:write")
        .await;
    let port = platform.http.addr().port();
    for (index, step) in STEPS.into_iter().enumerate() {
        let slug = format!("step-{}", step.as_str().replace('_', "-"));
        let body = request(&slug, port);
        let post = || platform.call(Method::POST, TENANTS, Some(&token), Some(body.clone()));

        // Stopped before the step runs: the step is recorded as failed (the registry row,
        // when it is the step, is not written at all).
        faults::inject(&slug, step, Point::Before);
        let (status, problem) = post().await;
        assert_eq!(status, 503, "{slug}: {problem}");
        let detail = tenant_of(&platform, &token, &slug).await;
        if step == Step::Registry {
            assert!(detail.is_none(), "{slug}: {detail:?}");
        } else {
            let states = states(detail.as_ref().unwrap());
            assert_eq!(
                states[index],
                (step.as_str().to_owned(), "failed".to_owned())
            );
            assert!(
                states[..index].iter().all(|(_, state)| state == "done"),
                "{states:?}"
            );
            assert!(
                states[index + 1..]
                    .iter()
                    .all(|(_, state)| state == "pending")
            );
        }

        // Stopped after the step ran, before it was recorded: its effects are there, the
        // record does not know; the next run does the step again.
        faults::inject(&slug, step, Point::After);
        let (status, problem) = post().await;
        assert_eq!(status, 503, "{slug}: {problem}");
        let detail = tenant_of(&platform, &token, &slug).await.unwrap();
        let states = states(&detail);
        if step != Step::Registry {
            assert_ne!(states[index].1, "done", "{slug}: {states:?}");
        }

        // Resumed: every step done, the tenant whole.
        let (status, done) = post().await;
        assert_eq!(status, 201, "{slug}: {done}");
        assert!(
            states_of(&done).iter().all(|state| state == "done"),
            "{slug}: {done}"
        );
        let did = done["issuer_did"].as_str().unwrap();
        assert_eq!(
            did,
            format!("did:web:{slug}.localhost%3A{port}:{slug}:issuer")
        );
        assert_eq!(done["credential_configuration"], "identity");
        check_tenant(&platform, done["id"].as_str().unwrap(), did).await;
        let (status, _) = post().await;
        assert_eq!(status, 409, "{slug}: onboarded once");
    }
    platform.close().await;
}

fn states_of(detail: &Value) -> Vec<String> {
    states(detail).into_iter().map(|(_, state)| state).collect()
}

/// One DID, recorded in the tenant configuration; the certificates of the signing keys; the
/// trust anchor; the credential configuration naming its key by `x5c`.
async fn check_tenant(platform: &Platform, id: &str, did: &str) {
    let deps = platform.started.deps();
    let tenancy = deps.tenancy().clone();
    let tenant: TenantId = id.parse().unwrap();
    let context = tenancy.context(tenant).await.unwrap();
    let properties = tenancy.config_properties(Some(tenant)).await.unwrap();
    let recorded = properties
        .iter()
        .find(|property| property.key == "platform.issuer_did")
        .unwrap();
    assert_eq!(recorded.value, did);
    let dids = edk_did::store::SqlDidStore::new(tenancy.clone());
    let all = edk_did::store::DidStore::list(&dids, &context)
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "one DID: {all:?}");
    let caller = Caller::new(context.clone(), "test");
    let certificates = Certificates::new(
        deps.kms().kms(),
        std::sync::Arc::new(SqlCertificateStore::new(tenancy.clone())),
        deps.clock(),
    );
    for alias in [
        "issuer.ca-root",
        "issuer.credential-signing",
        "verifier.ca-root",
        "verifier.request-object-signing",
    ] {
        let alias: KeyAlias = alias.parse().unwrap();
        certificates.certificate(&caller, &alias).await.unwrap();
    }
    let anchors = certificates.trust_anchors(&caller).await.unwrap();
    assert_eq!(anchors.len(), 1, "the issuer root, once");
    let store = edk_oid4vci::SqlStore::new(tenancy);
    let configurations = store.configurations(&context).await.unwrap();
    assert_eq!(configurations.len(), 1);
    assert_eq!(
        configurations[0].1.settings.key_identification,
        edk_oid4vci::KeyIdentification::X5c
    );
}

#[tokio::test]
async fn onboarding_makes_a_did_webvh_when_asked_on_sqlite() {
    let platform = Platform::start(Backend::Sqlite).await;
    let (_, operator) = platform.setup(&platform.setup_token()).await;
    let token = platform
        .operator_token(&operator, "platform:tenants:read platform:tenants:write")
        .await;
    let port = platform.http.addr().port();
    let mut body = request("vh", port);
    body["issuer_did"] = json!({"method": "webvh"});
    // Stopped after the DID was made: the next run takes it rather than making another.
    faults::inject("vh", Step::IssuerDid, Point::After);
    let (status, _) = platform
        .call(Method::POST, TENANTS, Some(&token), Some(body.clone()))
        .await;
    assert_eq!(status, 503);
    let (status, done) = platform
        .call(Method::POST, TENANTS, Some(&token), Some(body))
        .await;
    assert_eq!(status, 201, "{done}");
    let did = done["issuer_did"].as_str().unwrap();
    assert!(did.starts_with("did:webvh:"), "{did}");
    assert!(
        did.ends_with(&format!(":vh.localhost%3A{port}:vh:issuer")),
        "{did}"
    );
    check_tenant(&platform, done["id"].as_str().unwrap(), did).await;
    platform.close().await;
}
