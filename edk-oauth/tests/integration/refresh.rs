//! A refresh request that fails (a scope beyond the grant, a replayed DPoP proof, the KMS
//! unable to sign) leaves its refresh token usable; a narrower scope narrows the access token
//! only.

use edk_oauth::client::{ClientAuthMethod, GrantType};
use edk_oauth::{AsConfig, AuthorizeOutcome, EndpointCall, OAuthErrorCode, Params};

use crate::support::{Backend, DpopKey, Env, NOW, new_kek, on_both_backends, pkce, server};

const TOKEN_URL: &str = "https://as.example/acme/token";

fn form(pairs: &[(&str, &str)]) -> EndpointCall {
    EndpointCall::post(Params::from_pairs(pairs.iter().copied()))
}

/// A public client's first refresh token, for scopes `read write`.
async fn first_refresh_token(env: &Env, client_id: &str) -> String {
    let (verifier, challenge) = pkce();
    let params = Params::from_pairs([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", "https://client.example/cb"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("scope", "read write"),
    ]);
    let AuthorizeOutcome::Redirect(url) = env.server.authorize(&env.tenant, &params).await.unwrap()
    else {
        panic!("expected a redirect");
    };
    let code = url
        .query_pairs()
        .find(|(name, _)| name == "code")
        .unwrap()
        .1
        .into_owned();
    let call = form(&[
        ("grant_type", "authorization_code"),
        ("client_id", client_id),
        ("code", &code),
        ("redirect_uri", "https://client.example/cb"),
        ("code_verifier", &verifier),
    ]);
    let response = env.server.token(&env.tenant, &call).await.unwrap().response;
    assert_eq!(response.scope.as_deref(), Some("read write"));
    response.refresh_token.unwrap()
}

async fn failed_refreshes_leave_the_token_usable(backend: Backend) {
    let env = Env::new(backend).await;
    let (id, _) = env
        .client(
            ClientAuthMethod::None,
            vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            |_| {},
        )
        .await;
    let refresh = |token: &str, scope: Option<&str>| {
        let mut pairs = vec![
            ("grant_type", "refresh_token"),
            ("client_id", id.as_str()),
            ("refresh_token", token),
        ];
        pairs.extend(scope.map(|scope| ("scope", scope)));
        EndpointCall::post(Params::from_pairs(pairs))
    };
    let first = first_refresh_token(&env, &id).await;

    // A scope beyond the grant: invalid_scope, and the token still works.
    let err = env
        .server
        .token(&env.tenant, &refresh(&first, Some("read admin")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), OAuthErrorCode::InvalidScope);
    // A narrower scope narrows this access token, not the rotated refresh token.
    let narrowed = env
        .server
        .token(&env.tenant, &refresh(&first, Some("read")))
        .await
        .unwrap()
        .response;
    assert_eq!(narrowed.scope.as_deref(), Some("read"));
    let second = narrowed.refresh_token.unwrap();
    let full = env
        .server
        .token(&env.tenant, &refresh(&second, None))
        .await
        .unwrap()
        .response;
    assert_eq!(full.scope.as_deref(), Some("read write"));
    let third = full.refresh_token.unwrap();

    // A replica whose KMS cannot use the signing key (another key encryption key): the
    // rotation is rolled back with the failed signature.
    let broken = server(
        &env.backend.tenancy,
        &new_kek(),
        env.clock.clone(),
        AsConfig::default(),
    );
    let err = broken
        .token(&env.tenant, &refresh(&third, None))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        OAuthErrorCode::TemporarilyUnavailable,
        "{err:?}"
    );
    let fourth = env
        .server
        .token(&env.tenant, &refresh(&third, None))
        .await
        .unwrap()
        .response
        .refresh_token
        .unwrap();
    // The rotated token is now spent: its replay revokes the grant.
    let err = env
        .server
        .token(&env.tenant, &refresh(&third, None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), OAuthErrorCode::InvalidGrant);
    let err = env
        .server
        .token(&env.tenant, &refresh(&fourth, None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), OAuthErrorCode::InvalidGrant);
    env.close().await;
}
on_both_backends!(failed_refreshes_leave_the_token_usable);

async fn a_replayed_proof_does_not_spend_the_refresh_token(backend: Backend) {
    let env = Env::new(backend).await;
    let (id, _) = env
        .client(
            ClientAuthMethod::None,
            vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            |_| {},
        )
        .await;
    let first = first_refresh_token(&env, &id).await;
    let nonce = env.server.current_dpop_nonce(&env.tenant).await.unwrap();
    let key = DpopKey::new();
    let call = |token: &str, proof: String| {
        form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &id),
            ("refresh_token", token),
        ])
        .with_dpop(proof)
    };
    let proof = key.proof("POST", TOKEN_URL, NOW, Some(&nonce), None).await;
    let second = env
        .server
        .token(&env.tenant, &call(&first, proof.clone()))
        .await
        .unwrap()
        .response
        .refresh_token
        .unwrap();
    // The same proof again, with the new token: refused, and the new token is not spent.
    let err = env
        .server
        .token(&env.tenant, &call(&second, proof))
        .await
        .unwrap_err();
    assert_eq!(err.code(), OAuthErrorCode::InvalidDpopProof);
    let fresh = key.proof("POST", TOKEN_URL, NOW, Some(&nonce), None).await;
    env.server
        .token(&env.tenant, &call(&second, fresh))
        .await
        .unwrap();
    env.close().await;
}
on_both_backends!(a_replayed_proof_does_not_spend_the_refresh_token);
