//! `PurgeExpiredJob` under the tenancy scheduler, with a controlled clock: expired codes,
//! pushed requests and DPoP `jti`s go, live ones stay.

use std::sync::Arc;
use std::time::Duration;

use edk_oauth::client::{ClientAuthMethod, GrantType};
use edk_oauth::grant::Grant;
use edk_oauth::jobs::PurgeExpiredJob;
use edk_oauth::{AsConfig, AuthorizeOutcome, EndpointCall, Params, PreAuthorizedCodeRequest};
use edk_tenancy::Scheduler;

use crate::support::{Backend, DpopKey, Env, NOW, count_rows, on_both_backends, pkce};

const TABLES: [&str; 4] = [
    "oauth_code",
    "oauth_par",
    "oauth_jti",
    "oauth_pre_auth_code",
];

async fn counts(env: &Env) -> Vec<i64> {
    let mut all = Vec::new();
    for table in TABLES {
        all.push(count_rows(&env.backend.tenancy, &env.tenant, table).await);
    }
    all
}

/// One authorization code, one pushed request and one DPoP `jti`, made at the clock's time.
async fn make_state(env: &Env, public: &str, secret_client: (&str, &str), now: i64) {
    let (_, challenge) = pkce();
    let params = Params::from_pairs([
        ("response_type", "code"),
        ("client_id", public),
        ("redirect_uri", "https://client.example/cb"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let outcome = env.server.authorize(&env.tenant, &params).await.unwrap();
    assert!(
        matches!(outcome, AuthorizeOutcome::Redirect(_)),
        "{outcome:?}"
    );
    let par = EndpointCall::post(Params::from_pairs([
        ("client_id", public),
        ("response_type", "code"),
        ("redirect_uri", "https://client.example/cb"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]));
    env.server.par(&env.tenant, &par).await.unwrap();
    let (id, secret) = secret_client;
    let token = EndpointCall::post(Params::from_pairs([
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
    ]))
    .with_dpop(
        DpopKey::new()
            .proof("POST", "https://as.example/acme/token", now, None, None)
            .await,
    );
    env.server.token(&env.tenant, &token).await.unwrap();
}

async fn expired_state_is_purged_and_live_state_stays(backend: Backend) {
    let mut config = AsConfig::default();
    config.dpop_nonce_required = false;
    let env = Env::with_config(backend, config).await;
    let (public, _) = env
        .client(
            ClientAuthMethod::None,
            vec![GrantType::AuthorizationCode],
            |_| {},
        )
        .await;
    let (id, secret) = env
        .client(
            ClientAuthMethod::ClientSecretPost,
            vec![GrantType::ClientCredentials],
            |_| {},
        )
        .await;
    let secret = secret.unwrap();
    // Codes and pushed requests live 60 s, DPoP jtis 600 s; one pre-authorized code lives
    // a day.
    make_state(&env, &public, (&id, &secret), NOW).await;
    let mut long = PreAuthorizedCodeRequest::new(Grant::new("holder"));
    long.ttl = Some(86_400);
    env.server
        .mint_pre_authorized_code(&env.tenant, long)
        .await
        .unwrap();
    env.clock.advance(Duration::from_secs(601));
    // The same again, live at the new time.
    make_state(&env, &public, (&id, &secret), NOW + 601).await;
    assert_eq!(counts(&env).await, [2, 2, 2, 1]);

    let scheduler = Scheduler::builder(env.backend.tenancy.clone())
        .clock(env.clock.clone())
        .job(Arc::new(PurgeExpiredJob::new(Arc::clone(
            env.server.store(),
        ))))
        .build()
        .unwrap();
    let report = scheduler.tick().await;
    let run = report.job(PurgeExpiredJob::NAME).unwrap();
    assert_eq!(run.failures, 0);
    // The code, the pushed request, the jti, and the DPoP nonce sent with the first token.
    assert_eq!(run.items, 4);
    assert_eq!(counts(&env).await, [1, 1, 1, 1]);

    // A day later everything of the first days is gone.
    env.clock.advance(Duration::from_secs(86_400));
    scheduler.tick().await;
    assert_eq!(counts(&env).await, [0, 0, 0, 0]);
    env.close().await;
}
on_both_backends!(expired_state_is_purged_and_live_state_stays);
