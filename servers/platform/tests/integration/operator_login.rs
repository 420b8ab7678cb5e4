//! Operators log in through the operator authorization server's upstream OpenID Provider
//! (npm `oidc-provider`, a real one): an upstream user an operator allowed (by subject or by
//! verified email) gets an operator token with platform scopes by authorization code and
//! PKCE; any other upstream user gets `access_denied` and no code.

use std::collections::BTreeMap;

use base64::Engine as _;
use edk_testkit::oidc_provider::OidcProvider;
use reqwest::{Method, Url};
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::support::{Backend, Platform, UPSTREAM_SECRET, read};

const CONSOLE: &str = "http://127.0.0.1:9/console/callback";
const VERIFIER: &str = "operator-console-pkce-verifier-0123456789-abcdefghijklmnop";

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(response: &reqwest::Response) -> Url {
    Url::parse(response.headers()["location"].to_str().unwrap()).unwrap()
}

fn query(url: &Url) -> BTreeMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// Logs `login` in at the upstream through the console client: the answer of the operator
/// authorization server's callback.
async fn log_in(
    platform: &Platform,
    op: &OidcProvider,
    client_id: &str,
    login: &str,
) -> reqwest::Response {
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(VERIFIER.as_bytes()));
    let response = browser()
        .get(platform.url("/operators/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", CONSOLE),
            ("scope", "platform:tenants:read platform:operators:read"),
            ("state", "console-state"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let to_provider = location(&response);
    assert!(
        to_provider.as_str().starts_with(op.issuer()),
        "{to_provider}"
    );
    let callback = platform.url("/operators/callback");
    let back = op.login(to_provider.as_str(), login, &callback).await;
    browser()
        .get(format!("{callback}?{}", back.query().unwrap()))
        .send()
        .await
        .unwrap()
}

async fn operators_log_in_through_the_upstream(backend: Backend) {
    let platform = Platform::start(backend).await;
    let (operator, ops) = platform.first_operator().await;

    // The upstream, the allowed users and the console client, set by an operator.
    let (op, status, view) = platform.upstream(&ops).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["client_secret_sealed"], true);
    assert!(!view.to_string().contains(UPSTREAM_SECRET));
    for (record, expected) in [
        (json!({"subject": "alice"}), 201),
        (json!({"email": "carol@example.test"}), 201),
        (json!({"subject": "alice"}), 409),
        (json!({}), 400),
        (json!({"subject": ""}), 400),
    ] {
        let (status, body) = platform
            .call(
                Method::POST,
                "/api/platform/v1/operators/federated",
                Some(&ops),
                Some(record.clone()),
            )
            .await;
        assert_eq!(status, expected, "{record}: {body}");
    }
    let (status, list) = platform
        .call(
            Method::GET,
            "/api/platform/v1/operators/federated",
            Some(&ops),
            None,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["operators"].as_array().unwrap().len(), 2);
    assert_eq!(list["operators"][0]["created_by"], operator["client_id"]);
    let (status, bad) = platform
        .call(
            Method::POST,
            "/api/platform/v1/operators/clients",
            Some(&ops),
            Some(json!({"redirect_uris": [CONSOLE], "scopes": ["tenant:admin"]})),
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    let (status, console) = platform
        .call(
            Method::POST,
            "/api/platform/v1/operators/clients",
            Some(&ops),
            Some(json!({"client_id": "console", "redirect_uris": [CONSOLE]})),
        )
        .await;
    assert_eq!(status, 201, "{console}");
    assert!(console.get("client_secret").is_none(), "{console}");

    // Allowed by subject and by verified email: a code, then an operator token.
    for login in ["alice", "carol"] {
        let response = log_in(&platform, &op, "console", login).await;
        assert_eq!(response.status().as_u16(), 303, "{login}");
        let back = location(&response);
        assert!(back.as_str().starts_with(CONSOLE), "{back}");
        let params = query(&back);
        assert_eq!(params["state"], "console-state");
        let response = platform
            .client
            .post(console["token_endpoint"].as_str().unwrap())
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", "console"),
                ("code", params["code"].as_str()),
                ("redirect_uri", CONSOLE),
                ("code_verifier", VERIFIER),
            ])
            .send()
            .await
            .unwrap();
        let (status, tokens) = read(response).await;
        assert_eq!(status, 200, "{login}: {tokens}");
        assert_eq!(
            tokens["scope"],
            "platform:tenants:read platform:operators:read"
        );
        let token = tokens["access_token"].as_str().unwrap();
        let (status, tenants) = platform
            .call(Method::GET, "/api/platform/v1/tenants", Some(token), None)
            .await;
        assert_eq!(status, 200, "{login}: {tenants}");
        let (status, _) = platform
            .call(
                Method::POST,
                "/api/platform/v1/operators/federated",
                Some(token),
                Some(json!({"subject": "mallory"})),
            )
            .await;
        assert_eq!(
            status, 403,
            "{login}: the token has only the scopes asked for"
        );
    }

    // An upstream user nobody allowed: access_denied at the callback, no code.
    let response = log_in(&platform, &op, "console", "bob").await;
    assert!(response.headers().get("location").is_none());
    let (status, refused) = read(response).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "access_denied");

    // Only operators manage operators.
    let (status, _) = platform
        .call(
            Method::GET,
            "/api/platform/v1/operators/federated",
            None,
            None,
        )
        .await;
    assert_eq!(status, 401);
    let admin = platform
        .tenant_admin_token(
            &platform.started.realm().to_string(),
            "platform:operators:write",
        )
        .await;
    let (status, body): (u16, Value) = platform
        .call(
            Method::POST,
            "/api/platform/v1/operators/federated",
            Some(&admin),
            Some(json!({"subject": "mallory"})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    drop(op);
    platform.close().await;
}

#[tokio::test]
async fn operators_log_in_through_the_upstream_on_sqlite() {
    Box::pin(operators_log_in_through_the_upstream(Backend::Sqlite)).await;
}

#[tokio::test]
async fn operators_log_in_through_the_upstream_on_postgres() {
    Box::pin(operators_log_in_through_the_upstream(Backend::Postgres)).await;
}
