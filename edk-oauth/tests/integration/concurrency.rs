//! 64 simultaneous redemptions of one single-use value on PostgreSQL: exactly one succeeds.

use std::sync::Arc;

use edk_oauth::client::{ClientAuthMethod, GrantType};
use edk_oauth::grant::Grant;
use edk_oauth::{AsConfig, EndpointCall, Error, Params, PreAuthorizedCodeRequest};
use futures::future::join_all;
use secrecy::ExposeSecret;

use crate::flows::authorize;
use crate::support::{Backend, DpopKey, Env, NOW, pkce};

const RACERS: usize = 64;

async fn race(env: &Env, calls: Vec<EndpointCall>) -> (usize, Vec<Error>) {
    let tasks = calls.into_iter().map(|call| {
        let server = Arc::clone(&env.server);
        let tenant = env.tenant.clone();
        tokio::spawn(async move { server.token(&tenant, &call).await })
    });
    let results = join_all(tasks).await;
    let mut ok = 0;
    let mut errors = Vec::new();
    for result in results {
        match result.unwrap() {
            Ok(_) => ok += 1,
            Err(err) => errors.push(err),
        }
    }
    (ok, errors)
}

fn assert_one_winner(ok: usize, errors: &[Error], expected: edk_oauth::OAuthErrorCode) {
    assert_eq!(ok, 1, "exactly one redemption succeeds; errors: {errors:?}");
    for err in errors {
        assert_eq!(err.code(), expected, "{err:?}");
    }
}

fn form(pairs: &[(&str, &str)]) -> EndpointCall {
    EndpointCall::post(Params::from_pairs(pairs.iter().copied()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_authorization_code_redeems_once_under_64_concurrent_requests() {
    let env = Env::new(Backend::postgres().await).await;
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
    let (ok, errors) = race(&env, vec![call; RACERS]).await;
    assert_one_winner(ok, &errors, edk_oauth::OAuthErrorCode::InvalidGrant);
    env.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_pre_authorized_code_redeems_once_under_64_concurrent_requests() {
    let env = Env::new(Backend::postgres().await).await;
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
    let call = form(&[
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:pre-authorized_code",
        ),
        ("pre-authorized_code", &code),
        ("tx_code", &tx),
    ]);
    let (ok, errors) = race(&env, vec![call; RACERS]).await;
    assert_one_winner(ok, &errors, edk_oauth::OAuthErrorCode::InvalidGrant);
    env.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_refresh_token_rotates_once_under_64_concurrent_requests() {
    let env = Env::new(Backend::postgres().await).await;
    let (id, _) = env
        .client(
            ClientAuthMethod::None,
            vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
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
    let refresh = env
        .server
        .token(&env.tenant, &call)
        .await
        .unwrap()
        .response
        .refresh_token
        .unwrap();
    let call = form(&[
        ("grant_type", "refresh_token"),
        ("client_id", &id),
        ("refresh_token", &refresh),
    ]);
    let (ok, errors) = race(&env, vec![call; RACERS]).await;
    assert_one_winner(ok, &errors, edk_oauth::OAuthErrorCode::InvalidGrant);
    env.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_dpop_proof_is_accepted_once_under_64_concurrent_requests() {
    let mut config = AsConfig::default();
    config.dpop_nonce_required = false;
    let env = Env::with_config(Backend::postgres().await, config).await;
    let (id, secret) = env
        .client(
            ClientAuthMethod::ClientSecretPost,
            vec![GrantType::ClientCredentials],
            |_| {},
        )
        .await;
    let secret = secret.unwrap();
    // Warm the verified-secret cache so the race is about the proof.
    env.server
        .token(
            &env.tenant,
            &form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ]),
        )
        .await
        .unwrap();
    let proof = DpopKey::new()
        .proof("POST", "https://as.example/acme/token", NOW, None, None)
        .await;
    let call = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &id),
        ("client_secret", &secret),
    ])
    .with_dpop(proof);
    let (ok, errors) = race(&env, vec![call; RACERS]).await;
    assert_one_winner(ok, &errors, edk_oauth::OAuthErrorCode::InvalidDpopProof);
    env.close().await;
}
