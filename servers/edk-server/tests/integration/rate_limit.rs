//! Rate limits on a real Redis shared by two limiters (two replicas), and on a Redis that
//! does not answer.

use std::sync::Arc;
use std::time::Duration;

use edk_core::{FixedClock, TenantId};
use edk_server::rate_limit::{Limit, Limits, RateLimitConfig};
use edk_server::{Decision, Metrics, RateKey, RateLimiter, Scope};

const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A key prefix of its own for one test, and its keys deleted when dropped.
struct Prefix(String);

impl Prefix {
    fn new() -> Self {
        Self(format!("edk-test:{}:", uuid::Uuid::new_v4()))
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

fn config(redis: &serde_json::Value, on_error: &str) -> RateLimitConfig {
    serde_json::from_value(serde_json::json!({
        "redis": redis,
        "on_backend_error": on_error,
        "limits": {"per_client": {"requests": 3, "window_secs": 60}}
    }))
    .unwrap()
}

fn open_limits() -> Limits {
    Limits {
        per_client: Some(Limit {
            requests: 3,
            window_secs: 60,
        }),
        ..Limits::default()
    }
}

fn tenant() -> TenantId {
    TenantId::from_uuid(uuid::Uuid::new_v4())
}

#[tokio::test]
async fn two_replicas_share_their_counters_in_redis_until_the_window_ends() {
    let prefix = Prefix::new();
    let clock = Arc::new(FixedClock::at_unix(1_800_000_000));
    let config = config(
        &serde_json::json!({"url": REDIS_URL, "key_prefix": prefix.0}),
        "open",
    );
    let metrics = Metrics::new().unwrap();
    let a = RateLimiter::new(&config, clock.clone(), Some(&metrics)).unwrap();
    let b = RateLimiter::new(&config, clock.clone(), Some(&metrics)).unwrap();
    let tenant = tenant();
    let other = Limits {
        per_client: Some(Limit {
            requests: 3,
            window_secs: 60,
        }),
        ..Limits::default()
    };
    let key = [RateKey::new(Scope::Client, "wallet")];
    for _ in 0..3 {
        assert_eq!(
            a.check_limits(tenant, &other, &key).await,
            Decision::Allowed
        );
    }
    let Decision::Limited {
        scope,
        retry_after_secs,
    } = b.check_limits(tenant, &other, &key).await
    else {
        panic!("replica B let a fourth request through");
    };
    assert_eq!(scope, Scope::Client);
    assert!((1..=60).contains(&retry_after_secs), "{retry_after_secs}");
    // Another client and another tenant have budgets of their own.
    let wallet2 = [RateKey::new(Scope::Client, "wallet-2")];
    assert_eq!(
        b.check_limits(tenant, &other, &wallet2).await,
        Decision::Allowed
    );
    assert_eq!(
        b.check_limits(self::tenant(), &other, &key).await,
        Decision::Allowed
    );
    assert!(
        metrics
            .render()
            .contains("rate_limited_requests_total{scope=\"client\"} 1")
    );
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        b.check_limits(tenant, &other, &key).await,
        Decision::Allowed
    );
}

#[tokio::test]
async fn a_tenant_override_replaces_the_process_limit_for_that_tenant_only() {
    let prefix = Prefix::new();
    let clock = Arc::new(FixedClock::at_unix(1_800_000_000));
    let limiter = RateLimiter::new(
        &config(
            &serde_json::json!({"url": REDIS_URL, "key_prefix": prefix.0}),
            "open",
        ),
        clock,
        None,
    )
    .unwrap();
    let process = limiter.limits_for(&edk_tenancy::TenantConfig::default());
    let strict = process.overridden_by(&Limits {
        per_client: Some(Limit {
            requests: 1,
            window_secs: 60,
        }),
        ..Limits::default()
    });
    let key = [RateKey::new(Scope::Client, "wallet")];
    let (one, two) = (tenant(), tenant());
    assert_eq!(
        limiter.check_limits(one, &strict, &key).await,
        Decision::Allowed
    );
    assert!(matches!(
        limiter.check_limits(one, &strict, &key).await,
        Decision::Limited { .. }
    ));
    for _ in 0..3 {
        assert_eq!(
            limiter.check_limits(two, &process, &key).await,
            Decision::Allowed
        );
    }
}

#[tokio::test]
async fn a_redis_that_does_not_answer_lets_requests_through_or_refuses_them_as_configured() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", closed.local_addr().unwrap());
    drop(closed);
    let clock = Arc::new(FixedClock::at_unix(1_800_000_000));
    let metrics = Metrics::new().unwrap();
    let key = [RateKey::new(Scope::Client, "wallet")];
    let tenant = tenant();
    let none = open_limits();

    let open = RateLimiter::new(
        &config(&serde_json::json!({"url": url}), "open"),
        clock.clone(),
        Some(&metrics),
    )
    .unwrap();
    for _ in 0..5 {
        assert_eq!(
            open.check_limits(tenant, &none, &key).await,
            Decision::Allowed
        );
    }
    let closed = RateLimiter::new(
        &config(&serde_json::json!({"url": url}), "closed"),
        clock,
        Some(&metrics),
    )
    .unwrap();
    let decision = closed.check_limits(tenant, &none, &key).await;
    assert_eq!(
        decision,
        Decision::Unavailable {
            retry_after_secs: 1
        }
    );
    let response = decision.problem_response().unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let text = metrics.render();
    assert!(
        text.contains("rate_limit_backend_errors_total{on_backend_error=\"open\"} 5"),
        "{text}"
    );
    assert!(
        text.contains("rate_limit_backend_errors_total{on_backend_error=\"closed\"} 1"),
        "{text}"
    );
}
