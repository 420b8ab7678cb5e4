//! Rate limits on the protocol endpoints over real HTTP: shared by two replicas through a
//! real Redis, per replica in memory, overridden for one tenant, with Redis down, against a
//! `tx_code` brute force, and after the window ends.

use std::sync::Arc;
use std::time::Duration;

use edk_core::{Clock, FixedClock, SystemClock};
use edk_server::RateLimitConfig;
use serde_json::{Value, json};

use crate::support::{Deployment, Replica, Tenant, http};

const REDIS_URL: &str = "redis://127.0.0.1:6379";
const PRE_AUTHORIZED: &str = "urn:ietf:params:oauth:grant-type:pre-authorized_code";

/// A Redis key prefix of one test's own; its keys are deleted when it is dropped.
struct Prefix(String);

impl Prefix {
    fn new() -> Self {
        Self(format!("edk-test:{}:", uuid::Uuid::new_v4()))
    }

    fn redis(&self) -> Value {
        json!({"url": REDIS_URL, "key_prefix": self.0})
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(REDIS_URL) else {
            return;
        };
        let Ok(mut connection) = client.get_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.0))
            .query(&mut connection)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut connection);
        }
    }
}

/// A `rate_limits` section, leaked so that replicas built in a loop can borrow it.
fn limits(value: Value) -> &'static RateLimitConfig {
    Box::leak(Box::new(serde_json::from_value(value).unwrap()))
}

fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// A POST of `form` to the tenant's `path` on `replica`: the status, `Retry-After` and body.
async fn post(
    replica: &Replica,
    tenant: &Tenant,
    path: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, Option<u64>, Value) {
    let slug = tenant.base.rsplit_once('/').map(|(_, slug)| slug).unwrap();
    let mut request = http()
        .post(format!("{}/{slug}{path}", replica.http.url("")))
        .header("host", &tenant.host)
        .form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().parse().unwrap());
    (
        status,
        retry_after,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// A confidential client of `tenant` allowed the client credentials grant.
async fn client(deployment: &Deployment, tenant: &Tenant) -> (String, String) {
    let token = deployment
        .admin_token(tenant.id, "oauth2:read oauth2:write")
        .await;
    let created: Value = http()
        .post(format!(
            "{}/api/oauth2/v1/clients",
            deployment.first().http.url("")
        ))
        .bearer_auth(&token)
        .json(&json!({
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["client_credentials"], "scopes": ["read"],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        created["client"]["client_id"].as_str().unwrap().to_owned(),
        created["client_secret"].as_str().unwrap().to_owned(),
    )
}

fn assert_limited(status: u16, retry_after: Option<u64>, body: &Value, window_secs: u64) {
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    let retry_after = retry_after.expect("a 429 carries Retry-After");
    assert!((1..=window_secs).contains(&retry_after), "{retry_after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_limit_reached_on_one_replica_holds_on_the_other_through_redis() {
    let prefix = Prefix::new();
    let config = limits(json!({
        "redis": prefix.redis(),
        "limits": {"per_client": {"requests": 3, "window_secs": 60}}
    }));
    let deployment = Deployment::postgres_limited(2, |_| Some((config, system()))).await;
    let tenant = deployment.tenant("acme").await;
    let (id, secret) = client(&deployment, &tenant).await;
    let basic = Some((id.as_str(), secret.as_str()));
    let form = [("grant_type", "client_credentials")];
    let (a, b) = (&deployment.replicas[0], &deployment.replicas[1]);
    for _ in 0..3 {
        let (status, _, body) = post(a, &tenant, "/token", &form, basic).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, retry_after, body) = post(b, &tenant, "/token", &form, basic).await;
    assert_limited(status, retry_after, &body, 60);
    // The limit is the client's: another client of the tenant is served.
    let (other, other_secret) = client(&deployment, &tenant).await;
    let (status, _, body) = post(
        b,
        &tenant,
        "/token",
        &form,
        Some((other.as_str(), other_secret.as_str())),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_each_replica_counts_on_its_own() {
    let config = limits(json!({"limits": {"per_client": {"requests": 2, "window_secs": 60}}}));
    let deployment = Deployment::postgres_limited(2, |_| Some((config, system()))).await;
    let tenant = deployment.tenant("acme").await;
    let (id, secret) = client(&deployment, &tenant).await;
    let basic = Some((id.as_str(), secret.as_str()));
    let form = [("grant_type", "client_credentials")];
    let (a, b) = (&deployment.replicas[0], &deployment.replicas[1]);
    for _ in 0..2 {
        assert_eq!(post(a, &tenant, "/token", &form, basic).await.0, 200);
    }
    let (status, retry_after, body) = post(a, &tenant, "/token", &form, basic).await;
    assert_limited(status, retry_after, &body, 60);
    for _ in 0..2 {
        assert_eq!(post(b, &tenant, "/token", &form, basic).await.0, 200);
    }
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_override_limits_that_tenant_only() {
    let config = limits(json!({}));
    let deployment = Deployment::postgres_limited(1, |_| Some((config, system()))).await;
    let strict = deployment.tenant("strict").await;
    let free = deployment.tenant("free").await;
    deployment
        .first()
        .tenancy
        .set_config(
            Some(strict.id),
            "rate_limits",
            json!({"per_ip": {"requests": 1, "window_secs": 60}}),
            None,
        )
        .await
        .unwrap();
    let err = deployment
        .first()
        .tenancy
        .set_config(
            Some(free.id),
            "rate_limits",
            json!({"per_ip": {"requests": 0, "window_secs": 60}}),
            None,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("rate_limits"), "{err}");
    let replica = deployment.first();
    let (status, _, body) = post(replica, &strict, "/par", &[], None).await;
    assert_ne!(status, 429, "{body}");
    let (status, retry_after, body) = post(replica, &strict, "/par", &[], None).await;
    assert_limited(status, retry_after, &body, 60);
    for _ in 0..5 {
        let (status, _, body) = post(replica, &free, "/par", &[], None).await;
        assert_ne!(status, 429, "{body}");
    }
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_does_not_answer_fails_open_or_closed_as_configured() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", closed.local_addr().unwrap());
    drop(closed);
    let section = |policy: &str| {
        limits(json!({
            "redis": {"url": url},
            "on_backend_error": policy,
            "limits": {"per_ip": {"requests": 1, "window_secs": 60}}
        }))
    };
    let (open, closed) = (section("open"), section("closed"));
    let deployment = Deployment::postgres_limited(2, |index| {
        Some((if index == 0 { open } else { closed }, system()))
    })
    .await;
    let tenant = deployment.tenant("acme").await;
    let form = [("grant_type", "client_credentials")];
    for _ in 0..3 {
        let (status, _, body) = post(&deployment.replicas[0], &tenant, "/token", &form, None).await;
        assert!(status != 429 && status != 503, "{status} {body}");
    }
    let (status, retry_after, body) =
        post(&deployment.replicas[1], &tenant, "/token", &form, None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert_eq!(retry_after, Some(1));
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tx_code_brute_force_is_cut_off_across_replicas() {
    let prefix = Prefix::new();
    let config = limits(json!({
        "redis": prefix.redis(),
        "limits": {"per_pre_authorized_code": {"requests": 2, "window_secs": 300}}
    }));
    let deployment = Deployment::postgres_limited(2, |_| Some((config, system()))).await;
    let tenant = deployment.tenant("acme").await;
    let token = deployment
        .admin_token(tenant.id, "oauth2:read oauth2:write")
        .await;
    let minted: Value = http()
        .post(format!(
            "{}/api/oauth2/v1/pre-authorized-codes",
            deployment.first().http.url("")
        ))
        .bearer_auth(&token)
        .json(&json!({"subject": "holder", "tx_code_digits": 6}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = minted["pre-authorized_code"].as_str().unwrap();
    let tx = minted["tx_code"].as_str().unwrap();
    let wrong = if tx == "000000" { "111111" } else { "000000" };
    let attempt = |tx_code| {
        [
            ("grant_type", PRE_AUTHORIZED),
            ("pre-authorized_code", code),
            ("tx_code", tx_code),
        ]
    };
    for replica in &deployment.replicas {
        let (status, _, body) = post(replica, &tenant, "/token", &attempt(wrong), None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
    }
    // Cut off on either replica, even with the right code: the guesses stop here.
    for replica in &deployment.replicas {
        let (status, retry_after, body) =
            post(replica, &tenant, "/token", &attempt(tx), None).await;
        assert_limited(status, retry_after, &body, 300);
    }
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_resets_when_it_ends() {
    let prefix = Prefix::new();
    let clock = Arc::new(FixedClock::at_unix(1_900_000_000));
    let config = limits(json!({
        "redis": prefix.redis(),
        "limits": {"per_tenant": {"requests": 1, "window_secs": 30}}
    }));
    let limiter_clock: Arc<dyn Clock> = clock.clone();
    let deployment =
        Deployment::postgres_limited(1, move |_| Some((config, Arc::clone(&limiter_clock)))).await;
    let tenant = deployment.tenant("acme").await;
    let replica = deployment.first();
    let (status, _, body) = post(replica, &tenant, "/par", &[], None).await;
    assert_ne!(status, 429, "{body}");
    let (status, retry_after, body) = post(replica, &tenant, "/par", &[], None).await;
    assert_limited(status, retry_after, &body, 30);
    clock.advance(Duration::from_secs(30));
    let (status, _, body) = post(replica, &tenant, "/par", &[], None).await;
    assert_ne!(status, 429, "{body}");
    deployment.close().await;
}
