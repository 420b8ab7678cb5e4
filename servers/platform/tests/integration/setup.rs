//! First-run setup: the one-time token creates the first operator once; the operator's
//! client-credentials tokens open the platform API, others do not.

use reqwest::Method;

use crate::support::{Backend, Platform};

async fn setup_creates_one_operator_and_closes(backend: Backend) {
    let platform = Platform::start(backend).await;
    let token = platform.setup_token();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&platform.token_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the token file is owner-only");
    }
    assert!(platform.started.setup_token().is_some());

    let (status, body) = platform.setup("not-the-token").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["detail"], "the setup token is not valid");

    let (status, operator) = platform.setup(&token).await;
    assert_eq!(status, 201, "{operator}");
    assert_eq!(
        operator["issuer"],
        platform.url("/operators").as_str(),
        "{operator}"
    );
    assert_eq!(
        operator["scopes"],
        serde_json::json!([
            "platform:tenants:read",
            "platform:tenants:write",
            "tenant:config:read",
            "tenant:config:write",
            "tenant:audit:read",
            "platform:operators:read",
            "platform:operators:write"
        ])
    );

    // Replayed or repeated: closed for good.
    let (status, body) = platform.setup(&token).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["detail"], "first-run setup is closed");

    // The operator's token opens the platform API; no token, a bad token or a token
    // without the scope do not.
    let read = platform
        .operator_token(&operator, "platform:tenants:read")
        .await;
    let (status, body) = platform
        .call(Method::GET, "/api/platform/v1/tenants", Some(&read), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["tenants"],
        serde_json::json!([]),
        "the realm is not listed"
    );
    let (status, body) = platform
        .call(Method::GET, "/api/platform/v1/tenants", None, None)
        .await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = platform
        .call(
            Method::GET,
            "/api/platform/v1/tenants",
            Some(&format!("{read}x")),
            None,
        )
        .await;
    assert_eq!(status, 401);
    let write = platform
        .operator_token(&operator, "platform:tenants:write")
        .await;
    let (status, body) = platform
        .call(Method::GET, "/api/platform/v1/tenants", Some(&write), None)
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["detail"],
        "the token lacks the scope `platform:tenants:read`"
    );
    let realm = platform.started.realm().to_string();
    let (status, _) = platform
        .call(
            Method::GET,
            &format!("/api/platform/v1/tenants/{realm}"),
            Some(&read),
            None,
        )
        .await;
    assert_eq!(status, 404, "the realm is not a tenant of the API");
    platform.close().await;
}

#[tokio::test]
async fn setup_creates_one_operator_and_closes_on_sqlite() {
    Box::pin(setup_creates_one_operator_and_closes(Backend::Sqlite)).await;
}

#[tokio::test]
async fn setup_creates_one_operator_and_closes_on_postgres() {
    Box::pin(setup_creates_one_operator_and_closes(Backend::Postgres)).await;
}

async fn concurrent_setup_calls_have_one_winner(backend: Backend) {
    let platform = Platform::start(backend).await;
    let token = platform.setup_token();
    let calls = (0..6).map(|_| platform.setup(&token));
    let results = futures::future::join_all(calls).await;
    let won: Vec<_> = results
        .iter()
        .filter(|(status, _)| *status == 201)
        .collect();
    assert_eq!(won.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|(status, _)| *status == 201 || *status == 403),
        "{results:?}"
    );
    platform.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_setup_calls_have_one_winner_on_sqlite() {
    concurrent_setup_calls_have_one_winner(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_setup_calls_have_one_winner_on_postgres() {
    concurrent_setup_calls_have_one_winner(Backend::Postgres).await;
}

#[tokio::test]
async fn a_restart_before_setup_keeps_the_token_in_the_file() {
    let platform = Platform::start(Backend::Sqlite).await;
    let first = platform.setup_token();
    let tenancy = platform.started.deps().tenancy().clone();
    let again = edk_platform_server::setup::issue_token(&tenancy, Some(&platform.token_file))
        .await
        .unwrap();
    assert!(again.is_none(), "the file still holds the current token");
    assert_eq!(platform.setup_token(), first);
    let (status, _) = platform.setup(&first).await;
    assert_eq!(status, 201);
    let after = edk_platform_server::setup::issue_token(&tenancy, None)
        .await
        .unwrap();
    assert!(after.is_none(), "no token once setup is closed");
    platform.close().await;
}
