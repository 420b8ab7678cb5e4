//! Session data retention per tenant (`oid4vci.session_retention`), applied by the purge
//! job to sessions that ended: `remove` deletes them, `minimize` (the default) keeps their
//! status and drops their claims, `keep` keeps everything; open (deferred) sessions stay.

use edk_core::jose::{Algorithm, SigningKey};
use edk_core::{Clock as _, SystemClock};
use edk_oid4vci::{IssuerStore as _, SqlStore};
use edk_tenancy::{JobTarget, TenantDirectory as _};
use serde_json::{Value, json};

use crate::flow::on_both_backends;
use crate::support::{Deployment, Tenant, http, key_proof, nonce, redeem};

/// The sessions of one tenant: one issued, one never redeemed, one deferred; and the
/// access token of the issued one.
struct Sessions {
    issued: String,
    lapsed: String,
    deferred: String,
    token: String,
}

async fn offer(deployment: &Deployment, tenant: &Tenant, deferred: bool) -> Value {
    let (status, body) = deployment
        .admin(
            tenant,
            reqwest::Method::POST,
            "/offers",
            Some(json!({
                "credential_configuration_ids": ["identity"],
                "claims": { "identity": { "given_name": "Erika" } },
                "tx_code": { "digits": 6 },
                "deferred": deferred,
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// Redeems `offer` and requests its credential: the access token and the status.
async fn request(tenant: &Tenant, offer: &Value) -> (String, u16, Value) {
    let response = redeem(tenant, offer, None).await;
    assert_eq!(response.status().as_u16(), 200);
    let token: Value = response.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let status = credential(tenant, &token, offer).await;
    (token, status.0, status.1)
}

async fn credential(tenant: &Tenant, token: &str, offer: &Value) -> (u16, Value) {
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let c_nonce = nonce(tenant).await;
    let response = http()
        .post(format!("{}/credential", tenant.issuer_base))
        .bearer_auth(token)
        .json(&json!({
            "credential_identifier": format!("{}:identity", offer["session_id"].as_str().unwrap()),
            "proofs": { "jwt": [key_proof(&holder, &tenant.credential_issuer, Some(&c_nonce))] },
        }))
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn sessions(deployment: &Deployment, tenant: &Tenant) -> Sessions {
    deployment.configure(tenant).await;
    let issued = offer(deployment, tenant, false).await;
    let (token, status, _) = request(tenant, &issued).await;
    assert_eq!(status, 200);
    let lapsed = offer(deployment, tenant, false).await;
    let deferred = offer(deployment, tenant, true).await;
    let (_, status, _) = request(tenant, &deferred).await;
    assert_eq!(status, 202);
    let id = |offer: &Value| offer["session_id"].as_str().unwrap().to_owned();
    Sessions {
        issued: id(&issued),
        lapsed: id(&lapsed),
        deferred: id(&deferred),
        token,
    }
}

/// The stored session `id`: its status, claims and whether it was minimized.
async fn stored(
    deployment: &Deployment,
    tenant: &Tenant,
    id: &str,
) -> Option<(String, Value, bool)> {
    let context = deployment.tenancy.context(tenant.id).await.unwrap();
    SqlStore::new(deployment.tenancy.clone())
        .session(&context, id)
        .await
        .unwrap()
        .map(|session| {
            (
                session.status.as_str().to_owned(),
                Value::Object(session.claims),
                session.minimized,
            )
        })
}

async fn purge(deployment: &Deployment, tenant: &Tenant, at: i64) -> u64 {
    let context = deployment.tenancy.context(tenant.id).await.unwrap();
    deployment
        .parts
        .purge_job()
        .run(
            JobTarget::Tenant(&context),
            chrono::DateTime::from_timestamp(at, 0).unwrap(),
        )
        .await
        .unwrap()
}

async fn the_purge_job_applies_each_tenants_session_retention(deployment: Deployment) {
    let acme = deployment.tenant("acme").await;
    let globex = deployment.tenant("globex").await;
    let initech = deployment.tenant("initech").await;
    for (tenant, retention) in [(&acme, "remove"), (&initech, "keep")] {
        deployment
            .tenancy
            .set_config(
                Some(tenant.id),
                "oid4vci.session_retention",
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
            "oid4vci.session_retention",
            json!("shred"),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid value for configuration key `oid4vci.session_retention`: unknown variant `shred`, expected one of `remove`, `minimize`, `keep`"
    );

    let acme_sessions = sessions(&deployment, &acme).await;
    let globex_sessions = sessions(&deployment, &globex).await;
    let initech_sessions = sessions(&deployment, &initech).await;
    let claims = json!({ "identity": { "given_name": "Erika" } });
    let now = SystemClock.unix_seconds();

    // Before the offers lapse nothing is touched.
    for tenant in [&acme, &globex, &initech] {
        assert_eq!(purge(&deployment, tenant, now).await, 0);
    }
    // After: the lapsed offer expires (1) and the two ended sessions are retained as set.
    let later = now + 3600;
    assert_eq!(purge(&deployment, &acme, later).await, 3);
    assert_eq!(purge(&deployment, &globex, later).await, 3);
    assert_eq!(purge(&deployment, &initech, later).await, 1);
    for tenant in [&acme, &globex, &initech] {
        assert_eq!(purge(&deployment, tenant, later).await, 0, "once only");
    }

    assert_eq!(
        stored(&deployment, &acme, &acme_sessions.issued).await,
        None
    );
    assert_eq!(
        stored(&deployment, &acme, &acme_sessions.lapsed).await,
        None
    );
    let (status, _) = deployment
        .admin(
            &acme,
            reqwest::Method::GET,
            &format!("/sessions/{}", acme_sessions.issued),
            None,
        )
        .await;
    assert_eq!(status, 404);

    assert_eq!(
        stored(&deployment, &globex, &globex_sessions.issued).await,
        Some(("credential_issued".to_owned(), json!({}), true))
    );
    assert_eq!(
        stored(&deployment, &globex, &globex_sessions.lapsed).await,
        Some(("expired".to_owned(), json!({}), true))
    );
    let (status, session) = deployment
        .admin(
            &globex,
            reqwest::Method::GET,
            &format!("/sessions/{}", globex_sessions.issued),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(session["status"], "credential_issued");
    // A minimized session issues nothing more.
    let offer = json!({ "session_id": globex_sessions.issued });
    assert_eq!(
        credential(&globex, &globex_sessions.token, &offer).await,
        (
            400,
            json!({"error": "credential_request_denied",
                "error_description": "the issuance session's claims were removed by the retention policy"})
        )
    );

    assert_eq!(
        stored(&deployment, &initech, &initech_sessions.issued).await,
        Some(("credential_issued".to_owned(), claims.clone(), false))
    );
    assert_eq!(
        stored(&deployment, &initech, &initech_sessions.lapsed).await,
        Some(("expired".to_owned(), claims.clone(), false))
    );
    // Open (deferred) sessions are left alone whatever the policy.
    for (tenant, sessions) in [
        (&acme, &acme_sessions),
        (&globex, &globex_sessions),
        (&initech, &initech_sessions),
    ] {
        assert_eq!(
            stored(&deployment, tenant, &sessions.deferred).await,
            Some(("deferred".to_owned(), claims.clone(), false))
        );
    }
    deployment.close().await;
}
on_both_backends!(the_purge_job_applies_each_tenants_session_retention);
