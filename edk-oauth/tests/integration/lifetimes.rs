//! Expiry of codes and refresh tokens on the injected clock, values presented by another
//! client of the same tenant, a request without PKCE, a refresh asking for more scope, and a
//! DPoP-bound public client's refresh without its key: each refused with its exact OAuth
//! error, on both backends.

use edk_core::Clock as _;
use edk_oauth::client::{ClientAuthMethod, GrantType};
use edk_oauth::grant::Grant;
use edk_oauth::{
    AsConfig, AuthorizeOutcome, EndpointCall, Error, OAuthErrorCode, Params,
    PreAuthorizedCodeRequest,
};
use secrecy::ExposeSecret;

use crate::flows::authorize;
use crate::support::{Backend, DpopKey, Env, NOW, on_both_backends, pkce};

const TOKEN_URL: &str = "https://as.example/acme/token";
const PRE_AUTHORIZED: &str = "urn:ietf:params:oauth:grant-type:pre-authorized_code";

fn form(pairs: &[(&str, &str)]) -> EndpointCall {
    EndpointCall::post(Params::from_pairs(pairs.iter().copied()))
}

/// The OAuth error code of a refused call, failing on success.
fn refused<T: std::fmt::Debug>(result: Result<T, Error>) -> OAuthErrorCode {
    match result {
        Ok(value) => panic!("expected a refusal, got {value:?}"),
        Err(err) => err.code(),
    }
}

/// A public client (code flow with refresh tokens) and its id.
async fn public_client(
    env: &Env,
    tweak: impl FnOnce(&mut edk_oauth::client::ClientMetadata),
) -> String {
    env.client(
        ClientAuthMethod::None,
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        tweak,
    )
    .await
    .0
}

fn redeem(client_id: &str, code: &str, verifier: &str) -> EndpointCall {
    form(&[
        ("grant_type", "authorization_code"),
        ("client_id", client_id),
        ("code", code),
        ("redirect_uri", "https://client.example/cb"),
        ("code_verifier", verifier),
    ])
}

fn refresh(client_id: &str, token: &str) -> EndpointCall {
    form(&[
        ("grant_type", "refresh_token"),
        ("client_id", client_id),
        ("refresh_token", token),
    ])
}

/// A refresh token of `client_id` from the code flow with scope `read`.
async fn refresh_token_of(env: &Env, client_id: &str) -> String {
    let (verifier, challenge) = pkce();
    let code = authorize(env, client_id, &challenge, &[]).await;
    let response = env
        .server
        .token(&env.tenant, &redeem(client_id, &code, &verifier))
        .await
        .unwrap()
        .response;
    response.refresh_token.unwrap()
}

async fn an_authorization_code_expires_after_its_ttl(backend: Backend) {
    let env = Env::new(backend).await;
    let ttl = AsConfig::default().code_ttl;
    let id = public_client(&env, |_| {}).await;
    let (verifier, challenge) = pkce();
    let code = authorize(&env, &id, &challenge, &[]).await;
    env.clock.set_unix(NOW + ttl + 1);
    assert_eq!(
        refused(
            env.server
                .token(&env.tenant, &redeem(&id, &code, &verifier))
                .await
        ),
        OAuthErrorCode::InvalidGrant
    );
    // A code minted at that time is still good until its own TTL.
    let (verifier, challenge) = pkce();
    let code = authorize(&env, &id, &challenge, &[]).await;
    env.clock.set_unix(NOW + 2 * ttl);
    env.server
        .token(&env.tenant, &redeem(&id, &code, &verifier))
        .await
        .unwrap();
    env.close().await;
}
on_both_backends!(an_authorization_code_expires_after_its_ttl);

