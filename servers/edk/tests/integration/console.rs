//! The admin console in the all-in-one `edk`: served at `/admin-console` beside the APIs, and
//! registered at the operator authorization server for the port `edk` listens on.

use std::sync::Arc;

use edk::EdkConfig;
use edk_core::SystemClock;
use reqwest::Url;

use crate::support::Running;

#[tokio::test]
async fn the_console_is_served_and_registered_for_the_bound_port() {
    let running = Running::start(&EdkConfig::default(), Arc::new(SystemClock), true).await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = browser
        .get(running.url("/admin-console/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );
    assert!(page.text().await.unwrap().contains("<h1>Sign in</h1>"));

    let login = browser
        .get(running.url("/admin-console/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 303);
    let authorize = Url::parse(login.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(
        authorize.as_str().split('?').next().unwrap(),
        running.url("/operators/authorize")
    );
    let callback = running.url("/admin-console/callback");
    assert!(
        authorize
            .query_pairs()
            .any(|(key, value)| key == "redirect_uri" && value == callback.as_str())
    );

    // The operator authorization server knows the console and its redirect URI: with no
    // upstream provider configured it answers the console, not an error page of its own.
    let answer = browser.get(authorize.as_str()).send().await.unwrap();
    assert_eq!(
        answer.status().as_u16(),
        303,
        "{}",
        answer.text().await.unwrap()
    );
    let back = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with(&callback), "{back}");
    assert!(back.contains("error="), "{back}");
    running.stop().await;
}
