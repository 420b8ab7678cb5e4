//! HMAC-signed webhooks over real HTTP to a loopback receiver: the signature verifies with
//! the tenant's secret (and never with another tenant's), a failing receiver gets the same
//! event again until it answers 2xx, a settled session whose attempt never ran (the server
//! stopped) is delivered by the job on another replica, lapsed sessions are notified as
//! `expired`, a session changes state only in the transaction that records its delivery, and
//! bad webhook URLs and secrets are refused.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edk_core::jose::{Algorithm, SigningKey};
use edk_core::{Clock as _, SystemClock};
use edk_server::{TestServer, spawn_server};
use edk_tenancy::{JobTarget, TenantDirectory as _};
use edk_verifier_server::VerifierSettings;
use edk_verifier_server::store::SessionStatus;
use poem::{Endpoint, Request, Response};
use reqwest::Method;
use serde_json::{Value, json};

use crate::flow::{answer, by_value, issue, make_request, pki, post, present, provision};
use crate::support::{Deployment, Tenant, identity_query};

/// One POST the receiver got.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    content_type: String,
    body: Vec<u8>,
}

/// A webhook receiver that answers 500 to its first `failures` calls, then 204.
#[derive(Clone)]
struct Receiver {
    seen: Arc<Mutex<Vec<Received>>>,
    failures: usize,
}

impl Endpoint for Receiver {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let (id, timestamp, signature, content_type) = (
            header("EDK-Webhook-Id"),
            header("EDK-Webhook-Timestamp"),
            header("EDK-Webhook-Signature"),
            header("content-type"),
        );
        let body = req.into_body().into_vec().await?;
        let count = {
            let mut seen = self.seen.lock().unwrap();
            seen.push(Received {
                id,
                timestamp,
                signature,
                content_type,
                body,
            });
            seen.len()
        };
        let status = if count <= self.failures {
            poem::http::StatusCode::INTERNAL_SERVER_ERROR
        } else {
            poem::http::StatusCode::NO_CONTENT
        };
        Ok(Response::builder().status(status).finish())
    }
}

async fn receiver(failures: usize) -> (TestServer, Arc<Mutex<Vec<Received>>>, String) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = spawn_server(Receiver {
        seen: Arc::clone(&seen),
        failures,
    })
    .await
    .unwrap();
    let url = format!("http://127.0.0.1:{}/hook", server.addr().port());
    (server, seen, url)
}

fn count(seen: &Arc<Mutex<Vec<Received>>>) -> usize {
    seen.lock().unwrap().len()
}

/// Whether `received` is signed with `secret` (base64url) as the README says to check it.
fn signed_with(received: &Received, secret: &str) -> bool {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &URL_SAFE_NO_PAD.decode(secret).unwrap());
    let Some(tag) = received
        .signature
        .strip_prefix("v1=")
        .and_then(|tag| URL_SAFE_NO_PAD.decode(tag).ok())
    else {
        return false;
    };
    let mut signed = format!("{}.{}.", received.id, received.timestamp).into_bytes();
    signed.extend_from_slice(&received.body);
    hmac::verify(&key, &signed, &tag).is_ok()
}

/// How many webhook deliveries the tenant's PostgreSQL schema holds.
async fn deliveries(deployment: &Deployment, context: &edk_tenancy::TenantContext) -> i64 {
    let mut tx = deployment.tenancy.databases().begin(context).await.unwrap();
    let edk_tenancy::TenantTx::Postgres(pg) = &mut tx else {
        panic!("a PostgreSQL deployment");
    };
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM oid4vp_webhook_delivery")
        .fetch_one(&mut **pg)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    count
}

fn http_settings() -> VerifierSettings {
    VerifierSettings {
        dangerous_allow_http_webhooks: true,
        ..VerifierSettings::default()
    }
}

async fn put_secret(deployment: &Deployment, tenant: &Tenant, body: Value) -> (u16, Value) {
    deployment
        .admin(tenant, Method::PUT, "/webhook-secret", Some(body))
        .await
}

/// Runs the webhook job for `tenant` as of `at`: how many deliveries succeeded.
async fn run_job(deployment: &Deployment, tenant: &Tenant, at: i64) -> u64 {
    let context = deployment.tenancy.context(tenant.id).await.unwrap();
    let jobs = deployment.parts.jobs();
    assert_eq!(jobs[1].name(), "oid4vp.deliver_webhooks");
    jobs[1]
        .run(
            JobTarget::Tenant(&context),
            chrono::DateTime::from_timestamp(at, 0).unwrap(),
        )
        .await
        .unwrap()
}

