//! The retention job marks lapsed open sessions `expired`, then applies each tenant's
//! `oid4vp.presentation_retention` to the sessions that ended (verified, failed, expired) at
//! least `retention_delay_secs` ago: `remove` deletes them, `minimize` (the default) drops
//! the verified claims and keeps the rest, `keep` keeps everything; open sessions and recent
//! ones are left alone. On SQLite and PostgreSQL.

use edk_core::jose::{Algorithm, SigningKey};
use edk_core::{Clock as _, SystemClock};
use edk_tenancy::{JobTarget, TenantDirectory as _};
use edk_verifier_server::VerifierSettings;
use reqwest::Method;
use serde_json::{Value, json};

use crate::flow::{answer, by_value, issue, make_request, pki, post, present, provision};
use crate::support::{Deployment, Tenant, identity_query};

/// The ids of a verified, a failed, a lapsed and an open session of `tenant`.
async fn sessions(deployment: &Deployment, tenant: &Tenant) -> [String; 4] {
    let issuer = pki("issuer");
    provision(deployment, tenant, &issuer).await;
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let credential = issue(&issuer, &holder).await;
    let mut ids = Vec::new();
    for nonce_ok in [true, false] {
        let made = make_request(
            deployment,
            tenant,
            json!({"dcql_query": identity_query(), "client_id_prefix": "redirect_uri"}),
        )
        .await;
        let request = by_value(&made);
        let aud = request.client_id.as_ref().unwrap().to_string();
        let nonce = if nonce_ok {
            request.nonce.as_str()
        } else {
            "x"
        };
        let presentation = present(
            &credential,
            &holder,
            &["given_name", "family_name"],
            &aud,
            nonce,
        )
        .await;
        post(
            &request,
            answer(presentation, request.state.clone()).to_form(),
        )
        .await;
        ids.push(made["session_id"].as_str().unwrap().to_owned());
    }
    for lifetime in [1, 3600] {
        let made = make_request(
            deployment,
            tenant,
            json!({"dcql_query": identity_query(), "client_id_prefix": "redirect_uri",
                   "lifetime_secs": lifetime}),
        )
        .await;
        ids.push(made["session_id"].as_str().unwrap().to_owned());
    }
    ids.try_into().unwrap()
}

async fn read(deployment: &Deployment, tenant: &Tenant, id: &str) -> (u16, Value) {
    deployment
        .admin(tenant, Method::GET, &format!("/sessions/{id}"), None)
        .await
}

async fn run(deployment: &Deployment, tenant: &Tenant, at: i64) -> u64 {
    let context = deployment.tenancy.context(tenant.id).await.unwrap();
    let jobs = deployment.parts.jobs();
    assert_eq!(jobs[0].name(), "oid4vp.apply_retention");
    jobs[0]
        .run(
            JobTarget::Tenant(&context),
            chrono::DateTime::from_timestamp(at, 0).unwrap(),
        )
        .await
        .unwrap()
}

/// Retention applies ten minutes after a session ended.
fn settings() -> VerifierSettings {
    VerifierSettings {
        retention_delay_secs: 600,
        ..VerifierSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_on_sqlite() {
    let deployment = Deployment::sqlite_with(&settings()).await;
    each_tenants_retention(&deployment).await;
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_on_postgres() {
    let deployment = Deployment::postgres_with(&settings()).await;
    each_tenants_retention(&deployment).await;
    deployment.close().await;
}

async fn each_tenants_retention(deployment: &Deployment) {
    let acme = deployment.tenant("acme").await;
    let globex = deployment.tenant("globex").await;
    let initech = deployment.tenant("initech").await;
    for (tenant, retention) in [(&acme, "remove"), (&initech, "keep")] {
        deployment
            .tenancy
            .set_config(
                Some(tenant.id),
                "oid4vp.presentation_retention",
                json!(retention),
                None,
            )
            .await
            .unwrap();
    }
    let err = deployment
        .tenancy
        .set_config(
            Some(acme.id),
            "oid4vp.presentation_retention",
            json!("shred"),
            None,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown variant `shred`"), "{err}");

    let now = SystemClock.unix_seconds();
    let acme_ids = sessions(deployment, &acme).await;
    let globex_ids = sessions(deployment, &globex).await;
    let initech_ids = sessions(deployment, &initech).await;
    let (_, verified) = read(deployment, &globex, &globex_ids[0]).await;
    assert_eq!(verified["status"], "verified", "{verified}");

    // Within the delay only the lapsed session changes: expired.
    for tenant in [&acme, &globex, &initech] {
        assert_eq!(run(deployment, tenant, now + 60).await, 1);
        assert_eq!(run(deployment, tenant, now + 60).await, 0);
    }
    for (tenant, ids) in [(&acme, &acme_ids), (&initech, &initech_ids)] {
        let (_, verified) = read(deployment, tenant, &ids[0]).await;
        assert_eq!(verified["claims"]["identity"][0]["given_name"], "Erika");
    }

    // Ten minutes after they ended: remove deletes the three ended sessions.
    let later = now + 600 + 10;
    assert_eq!(run(deployment, &acme, later).await, 3);
    for id in &acme_ids[..3] {
        assert_eq!(read(deployment, &acme, id).await.0, 404);
    }
    let (status, open) = read(deployment, &acme, &acme_ids[3]).await;
    assert_eq!((status, open["status"].as_str()), (200, Some("created")));

    // minimize drops the verified claims, keeps the failure's error and the lapsed session.
    assert_eq!(run(deployment, &globex, later).await, 1);
    assert_eq!(run(deployment, &globex, later).await, 0);
    let (_, minimized) = read(deployment, &globex, &globex_ids[0]).await;
    assert_eq!(minimized["status"], "verified", "{minimized}");
    assert!(minimized.get("claims").is_none(), "{minimized}");
    assert_eq!(minimized["dcql_query"], identity_query());
    let (_, failed) = read(deployment, &globex, &globex_ids[1]).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"]["error"], "invalid_request", "{failed}");
    let (_, lapsed) = read(deployment, &globex, &globex_ids[2]).await;
    assert_eq!(lapsed["status"], "expired", "{lapsed}");

    // keep keeps everything.
    assert_eq!(run(deployment, &initech, later).await, 0);
    let (_, kept) = read(deployment, &initech, &initech_ids[0]).await;
    assert_eq!(kept["claims"]["identity"][0]["given_name"], "Erika");
}
