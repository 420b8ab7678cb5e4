use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use edk_server::{HealthApi, HttpConfig, ReadinessCheck};

use crate::support::Harness;

#[derive(Debug)]
struct Fixed {
    name: &'static str,
    ok: bool,
}

#[async_trait]
impl ReadinessCheck for Fixed {
    fn name(&self) -> &str {
        self.name
    }

    async fn check(&self) -> Result<(), String> {
        if self.ok {
            Ok(())
        } else {
            Err("does not answer".to_owned())
        }
    }
}

#[tokio::test]
async fn live_is_always_ok() {
    let health = HealthApi::new().with_check(Arc::new(Fixed {
        name: "db",
        ok: false,
    }));
    let h = Harness::start_with(health, HttpConfig::default()).await;
    let response = h.client.get(h.url("/health/live")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn ready_when_every_check_passes() {
    let health = HealthApi::new().with_check(Arc::new(Fixed {
        name: "kms",
        ok: true,
    }));
    let h = Harness::start_with(health, HttpConfig::default()).await;
    let response = h.client.get(h.url("/health/ready")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn not_ready_when_a_check_fails() {
    let health = HealthApi::new()
        .with_check(Arc::new(Fixed {
            name: "kms",
            ok: true,
        }))
        .with_check(Arc::new(Fixed {
            name: "db",
            ok: false,
        }));
    let h = Harness::start_with(health, HttpConfig::default()).await;
    let response = h.client.get(h.url("/health/ready")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"][1]["name"], "db");
    assert_eq!(body["checks"][1]["ok"], false);
}