/// Makes a by-value request with `webhook_url` and settles it through the store alone, as
/// a server stopped right after the settling transaction leaves it: no attempt was sent.
async fn settle_without_attempt(
    deployment: &Deployment,
    tenant: &Tenant,
    webhook_url: &str,
    correlation_id: &str,
) -> String {
    let made = make_request(
        deployment,
        tenant,
        json!({"dcql_query": identity_query(), "client_id_prefix": "redirect_uri",
               "webhook_url": webhook_url, "correlation_id": correlation_id}),
    )
    .await;
    let state = by_value(&made).state.unwrap();
    let context = deployment.tenancy.context(tenant.id).await.unwrap();
    let store = deployment.parts.verifier.store();
    let now = SystemClock.unix_seconds();
    let session = store
        .claim_response(&context, &state, now)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .settle(
                &context,
                &session.id,
                SessionStatus::Failed,
                &json!({"error": {"error": "access_denied"}}),
                None,
                now,
            )
            .await
            .unwrap()
    );
    session.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_receiver_gets_the_same_signed_event_until_it_answers() {
    let deployment = Deployment::sqlite_with(&http_settings()).await;
    let tenant = deployment.tenant("acme").await;
    let (status, generated) = put_secret(&deployment, &tenant, json!({})).await;
    assert_eq!(status, 201, "{generated}");
    let secret = generated["secret"].as_str().unwrap().to_owned();
    assert_eq!(URL_SAFE_NO_PAD.decode(&secret).unwrap().len(), 32);
    let (server, seen, url) = receiver(2).await;

    let issuer = pki("issuer");
    provision(&deployment, &tenant, &issuer).await;
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let credential = issue(&issuer, &holder).await;
    let made = make_request(
        &deployment,
        &tenant,
        json!({"dcql_query": identity_query(), "client_id_prefix": "redirect_uri",
               "correlation_id": "order-7", "webhook_url": url}),
    )
    .await;
    let request = by_value(&made);
    let aud = request.client_id.as_ref().unwrap().to_string();
    let presentation = present(
        &credential,
        &holder,
        &["given_name", "family_name"],
        &aud,
        &request.nonce,
    )
    .await;
    let (status, body) = post(
        &request,
        answer(presentation, request.state.clone()).to_form(),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // The first attempt follows the settling at once (and fails).
    for _ in 0..100 {
        if count(&seen) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&seen), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let now = SystemClock.unix_seconds();
    // Not due yet: the backoff holds it back.
    assert_eq!(run_job(&deployment, &tenant, now).await, 0);
    assert_eq!(count(&seen), 1);
    assert_eq!(run_job(&deployment, &tenant, now + 3600).await, 0);
    assert_eq!(count(&seen), 2);
    assert_eq!(run_job(&deployment, &tenant, now + 7200).await, 1);
    assert_eq!(count(&seen), 3);
    // Delivered: never sent again.
    assert_eq!(run_job(&deployment, &tenant, now + 10_800).await, 0);
    assert_eq!(count(&seen), 3);

    let received = seen.lock().unwrap().clone();
    let session_id = made["session_id"].as_str().unwrap();
    for event in &received {
        assert_eq!(event.id, received[0].id);
        assert_eq!(event.content_type, "application/json");
        assert!(signed_with(event, &secret), "{event:?}");
        let body: Value = serde_json::from_slice(&event.body).unwrap();
        assert_eq!(
            body,
            json!({"session_id": session_id, "correlation_id": "order-7",
                   "status": "verified", "event_id": event.id})
        );
    }
    // A changed body, id or timestamp does not verify.
    let mut forged = received[0].clone();
    forged.body = br#"{"status":"failed"}"#.to_vec();
    assert!(!signed_with(&forged, &secret));
    let mut forged = received[0].clone();
    forged.timestamp = "1".to_owned();
    assert!(!signed_with(&forged, &secret));

    server.shutdown().await.unwrap();
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_attempt_and_a_lapsed_session_are_delivered_by_another_replica() {
    let (first, second) = Deployment::postgres_replicas_with(&http_settings()).await;
    let tenant = first.tenant("acme").await;
    let secret = URL_SAFE_NO_PAD.encode([7_u8; 40]);
    let (status, body) = put_secret(&first, &tenant, json!({"secret": secret})).await;
    assert_eq!(status, 204, "{body}");
    let (server, seen, url) = receiver(0).await;

    let lapsed = make_request(
        &first,
        &tenant,
        json!({"dcql_query": identity_query(), "client_id_prefix": "redirect_uri",
               "webhook_url": url, "lifetime_secs": 1}),
    )
    .await;
    let settled = settle_without_attempt(&first, &tenant, &url, "settled").await;
    // One attempt is claimed by one replica at a time: the first claims it and stops
    // before sending; the second cannot claim it until the lease ends.
    let now = SystemClock.unix_seconds();
    let event_id = format!("{settled}.failed");
    let first_context = first.tenancy.context(tenant.id).await.unwrap();
    let second_context = second.tenancy.context(tenant.id).await.unwrap();
    let claimed = first
        .parts
        .verifier
        .store()
        .claim_delivery(&first_context, &event_id, now, now + 40)
        .await
        .unwrap();
    assert_eq!(claimed.unwrap().attempts, 1);
    let again = second
        .parts
        .verifier
        .store()
        .claim_delivery(&second_context, &event_id, now, now + 40)
        .await
        .unwrap();
    assert!(again.is_none());
    // The first replica sent nothing; once the lease ended, the second one's job delivers
    // both events.
    assert_eq!(count(&seen), 0);
    assert_eq!(run_job(&second, &tenant, now + 60).await, 2);
    assert_eq!(run_job(&second, &tenant, now + 7200).await, 0);
    // Retention clears the finished deliveries with the ended sessions; nothing is resent.
    let context = second.tenancy.context(tenant.id).await.unwrap();
    assert_eq!(deliveries(&second, &context).await, 2);
    let jobs = second.parts.jobs();
    jobs[0]
        .run(
            JobTarget::Tenant(&context),
            chrono::DateTime::from_timestamp(now + 7200, 0).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(deliveries(&second, &context).await, 0);
    assert_eq!(run_job(&second, &tenant, now + 14_400).await, 0);

    let received = seen.lock().unwrap().clone();
    assert_eq!(received.len(), 2);
    let mut bodies: Vec<Value> = received
        .iter()
        .map(|event| {
            assert!(signed_with(event, &secret));
            serde_json::from_slice(&event.body).unwrap()
        })
        .collect();
    bodies.sort_by_key(|body| body["status"].as_str().unwrap().to_owned());
    assert_eq!(bodies[0]["status"], "expired");
    assert_eq!(bodies[0]["session_id"], lapsed["session_id"]);
    assert_eq!(bodies[0]["correlation_id"], Value::Null);
    assert_eq!(bodies[1]["status"], "failed");
    assert_eq!(bodies[1]["session_id"], settled.as_str());
    assert_eq!(bodies[1]["correlation_id"], "settled");

    server.shutdown().await.unwrap();
    second.close().await;
    first.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_signs_with_its_own_secret_only() {
    let deployment = Deployment::sqlite_with(&http_settings()).await;
    let (server, seen, url) = receiver(0).await;
    let alpha = deployment.tenant("alpha").await;
    let beta = deployment.tenant("beta").await;
    let alpha_secret = URL_SAFE_NO_PAD.encode([1_u8; 32]);
    let beta_secret = URL_SAFE_NO_PAD.encode([2_u8; 32]);
    for (tenant, secret) in [(&alpha, &alpha_secret), (&beta, &beta_secret)] {
        let (status, body) = put_secret(&deployment, tenant, json!({"secret": secret})).await;
        assert_eq!(status, 204, "{body}");
    }
    settle_without_attempt(&deployment, &beta, &url, "beta-1").await;
    // Alpha's job does not send beta's event.
    let now = SystemClock.unix_seconds();
    assert_eq!(run_job(&deployment, &alpha, now).await, 0);
    assert_eq!(count(&seen), 0);
    assert_eq!(run_job(&deployment, &beta, now).await, 1);
    let received = seen.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert!(signed_with(&received[0], &beta_secret));
    assert!(!signed_with(&received[0], &alpha_secret));

    // Rotating alpha's secret leaves beta's signing alone.
    let (status, _) = put_secret(&deployment, &alpha, json!({})).await;
    assert_eq!(status, 201);
    settle_without_attempt(&deployment, &beta, &url, "beta-2").await;
    assert_eq!(run_job(&deployment, &beta, now).await, 1);
    let received = seen.lock().unwrap().clone();
    assert!(signed_with(&received[1], &beta_secret));

    server.shutdown().await.unwrap();
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_webhook_urls_and_secrets_are_refused() {
    let deployment = Deployment::sqlite().await;
    let tenant = deployment.tenant("acme").await;
    let request = |url: &str| {
        json!({"dcql_query": identity_query(), "client_id_prefix": "redirect_uri",
               "webhook_url": url})
    };
    // Without a secret, no webhook.
    let (status, body) = deployment
        .admin(
            &tenant,
            Method::POST,
            "/requests",
            Some(request("https://rp.example/hook")),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("webhook secret"), "{body}");

    for bad in [
        json!({"secret": "short"}),
        json!({"secret": URL_SAFE_NO_PAD.encode([0_u8; 31])}),
        json!({"secret": "not base64url!"}),
        json!({"secret": URL_SAFE_NO_PAD.encode([0_u8; 300])}),
    ] {
        let (status, body) = put_secret(&deployment, &tenant, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.to_string().contains("secret"), "{body}");
    }
    let secret = URL_SAFE_NO_PAD.encode([9_u8; 32]);
    let (status, _) = put_secret(&deployment, &tenant, json!({"secret": secret})).await;
    assert_eq!(status, 204);
    // The secret is never read back.
    let (status, _) = deployment
        .admin(&tenant, Method::GET, "/webhook-secret", None)
        .await;
    assert_eq!(status, 405);

    for bad in [
        "http://rp.example/hook",
        "not a url",
        "ftp://rp.example/hook",
        "https://rp.example/hook#frag",
        "https://user:pw@rp.example/hook",
    ] {
        let (status, body) = deployment
            .admin(&tenant, Method::POST, "/requests", Some(request(bad)))
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.to_string().contains("webhook_url"), "{body}");
    }
    make_request(&deployment, &tenant, request("https://rp.example/hook")).await;
    deployment.close().await;
}

/// Runs `sql` in the tenant's PostgreSQL schema.
async fn in_schema(deployment: &Deployment, context: &edk_tenancy::TenantContext, sql: &str) {
    let mut tx = deployment.tenancy.databases().begin(context).await.unwrap();
    let edk_tenancy::TenantTx::Postgres(pg) = &mut tx else {
        panic!("a PostgreSQL deployment");
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut **pg)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// The session's state change and its webhook delivery are one transaction: while the
/// database refuses the delivery row, neither settling nor expiring changes the session, and
/// once it accepts it both are written together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_changes_state_only_with_its_webhook_delivery() {
    let deployment = Deployment::postgres_with(&http_settings()).await;
    let tenant = deployment.tenant("acme").await;
    let (status, body) = put_secret(&deployment, &tenant, json!({})).await;
    assert_eq!(status, 201, "{body}");
    let url = "http://127.0.0.1:9/hook";
    let context = deployment.tenancy.context(tenant.id).await.unwrap();
    let store = deployment.parts.verifier.store();
    let now = SystemClock.unix_seconds();

    let made = make_request(
        &deployment,
        &tenant,
        json!({"dcql_query": identity_query(), "client_id_prefix": "redirect_uri",
               "webhook_url": url}),
    )
    .await;
    let state = by_value(&made).state.unwrap();
    let session = store
        .claim_response(&context, &state, now)
        .await
        .unwrap()
        .unwrap();
    let lapsing = make_request(
        &deployment,
        &tenant,
        json!({"dcql_query": identity_query(), "client_id_prefix": "redirect_uri",
               "webhook_url": url, "lifetime_secs": 1}),
    )
    .await;
    let lapsing = lapsing["session_id"].as_str().unwrap().to_owned();

    in_schema(
        &deployment,
        &context,
        "CREATE FUNCTION refuse_delivery() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'delivery refused'; END $$; \
         CREATE TRIGGER refuse_delivery BEFORE INSERT ON oid4vp_webhook_delivery \
         FOR EACH ROW EXECUTE FUNCTION refuse_delivery()",
    )
    .await;
    let outcome = json!({"error": {"error": "access_denied"}});
    assert!(
        store
            .settle(
                &context,
                &session.id,
                SessionStatus::Failed,
                &outcome,
                None,
                now
            )
            .await
            .is_err()
    );
    assert!(store.expire_lapsed(&context, now + 60).await.is_err());
    let status = async |id: &str| store.session(&context, id).await.unwrap().unwrap().status;
    assert_eq!(status(&session.id).await, SessionStatus::Responded);
    assert!(status(&lapsing).await.is_open(), "still open");
    assert_eq!(deliveries(&deployment, &context).await, 0);

    in_schema(
        &deployment,
        &context,
        "DROP TRIGGER refuse_delivery ON oid4vp_webhook_delivery; DROP FUNCTION refuse_delivery()",
    )
    .await;
    assert!(
        store
            .settle(
                &context,
                &session.id,
                SessionStatus::Failed,
                &outcome,
                None,
                now
            )
            .await
            .unwrap()
    );
    assert_eq!(store.expire_lapsed(&context, now + 60).await.unwrap(), 1);
    assert_eq!(status(&session.id).await, SessionStatus::Failed);
    assert_eq!(status(&lapsing).await, SessionStatus::Expired);
    assert_eq!(deliveries(&deployment, &context).await, 2);
    deployment.close().await;
}