async fn a_refresh_token_expires_after_its_ttl(backend: Backend) {
    let mut config = AsConfig::default();
    config.refresh_token_ttl = 3_600;
    let env = Env::with_config(backend, config).await;
    let id = public_client(&env, |_| {}).await;
    let unused = refresh_token_of(&env, &id).await;
    let token = refresh_token_of(&env, &id).await;
    env.clock.set_unix(NOW + 3_599);
    let rotated = env
        .server
        .token(&env.tenant, &refresh(&id, &token))
        .await
        .unwrap()
        .response
        .refresh_token
        .unwrap();
    // The rotated token keeps the family's lifetime or starts its own; either way it is dead
    // a TTL after it was issued.
    env.clock.set_unix(NOW + 3_601);
    assert_eq!(
        refused(env.server.token(&env.tenant, &refresh(&id, &unused)).await),
        OAuthErrorCode::InvalidGrant
    );
    env.clock.set_unix(NOW + 3_599 + 3_601);
    assert_eq!(
        refused(env.server.token(&env.tenant, &refresh(&id, &rotated)).await),
        OAuthErrorCode::InvalidGrant
    );
    env.close().await;
}
on_both_backends!(a_refresh_token_expires_after_its_ttl);

async fn a_pre_authorized_code_expires_after_its_ttl(backend: Backend) {
    let env = Env::new(backend).await;
    let ttl = AsConfig::default().pre_authorized_code_ttl;
    let mint = || async {
        env.server
            .mint_pre_authorized_code(
                &env.tenant,
                PreAuthorizedCodeRequest::new(Grant::new("holder")),
            )
            .await
            .unwrap()
            .code
            .expose_secret()
            .to_owned()
    };
    let code = mint().await;
    env.clock.set_unix(NOW + ttl + 1);
    let call = form(&[
        ("grant_type", PRE_AUTHORIZED),
        ("pre-authorized_code", &code),
    ]);
    assert_eq!(
        refused(env.server.token(&env.tenant, &call).await),
        OAuthErrorCode::InvalidGrant
    );
    let fresh = mint().await;
    let call = form(&[
        ("grant_type", PRE_AUTHORIZED),
        ("pre-authorized_code", &fresh),
    ]);
    env.server.token(&env.tenant, &call).await.unwrap();
    env.close().await;
}
on_both_backends!(a_pre_authorized_code_expires_after_its_ttl);

async fn a_code_of_another_client_is_invalid_grant(backend: Backend) {
    let env = Env::new(backend).await;
    let owner = public_client(&env, |_| {}).await;
    let thief = public_client(&env, |_| {}).await;
    let (verifier, challenge) = pkce();
    let code = authorize(&env, &owner, &challenge, &[]).await;
    assert_eq!(
        refused(
            env.server
                .token(&env.tenant, &redeem(&thief, &code, &verifier))
                .await
        ),
        OAuthErrorCode::InvalidGrant
    );
    // Like a wrong code_verifier, another client's attempt does not spend the code: the
    // owner, who holds the verifier, still redeems it once.
    env.server
        .token(&env.tenant, &redeem(&owner, &code, &verifier))
        .await
        .unwrap();
    env.close().await;
}
on_both_backends!(a_code_of_another_client_is_invalid_grant);

async fn a_refresh_token_of_another_client_is_invalid_grant(backend: Backend) {
    let env = Env::new(backend).await;
    let owner = public_client(&env, |_| {}).await;
    let thief = public_client(&env, |_| {}).await;
    let token = refresh_token_of(&env, &owner).await;
    assert_eq!(
        refused(
            env.server
                .token(&env.tenant, &refresh(&thief, &token))
                .await
        ),
        OAuthErrorCode::InvalidGrant
    );
    // The other client's attempt neither rotated nor revoked the owner's token.
    env.server
        .token(&env.tenant, &refresh(&owner, &token))
        .await
        .unwrap();
    env.close().await;
}
on_both_backends!(a_refresh_token_of_another_client_is_invalid_grant);

async fn a_revocation_by_another_client_revokes_nothing(backend: Backend) {
    let env = Env::new(backend).await;
    let owner = public_client(&env, |_| {}).await;
    let (other, secret) = env
        .client(
            ClientAuthMethod::ClientSecretPost,
            vec![GrantType::ClientCredentials],
            |_| {},
        )
        .await;
    let secret = secret.unwrap();
    let token = refresh_token_of(&env, &owner).await;
    // RFC 7009 §2.1: the token was not issued to the revoking client, so nothing is revoked;
    // the answer does not tell whether the token exists (§2.2).
    env.server
        .revoke(
            &env.tenant,
            &form(&[
                ("token", &token),
                ("client_id", &other),
                ("client_secret", &secret),
            ]),
        )
        .await
        .unwrap();
    env.server
        .token(&env.tenant, &refresh(&owner, &token))
        .await
        .unwrap();
    env.close().await;
}
on_both_backends!(a_revocation_by_another_client_revokes_nothing);

