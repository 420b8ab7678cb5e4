//! Requests that fail before their grant is valid write nothing (no pending authorization,
//! `request_uri`, code or `jti` rows), and authorization request parameters are bounded.

use edk_core::jose::{Algorithm, Header, JwkSet, SigningKey, jws};
use edk_oauth::authorize::{MAX_AUTHORIZATION_DETAILS, MAX_PARAMETER_BYTES};
use edk_oauth::client::{ClientAuthMethod, GrantType};
use edk_oauth::{AuthorizeOutcome, EndpointCall, Error, OAuthErrorCode, Params};
use serde_json::json;

use crate::support::{Backend, DpopKey, Env, NOW, count_rows, on_both_backends, pkce};

const TOKEN_URL: &str = "https://as.example/acme/token";
const PAR_URL: &str = "https://as.example/acme/par";
const TABLES: [&str; 4] = ["oauth_transaction", "oauth_code", "oauth_par", "oauth_jti"];
const PRE_AUTHORIZED: &str = "urn:ietf:params:oauth:grant-type:pre-authorized_code";

async fn counts(env: &Env) -> Vec<i64> {
    let mut all = Vec::new();
    for table in TABLES {
        all.push(count_rows(&env.backend.tenancy, &env.tenant, table).await);
    }
    all
}

fn form(pairs: &[(&str, &str)]) -> EndpointCall {
    EndpointCall::post(Params::from_pairs(pairs.iter().copied()))
}

fn redirect_error(outcome: &AuthorizeOutcome) -> Option<String> {
    let AuthorizeOutcome::Redirect(url) = outcome else {
        return None;
    };
    url.query_pairs()
        .find(|(name, _)| name == "error")
        .map(|(_, value)| value.into_owned())
}

