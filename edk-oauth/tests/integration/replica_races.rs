//! Two authorization server replicas on one PostgreSQL database, racing: one code redeemed
//! at once through both (exactly one wins), and wrong `tx_code` guesses in parallel through
//! both (the attempt limit holds across replicas).

use std::sync::Arc;

use edk_oauth::client::{ClientAuthMethod, GrantType};
use edk_oauth::grant::Grant;
use edk_oauth::{
    AsConfig, AuthorizationServer, EndpointCall, Error, OAuthErrorCode, Params,
    PreAuthorizedCodeRequest,
};
use edk_tenancy::TenantContext;
use futures::future::join_all;
use secrecy::ExposeSecret;

use crate::flows::authorize;
use crate::support::{Backend, Env, pkce, resolve, server};

const PRE_AUTHORIZED: &str = "urn:ietf:params:oauth:grant-type:pre-authorized_code";

fn form(pairs: &[(&str, &str)]) -> EndpointCall {
    EndpointCall::post(Params::from_pairs(pairs.iter().copied()))
}

/// The first replica of `env` and a second one: its own tenancy, KMS and server over the
/// same database, key encryption key and clock.
async fn replicas(env: &Env) -> [(Arc<AuthorizationServer>, TenantContext); 2] {
    let tenancy = env.backend.replica().await;
    let second = server(&tenancy, &env.kek, env.clock.clone(), AsConfig::default());
    let tenant = resolve(&tenancy, "acme").await;
    [
        (Arc::clone(&env.server), env.tenant.clone()),
        (second, tenant),
    ]
}

/// Sends `calls` at once, alternating between the replicas; returns the successes and the
/// errors.
async fn race(
    replicas: &[(Arc<AuthorizationServer>, TenantContext); 2],
    calls: Vec<EndpointCall>,
) -> (usize, Vec<Error>) {
    let tasks = calls.into_iter().enumerate().map(|(i, call)| {
        let (server, tenant) = replicas[i % 2].clone();
        tokio::spawn(async move { server.token(&tenant, &call).await })
    });
    let mut ok = 0;
    let mut errors = Vec::new();
    for result in join_all(tasks).await {
        match result.unwrap() {
            Ok(_) => ok += 1,
            Err(err) => errors.push(err),
        }
    }
    (ok, errors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_redeem_one_authorization_code_once() {
    let env = Env::new(Backend::postgres().await).await;
    let replicas = replicas(&env).await;
    let (id, _) = env
        .client(
            ClientAuthMethod::None,
            vec![GrantType::AuthorizationCode],
            |_| {},
        )
        .await;
    let (verifier, challenge) = pkce();
    let code = authorize(&env, &id, &challenge, &[]).await;
    let call = form(&[
        ("grant_type", "authorization_code"),
        ("client_id", &id),
        ("code", &code),
        ("redirect_uri", "https://client.example/cb"),
        ("code_verifier", &verifier),
    ]);
    let (ok, errors) = race(&replicas, vec![call; 32]).await;
    assert_eq!(ok, 1, "exactly one redemption wins: {errors:?}");
    assert_eq!(errors.len(), 31);
    for err in &errors {
        assert_eq!(err.code(), OAuthErrorCode::InvalidGrant, "{err:?}");
    }
    env.close().await;
}

/// Mints a pre-authorized code with a 6-digit `tx_code`; returns both and a wrong `tx_code`.
async fn mint(env: &Env) -> (String, String, String) {
    let minted = env
        .server
        .mint_pre_authorized_code(
            &env.tenant,
            PreAuthorizedCodeRequest::new(Grant::new("holder")).with_tx_code(6),
        )
        .await
        .unwrap();
    let code = minted.code.expose_secret().to_owned();
    let tx = minted.tx_code.unwrap().expose_secret().to_owned();
    let wrong = if tx == "000000" { "111111" } else { "000000" }.to_owned();
    (code, tx, wrong)
}

fn redeem(code: &str, tx_code: &str) -> EndpointCall {
    form(&[
        ("grant_type", PRE_AUTHORIZED),
        ("pre-authorized_code", code),
        ("tx_code", tx_code),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_tx_codes_through_two_replicas_respect_the_attempt_limit() {
    let env = Env::new(Backend::postgres().await).await;
    let limit = usize::try_from(AsConfig::default().tx_code_max_attempts).unwrap();
    let replicas = replicas(&env).await;

    // Fewer wrong guesses than the limit, all at once: the right tx_code still works, so no
    // guess was counted twice.
    let (code, tx, wrong) = mint(&env).await;
    let (ok, errors) = race(&replicas, vec![redeem(&code, &wrong); limit - 1]).await;
    assert_eq!(ok, 0);
    for err in &errors {
        assert_eq!(err.code(), OAuthErrorCode::InvalidGrant, "{err:?}");
    }
    env.server
        .token(&env.tenant, &redeem(&code, &tx))
        .await
        .unwrap();

    // Eight times the limit at once: no guess is lost, so the code is revoked and the right
    // tx_code no longer redeems it.
    let (code, tx, wrong) = mint(&env).await;
    let (ok, errors) = race(&replicas, vec![redeem(&code, &wrong); 8 * limit]).await;
    assert_eq!(ok, 0);
    for err in &errors {
        assert_eq!(err.code(), OAuthErrorCode::InvalidGrant, "{err:?}");
    }
    let (ok, errors) = race(&replicas, vec![redeem(&code, &tx); 2]).await;
    assert_eq!(ok, 0, "the code is revoked after {limit} wrong guesses");
    for err in &errors {
        assert_eq!(err.code(), OAuthErrorCode::InvalidGrant, "{err:?}");
    }
    env.close().await;
}