async fn an_authorization_request_without_pkce_is_refused(backend: Backend) {
    let env = Env::new(backend).await;
    let id = public_client(&env, |_| {}).await;
    let params = Params::from_pairs([
        ("response_type", "code"),
        ("client_id", id.as_str()),
        ("redirect_uri", "https://client.example/cb"),
        ("state", "xyz"),
        ("scope", "read"),
    ]);
    let outcome = env.server.authorize(&env.tenant, &params).await;
    // RFC 6749 §4.1.2.1: the client and redirect_uri are valid, so the error goes back to
    // the client.
    let AuthorizeOutcome::Redirect(url) = outcome.unwrap() else {
        panic!("expected the error to be redirected");
    };
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(
        query.get("error").map(String::as_str),
        Some("invalid_request"),
        "{url}"
    );
    assert_eq!(query.get("state").map(String::as_str), Some("xyz"));
    assert!(!query.contains_key("code"));
    env.close().await;
}
on_both_backends!(an_authorization_request_without_pkce_is_refused);

async fn a_refresh_asking_for_more_scope_is_invalid_scope(backend: Backend) {
    let env = Env::new(backend).await;
    let id = public_client(&env, |_| {}).await;
    let token = refresh_token_of(&env, &id).await;
    let wider = form(&[
        ("grant_type", "refresh_token"),
        ("client_id", &id),
        ("refresh_token", &token),
        ("scope", "read write"),
    ]);
    assert_eq!(
        refused(env.server.token(&env.tenant, &wider).await),
        OAuthErrorCode::InvalidScope
    );
    env.server
        .token(&env.tenant, &refresh(&id, &token))
        .await
        .unwrap();
    env.close().await;
}
on_both_backends!(a_refresh_asking_for_more_scope_is_invalid_scope);

/// Sends `call` with a DPoP proof of `key`, fetching the server's nonce first.
async fn with_dpop(
    env: &Env,
    key: &DpopKey,
    call: &EndpointCall,
) -> Result<edk_oauth::TokenOutcome, Error> {
    let now = env.clock.unix_seconds();
    let first = call
        .clone()
        .with_dpop(key.proof("POST", TOKEN_URL, now, None, None).await);
    match env.server.token(&env.tenant, &first).await {
        Err(Error::UseDpopNonce { nonce }) => {
            let proof = key.proof("POST", TOKEN_URL, now, Some(&nonce), None).await;
            env.server
                .token(&env.tenant, &call.clone().with_dpop(proof))
                .await
        }
        other => other,
    }
}

async fn a_dpop_bound_refresh_needs_its_key(backend: Backend) {
    let env = Env::new(backend).await;
    let id = public_client(&env, |_| {}).await;
    let key = DpopKey::new();
    let (verifier, challenge) = pkce();
    let code = authorize(&env, &id, &challenge, &[]).await;
    let issued = with_dpop(&env, &key, &redeem(&id, &code, &verifier))
        .await
        .unwrap()
        .response;
    assert_eq!(issued.token_type, "DPoP");
    let token = issued.refresh_token.unwrap();

    // RFC 9449 §5: a public client's refresh token is bound to its DPoP key.
    assert_eq!(
        refused(env.server.token(&env.tenant, &refresh(&id, &token)).await),
        OAuthErrorCode::InvalidGrant,
        "without a proof"
    );
    assert_eq!(
        refused(with_dpop(&env, &DpopKey::new(), &refresh(&id, &token)).await),
        OAuthErrorCode::InvalidGrant,
        "with another key"
    );
    // Neither attempt spent or revoked the token.
    let rotated = with_dpop(&env, &key, &refresh(&id, &token)).await.unwrap();
    assert_eq!(rotated.response.token_type, "DPoP");
    env.close().await;
}
on_both_backends!(a_dpop_bound_refresh_needs_its_key);