async fn unauthenticated_failures_write_nothing(backend: Backend) {
    let env = Env::new(backend).await;
    let (public, _) = env
        .client(
            ClientAuthMethod::None,
            vec![GrantType::AuthorizationCode],
            |_| {},
        )
        .await;
    let (_, challenge) = pkce();
    let nonce = env.server.current_dpop_nonce(&env.tenant).await.unwrap();
    let before = counts(&env).await;
    let authorize = |extra: Vec<(&'static str, String)>| {
        let mut pairs: Vec<(&str, String)> = vec![
            ("response_type", "code".to_owned()),
            ("client_id", public.clone()),
            ("redirect_uri", "https://client.example/cb".to_owned()),
            ("code_challenge", challenge.clone()),
            ("code_challenge_method", "S256".to_owned()),
        ];
        pairs.extend(extra);
        Params::from_pairs(pairs)
    };
    let long = "x".repeat(MAX_PARAMETER_BYTES + 1);

    // A `state` too long to echo: refused without a redirect.
    let outcome = env
        .server
        .authorize(&env.tenant, &authorize(vec![("state", long.clone())]))
        .await
        .unwrap();
    assert!(
        matches!(
            &outcome,
            AuthorizeOutcome::Refused {
                code: OAuthErrorCode::InvalidRequest,
                ..
            }
        ),
        "{outcome:?}"
    );
    // Hints and `authorization_details` beyond their limits: an error redirect.
    let detail = json!({"type": "openid_credential", "credential_configuration_id": "pid"});
    let many = json!(vec![detail; MAX_AUTHORIZATION_DETAILS + 1]).to_string();
    let huge = json!([{
        "type": "openid_credential", "credential_configuration_id": "pid",
        "padding": "x".repeat(9 * 1024),
    }])
    .to_string();
    for extra in [
        vec![("login_hint", long.clone())],
        vec![("nonce", long.clone())],
        vec![("authorization_details", many.clone())],
        vec![("authorization_details", huge.clone())],
        vec![("dpop_jkt", long.clone())],
    ] {
        let outcome = env
            .server
            .authorize(&env.tenant, &authorize(extra))
            .await
            .unwrap();
        assert_eq!(
            redirect_error(&outcome).as_deref(),
            Some("invalid_request"),
            "{outcome:?}"
        );
    }

    // PAR by a public client, with a DPoP proof: an invalid request spends nothing.
    let key = DpopKey::new();
    for details in [&many, &huge] {
        let call = form(&[
            ("client_id", &public),
            ("response_type", "code"),
            ("redirect_uri", "https://client.example/cb"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("authorization_details", details),
        ])
        .with_dpop(key.proof("POST", PAR_URL, NOW, Some(&nonce), None).await);
        let err = env.server.par(&env.tenant, &call).await.unwrap_err();
        assert_eq!(err.code(), OAuthErrorCode::InvalidRequest, "{err:?}");
    }

    // An anonymous token request with a DPoP proof and an unknown pre-authorized code.
    let call = form(&[
        ("grant_type", PRE_AUTHORIZED),
        ("pre-authorized_code", "not-a-code"),
    ])
    .with_dpop(key.proof("POST", TOKEN_URL, NOW, Some(&nonce), None).await);
    let err = env.server.token(&env.tenant, &call).await.unwrap_err();
    assert_eq!(err.code(), OAuthErrorCode::InvalidGrant, "{err:?}");
    assert_eq!(counts(&env).await, before);

    // A valid PAR with a proof stores its request and the proof's jti.
    let call = form(&[
        ("client_id", &public),
        ("response_type", "code"),
        ("redirect_uri", "https://client.example/cb"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ])
    .with_dpop(key.proof("POST", PAR_URL, NOW, Some(&nonce), None).await);
    env.server.par(&env.tenant, &call).await.unwrap();
    let after = counts(&env).await;
    assert_eq!(after[2], before[2] + 1, "oauth_par");
    assert_eq!(after[3], before[3] + 1, "oauth_jti");
    env.close().await;
}
on_both_backends!(unauthenticated_failures_write_nothing);

async fn assertion(key: &SigningKey, id: &str, jti: &str) -> String {
    let claims = json!({
        "iss": id, "sub": id, "aud": TOKEN_URL, "jti": jti, "exp": NOW + 60, "iat": NOW,
    });
    jws::sign(
        Header::new(Algorithm::Es256).with_typ("JWT"),
        claims.to_string().as_bytes(),
        key,
    )
    .await
    .unwrap()
}

async fn a_client_assertion_survives_a_failed_request(backend: Backend) {
    let env = Env::new(backend).await;
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let public = key.public_jwk().with_kid("k1");
    let (id, _) = env
        .client(
            ClientAuthMethod::PrivateKeyJwt,
            vec![GrantType::ClientCredentials],
            |m| m.jwks = Some(JwkSet { keys: vec![public] }),
        )
        .await;
    let jwt = assertion(&key, &id, "one").await;
    let call = |scope: &str, proof: String| {
        form(&[
            ("grant_type", "client_credentials"),
            ("scope", scope),
            ("client_assertion_type", edk_oauth::JWT_BEARER_ASSERTION),
            ("client_assertion", &jwt),
        ])
        .with_dpop(proof)
    };
    let dpop = DpopKey::new();
    let before = counts(&env).await;
    // The proof lacks the server nonce: the assertion is not spent on `use_dpop_nonce`.
    let err = env
        .server
        .token(
            &env.tenant,
            &call("read", dpop.proof("POST", TOKEN_URL, NOW, None, None).await),
        )
        .await
        .unwrap_err();
    let Error::UseDpopNonce { nonce } = err else {
        panic!("expected use_dpop_nonce, got {err:?}");
    };
    // A scope the client lacks: refused, and neither the proof nor the assertion is spent.
    let proof = dpop.proof("POST", TOKEN_URL, NOW, Some(&nonce), None).await;
    let err = env
        .server
        .token(&env.tenant, &call("admin", proof.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), OAuthErrorCode::InvalidScope);
    assert_eq!(counts(&env).await, before);
    // The retry reuses the assertion and the proof.
    let response = env
        .server
        .token(&env.tenant, &call("read", proof.clone()))
        .await
        .unwrap()
        .response;
    assert_eq!(response.token_type, "DPoP");
    assert_eq!(counts(&env).await[3], before[3] + 2, "both jtis are spent");
    // Now both are used: a replay is refused for the proof first.
    let err = env
        .server
        .token(&env.tenant, &call("read", proof))
        .await
        .unwrap_err();
    assert_eq!(err.code(), OAuthErrorCode::InvalidDpopProof);
    let fresh = dpop.proof("POST", TOKEN_URL, NOW, Some(&nonce), None).await;
    let err = env
        .server
        .token(&env.tenant, &call("read", fresh))
        .await
        .unwrap_err();
    assert_eq!(err.code(), OAuthErrorCode::InvalidClient);
    env.close().await;
}
on_both_backends!(a_client_assertion_survives_a_failed_request);

/// Sends every end user to an identity provider and takes them back by the transaction id in
/// the callback's `tx` parameter.
#[derive(Debug)]
struct RedirectingAuthenticator;

#[async_trait::async_trait]
impl edk_oauth::Authenticator for RedirectingAuthenticator {
    async fn start(
        &self,
        _tenant: &edk_tenancy::TenantContext,
        request: &edk_oauth::AuthnRequest,
    ) -> Result<edk_oauth::AuthnStart, edk_oauth::AuthnError> {
        let mut location = url::Url::parse("https://idp.example/login").unwrap();
        location
            .query_pairs_mut()
            .append_pair("tx", request.transaction.as_str());
        Ok(edk_oauth::AuthnStart::Redirect { location })
    }

    async fn finish(
        &self,
        _tenant: &edk_tenancy::TenantContext,
        callback: &edk_oauth::AuthnCallback,
    ) -> Result<edk_oauth::authn::AuthnOutcome, edk_oauth::AuthnError> {
        let tx = callback.get("tx").unwrap_or_default().to_owned();
        let at = chrono::DateTime::from_timestamp(NOW, 0).unwrap();
        Ok(edk_oauth::authn::AuthnOutcome::new(
            edk_oauth::authn::AuthnTransaction::from_stored(tx),
            edk_oauth::AuthenticatedSubject::new("alice", at),
        ))
    }
}

async fn a_pending_authorization_is_kept_only_while_the_user_is_away(backend: Backend) {
    let env = Env::new(backend).await;
    let server = edk_oauth::AuthorizationServer::new(
        std::sync::Arc::clone(env.server.store()),
        env.kms(),
        std::sync::Arc::new(RedirectingAuthenticator),
        env.clock.clone(),
        edk_oauth::AsConfig::default(),
    );
    let (public, _) = env
        .client(
            ClientAuthMethod::None,
            vec![GrantType::AuthorizationCode],
            |_| {},
        )
        .await;
    let (_, challenge) = pkce();
    let params = |state: &str| {
        Params::from_pairs([
            ("response_type", "code"),
            ("client_id", public.as_str()),
            ("redirect_uri", "https://client.example/cb"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("state", state),
        ])
    };
    let pending = || count_rows(&env.backend.tenancy, &env.tenant, "oauth_transaction");
    // Refused before authentication: nothing pending.
    let refused = server
        .authorize(&env.tenant, &params(&"s".repeat(MAX_PARAMETER_BYTES + 1)))
        .await
        .unwrap();
    assert!(
        matches!(refused, AuthorizeOutcome::Refused { .. }),
        "{refused:?}"
    );
    assert_eq!(pending().await, 0);
    // Sent to the identity provider: one pending authorization until the callback.
    let AuthorizeOutcome::Redirect(location) =
        server.authorize(&env.tenant, &params("xyz")).await.unwrap()
    else {
        panic!("expected a redirect to the identity provider");
    };
    assert_eq!(location.host_str(), Some("idp.example"));
    assert_eq!(pending().await, 1);
    let tx = location
        .query_pairs()
        .find(|(name, _)| name == "tx")
        .unwrap()
        .1
        .into_owned();
    let outcome = server
        .callback(&env.tenant, &Params::from_pairs([("tx", tx.as_str())]))
        .await
        .unwrap();
    let AuthorizeOutcome::Redirect(back) = outcome else {
        panic!("expected a redirect to the client, got {outcome:?}");
    };
    assert!(
        back.as_str().starts_with("https://client.example/cb?code="),
        "{back}"
    );
    assert_eq!(pending().await, 0);
    env.close().await;
}
on_both_backends!(a_pending_authorization_is_kept_only_while_the_user_is_away);
