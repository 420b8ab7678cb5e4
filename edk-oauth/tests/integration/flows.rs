//! Every grant and its adversarial variants, through the library API, on both backends.

use std::sync::Arc;

use base64::Engine as _;
use edk_core::jose::{Algorithm, Header, JwkSet, JwksResolver, SigningKey, jws};
use edk_oauth::client::{ClientAuthMethod, GrantType};
use edk_oauth::grant::Grant;
use edk_oauth::{
    AccessTokenValidator, AsConfig, AuthorizationServer, AuthorizeOutcome, EndpointCall, Error,
    OAuthErrorCode, Params, PreAuthorizedCodeRequest, ResourceRequest, TokenOutcome,
};
use edk_tenancy::TenantContext;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::support::{Backend, DpopKey, Env, NOW, pkce};

const TOKEN_URL: &str = "https://as.example/acme/token";
const ISSUER: &str = "https://as.example/acme";

/// Runs `$body` (an async fn taking a `Backend`) on SQLite and on PostgreSQL.
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn on_sqlite() {
                super::$name(crate::support::Backend::sqlite().await).await;
            }
            #[tokio::test]
            async fn on_postgres() {
                super::$name(crate::support::Backend::postgres().await).await;
            }
        }
    };
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

fn form(pairs: &[(&str, &str)]) -> EndpointCall {
    EndpointCall::post(Params::from_pairs(pairs.iter().copied()))
}

fn code_of(err: &Error) -> OAuthErrorCode {
    err.code()
}

pub(crate) async fn validator(
    server: &AuthorizationServer,
    tenant: &TenantContext,
    env_clock: Arc<dyn edk_core::Clock>,
) -> AccessTokenValidator {
    let jwks: JwkSet = server.jwks(tenant).await.unwrap();
    AccessTokenValidator::new(
        AuthorizationServer::issuer(tenant).unwrap(),
        AuthorizationServer::issuer(tenant).unwrap(),
        Arc::new(JwksResolver::new(&jwks)),
        env_clock,
    )
}

async fn client_credentials_with_each_secret_method(backend: Backend) {
    let env = Env::new(backend).await;
    let (id, secret) = env
        .client(
            ClientAuthMethod::ClientSecretBasic,
            vec![GrantType::ClientCredentials],
            |_| {},
        )
        .await;
    let secret = secret.unwrap();
    let call = form(&[("grant_type", "client_credentials"), ("scope", "read")])
        .with_authorization(basic(&id, &secret));
    let TokenOutcome { response, .. } = env.server.token(&env.tenant, &call).await.unwrap();
    assert_eq!(response.token_type, "Bearer");
    assert_eq!(response.scope.as_deref(), Some("read"));
    assert!(response.refresh_token.is_none());
    let validator = validator(&env.server, &env.tenant, env.clock.clone()).await;
    let request = ResourceRequest::new(
        "GET",
        "https://rs.example/x",
        Some(format!("Bearer {}", response.access_token)),
    );
    let token = validator.validate(&request).await.unwrap();
    assert_eq!(token.subject, id);
    assert_eq!(token.client_id.as_deref(), Some(id.as_str()));
    token.require_scope("read").unwrap();
    assert_eq!(
        code_of(&token.require_scope("write").unwrap_err()),
        OAuthErrorCode::InsufficientScope
    );
    let header = token.claims.get("jti").is_some();
    assert!(header);

    // Wrong secret, unknown client, a method the client did not register, a scope it lacks.
    let wrong =
        form(&[("grant_type", "client_credentials")]).with_authorization(basic(&id, "nope"));
    assert_eq!(
        code_of(&env.server.token(&env.tenant, &wrong).await.unwrap_err()),
        OAuthErrorCode::InvalidClient
    );
    let unknown =
        form(&[("grant_type", "client_credentials")]).with_authorization(basic("ghost", &secret));
    assert_eq!(
        code_of(&env.server.token(&env.tenant, &unknown).await.unwrap_err()),
        OAuthErrorCode::InvalidClient
    );
    let post = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &id),
        ("client_secret", &secret),
    ]);
    assert_eq!(
        code_of(&env.server.token(&env.tenant, &post).await.unwrap_err()),
        OAuthErrorCode::InvalidClient
    );
    let scope = form(&[("grant_type", "client_credentials"), ("scope", "admin")])
        .with_authorization(basic(&id, &secret));
    assert_eq!(
        code_of(&env.server.token(&env.tenant, &scope).await.unwrap_err()),
        OAuthErrorCode::InvalidScope
    );

    let (post_id, post_secret) = env
        .client(
            ClientAuthMethod::ClientSecretPost,
            vec![GrantType::ClientCredentials],
            |_| {},
        )
        .await;
    let post_secret = post_secret.unwrap();
    let post = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &post_id),
        ("client_secret", &post_secret),
    ]);
    env.server.token(&env.tenant, &post).await.unwrap();

    // A rotated secret stops the old one at once.
    let rotated = env
        .server
        .rotate_client_secret(
            &env.tenant,
            &edk_core::ClientId::new(post_id.clone()).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        code_of(&env.server.token(&env.tenant, &post).await.unwrap_err()),
        OAuthErrorCode::InvalidClient
    );
    let fresh = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &post_id),
        ("client_secret", rotated.expose_secret()),
    ]);
    env.server.token(&env.tenant, &fresh).await.unwrap();
    env.close().await;
}
both_backends!(client_credentials_with_each_secret_method);

async fn assertion(
    key: &SigningKey,
    alg: Algorithm,
    iss: &str,
    aud: &str,
    jti: &str,
    exp: i64,
) -> String {
    let claims = json!({"iss": iss, "sub": iss, "aud": aud, "jti": jti, "exp": exp, "iat": NOW});
    jws::sign(
        Header::new(alg).with_typ("JWT"),
        claims.to_string().as_bytes(),
        key,
    )
    .await
    .unwrap()
}

async fn private_key_jwt_with_replay_and_alg_confusion(backend: Backend) {
    let env = Env::new(backend).await;
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let public = key.public_jwk().with_kid("k1");
    let (id, _) = env
        .client(
            ClientAuthMethod::PrivateKeyJwt,
            vec![GrantType::ClientCredentials],
            |m| {
                m.jwks = Some(JwkSet { keys: vec![public] });
            },
        )
        .await;
    let jwt = assertion(&key, Algorithm::Es256, &id, TOKEN_URL, "a1", NOW + 60).await;
    let call = form(&[
        ("grant_type", "client_credentials"),
        ("client_assertion_type", edk_oauth::JWT_BEARER_ASSERTION),
        ("client_assertion", &jwt),
    ]);
    env.server.token(&env.tenant, &call).await.unwrap();
    let replay = env.server.token(&env.tenant, &call).await.unwrap_err();
    assert_eq!(code_of(&replay), OAuthErrorCode::InvalidClient);

    // Wrong audience, expired, signed by another key.
    for jwt in [
        assertion(
            &key,
            Algorithm::Es256,
            &id,
            "https://elsewhere.example",
            "a2",
            NOW + 60,
        )
        .await,
        assertion(&key, Algorithm::Es256, &id, ISSUER, "a3", NOW - 1).await,
        assertion(
            &SigningKey::generate(Algorithm::Es256).unwrap(),
            Algorithm::Es256,
            &id,
            ISSUER,
            "a4",
            NOW + 60,
        )
        .await,
    ] {
        let call = form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", edk_oauth::JWT_BEARER_ASSERTION),
            ("client_assertion", &jwt),
        ]);
        assert_eq!(
            code_of(&env.server.token(&env.tenant, &call).await.unwrap_err()),
            OAuthErrorCode::InvalidClient
        );
    }

    // Algorithm confusion: an HS256 token "signed" with the public key, and `none`.
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let claims = json!({"iss": id, "sub": id, "aud": TOKEN_URL, "jti": "a5", "exp": NOW + 60});
    for header in [
        json!({"alg": "HS256", "typ": "JWT"}),
        json!({"alg": "none"}),
    ] {
        let forged = format!("{}.{}.c2ln", b64(&header), b64(&claims));
        let call = form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", edk_oauth::JWT_BEARER_ASSERTION),
            ("client_assertion", &forged),
        ]);
        assert_eq!(
            code_of(&env.server.token(&env.tenant, &call).await.unwrap_err()),
            OAuthErrorCode::InvalidClient
        );
    }
    // The jti of a refused assertion is not burnt: a valid one with it still works once.
    let jwt = assertion(&key, Algorithm::Es256, &id, ISSUER, "a5", NOW + 60).await;
    let call = form(&[
        ("grant_type", "client_credentials"),
        ("client_assertion_type", edk_oauth::JWT_BEARER_ASSERTION),
        ("client_assertion", &jwt),
    ]);
    env.server.token(&env.tenant, &call).await.unwrap();
    env.close().await;
}
both_backends!(private_key_jwt_with_replay_and_alg_confusion);

async fn pre_authorized_code_with_tx_code(backend: Backend) {
    let env = Env::new(backend).await;
    let mut grant = Grant::new("holder-1");
    grant.authorization_details =
        Some(json!([{"type": "openid_credential", "credential_configuration_id": "pid"}]));
    let minted = env
        .server
        .mint_pre_authorized_code(
            &env.tenant,
            PreAuthorizedCodeRequest::new(grant.clone()).with_tx_code(6),
        )
        .await
        .unwrap();
    let code = minted.code.expose_secret().to_owned();
    let tx = minted.tx_code.unwrap().expose_secret().to_owned();
    assert_eq!(tx.len(), 6);
    let grant_type = "urn:ietf:params:oauth:grant-type:pre-authorized_code";
    let missing = form(&[("grant_type", grant_type), ("pre-authorized_code", &code)]);
    assert_eq!(
        code_of(&env.server.token(&env.tenant, &missing).await.unwrap_err()),
        OAuthErrorCode::InvalidRequest
    );
    let wrong_tx = if tx == "000000" { "111111" } else { "000000" };
    let wrong = form(&[
        ("grant_type", grant_type),
        ("pre-authorized_code", &code),
        ("tx_code", wrong_tx),
    ]);
    let err = env.server.token(&env.tenant, &wrong).await.unwrap_err();
    assert_eq!(code_of(&err), OAuthErrorCode::InvalidGrant);
    assert!(
        err.description().contains("4 attempts left"),
        "{}",
        err.description()
    );
    let right = form(&[
        ("grant_type", grant_type),
        ("pre-authorized_code", &code),
        ("tx_code", &tx),
    ]);
    let TokenOutcome { response, .. } = env.server.token(&env.tenant, &right).await.unwrap();
    assert_eq!(response.authorization_details, grant.authorization_details);
    assert_eq!(
        code_of(&env.server.token(&env.tenant, &right).await.unwrap_err()),
        OAuthErrorCode::InvalidGrant
    );

    // Brute force: after five wrong tx_codes the code is revoked, even for the right one.
    let minted = env
        .server
        .mint_pre_authorized_code(
            &env.tenant,
            PreAuthorizedCodeRequest::new(grant).with_tx_code(4),
        )
        .await
        .unwrap();
    let code = minted.code.expose_secret().to_owned();
    let tx = minted.tx_code.unwrap().expose_secret().to_owned();
    let mut guesses = (0..10_000).map(|n| format!("{n:04}")).filter(|g| *g != tx);
    for _ in 0..5 {
        let guess = guesses.next().unwrap();
        let call = form(&[
            ("grant_type", grant_type),
            ("pre-authorized_code", &code),
            ("tx_code", &guess),
        ]);
        assert_eq!(
            code_of(&env.server.token(&env.tenant, &call).await.unwrap_err()),
            OAuthErrorCode::InvalidGrant
        );
    }
    let right = form(&[
        ("grant_type", grant_type),
        ("pre-authorized_code", &code),
        ("tx_code", &tx),
    ]);
    assert_eq!(
        code_of(&env.server.token(&env.tenant, &right).await.unwrap_err()),
        OAuthErrorCode::InvalidGrant
    );
    env.close().await;
}
both_backends!(pre_authorized_code_with_tx_code);

/// Runs /authorize for `client_id` and returns the code.
pub(crate) async fn authorize(
    env: &Env,
    client_id: &str,
    challenge: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", "https://client.example/cb"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("state", "xyz"),
        ("scope", "read"),
    ];
    pairs.extend_from_slice(extra);
    let outcome = env
        .server
        .authorize(&env.tenant, &Params::from_pairs(pairs))
        .await
        .unwrap();
    let AuthorizeOutcome::Redirect(url) = outcome else {
        panic!("expected a redirect, got {outcome:?}");
    };
    assert!(url.as_str().starts_with("https://client.example/cb?"));
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query.get("state").map(String::as_str), Some("xyz"));
    assert_eq!(query.get("iss").map(String::as_str), Some(ISSUER));
    query
        .get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code in {url}"))
}

async fn authorization_code_with_pkce_and_refresh_rotation(backend: Backend) {
    let env = Env::new(backend).await;
    let (id, _) = env
        .client(
            ClientAuthMethod::None,
            vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            |_| {},
        )
        .await;
    let (verifier, challenge) = pkce();
    let code = authorize(&env, &id, &challenge, &[]).await;
    let redeem = |verifier: &str, redirect: &str| {
        form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &id),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ])
    };
    // Wrong verifier and redirect_uri variants fail and leave the code usable.
    let (other_verifier, _) = pkce();
    for call in [
        redeem(&other_verifier, "https://client.example/cb"),
        redeem(&verifier, "https://client.example/cb/"),
        redeem(&verifier, "https://client.example/cb?x=1"),
        redeem(&verifier, "https://other.example/cb"),
    ] {
        assert_eq!(
            code_of(&env.server.token(&env.tenant, &call).await.unwrap_err()),
            OAuthErrorCode::InvalidGrant
        );
    }
    let TokenOutcome { response, .. } = env
        .server
        .token(&env.tenant, &redeem(&verifier, "https://client.example/cb"))
        .await
        .unwrap();
    let first_access = response.access_token.clone();
    let refresh = response.refresh_token.unwrap();
    // The code works once; its reuse revokes what it yielded.
    assert_eq!(
        code_of(
            &env.server
                .token(&env.tenant, &redeem(&verifier, "https://client.example/cb"))
                .await
                .unwrap_err()
        ),
        OAuthErrorCode::InvalidGrant
    );
    assert!(
        env.server
            .own_access_token(&env.tenant, &first_access)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        code_of(
            &env.server
                .token(
                    &env.tenant,
                    &form(&[
                        ("grant_type", "refresh_token"),
                        ("client_id", &id),
                        ("refresh_token", &refresh)
                    ])
                )
                .await
                .unwrap_err()
        ),
        OAuthErrorCode::InvalidGrant
    );

    // A fresh grant: rotation, and reuse of a rotated token revokes the family.
    let (verifier, challenge) = pkce();
    let code = authorize(&env, &id, &challenge, &[]).await;
    let call = form(&[
        ("grant_type", "authorization_code"),
        ("client_id", &id),
        ("code", &code),
        ("redirect_uri", "https://client.example/cb"),
        ("code_verifier", &verifier),
    ]);
    let first = env
        .server
        .token(&env.tenant, &call)
        .await
        .unwrap()
        .response
        .refresh_token
        .unwrap();
    let refresh_call = |token: &str| {
        form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &id),
            ("refresh_token", token),
        ])
    };
    let second = env
        .server
        .token(&env.tenant, &refresh_call(&first))
        .await
        .unwrap()
        .response;
    let second_refresh = second.refresh_token.unwrap();
    assert_ne!(second_refresh, first);
    assert_eq!(
        code_of(
            &env.server
                .token(&env.tenant, &refresh_call(&first))
                .await
                .unwrap_err()
        ),
        OAuthErrorCode::InvalidGrant
    );
    assert_eq!(
        code_of(
            &env.server
                .token(&env.tenant, &refresh_call(&second_refresh))
                .await
                .unwrap_err()
        ),
        OAuthErrorCode::InvalidGrant
    );
    assert!(
        env.server
            .own_access_token(&env.tenant, &second.access_token)
            .await
            .unwrap()
            .is_none()
    );
    env.close().await;
}
both_backends!(authorization_code_with_pkce_and_refresh_rotation);

async fn authorization_requests_that_cannot_redirect_are_refused(backend: Backend) {
    let env = Env::new(backend).await;
    let (id, _) = env
        .client(
            ClientAuthMethod::None,
            vec![GrantType::AuthorizationCode],
            |_| {},
        )
        .await;
    let (_, challenge) = pkce();
    for redirect in [
        "https://client.example/cb/",
        "https://client.example/cb?x=1",
        "https://evil.example/cb",
    ] {
        let params = Params::from_pairs([
            ("response_type", "code"),
            ("client_id", id.as_str()),
            ("redirect_uri", redirect),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]);
        let outcome = env.server.authorize(&env.tenant, &params).await.unwrap();
        assert!(
            matches!(
                outcome,
                AuthorizeOutcome::Refused {
                    code: OAuthErrorCode::InvalidRequest,
                    ..
                }
            ),
            "{outcome:?}"
        );
    }
    // plain PKCE is refused with a redirect carrying the error.
    let params = Params::from_pairs([
        ("response_type", "code"),
        ("client_id", id.as_str()),
        ("redirect_uri", "https://client.example/cb"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "plain"),
        ("state", "s"),
    ]);
    let AuthorizeOutcome::Redirect(url) = env.server.authorize(&env.tenant, &params).await.unwrap()
    else {
        panic!()
    };
    assert!(url.as_str().contains("error=invalid_request"), "{url}");
    assert!(url.as_str().contains("state=s"), "{url}");
    env.close().await;
}
both_backends!(authorization_requests_that_cannot_redirect_are_refused);

async fn par_request_uri_is_single_use_and_required_when_configured(backend: Backend) {
    let env = Env::new(backend).await;
    let (id, secret) = env
        .client(
            ClientAuthMethod::ClientSecretBasic,
            vec![GrantType::AuthorizationCode],
            |m| {
                m.require_pushed_authorization_requests = true;
            },
        )
        .await;
    let secret = secret.unwrap();
    let (verifier, challenge) = pkce();
    let details = r#"[{"type":"openid_credential","credential_configuration_id":"pid"}]"#;
    let par = form(&[
        ("response_type", "code"),
        ("redirect_uri", "https://client.example/cb"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("state", "xyz"),
        ("authorization_details", details),
    ])
    .with_authorization(basic(&id, &secret));
    let pushed = env.server.par(&env.tenant, &par).await.unwrap();
    assert!(
        pushed
            .request_uri
            .starts_with("urn:ietf:params:oauth:request_uri:")
    );
    let params = Params::from_pairs([
        ("client_id", id.as_str()),
        ("request_uri", pushed.request_uri.as_str()),
    ]);
    let AuthorizeOutcome::Redirect(url) = env.server.authorize(&env.tenant, &params).await.unwrap()
    else {
        panic!()
    };
    let code = url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let again = env.server.authorize(&env.tenant, &params).await.unwrap();
    assert!(matches!(again, AuthorizeOutcome::Refused { .. }));
    let call = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", "https://client.example/cb"),
        ("code_verifier", &verifier),
    ])
    .with_authorization(basic(&id, &secret));
    let response = env.server.token(&env.tenant, &call).await.unwrap().response;
    assert_eq!(
        response.authorization_details.unwrap()[0]["credential_configuration_id"],
        "pid"
    );
    // Without PAR this client is refused.
    let direct = Params::from_pairs([
        ("response_type", "code"),
        ("client_id", id.as_str()),
        ("redirect_uri", "https://client.example/cb"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let AuthorizeOutcome::Redirect(url) = env.server.authorize(&env.tenant, &direct).await.unwrap()
    else {
        panic!()
    };
    assert!(url.as_str().contains("error=invalid_request"));
    // An expired request_uri is refused.
    let pushed = env.server.par(&env.tenant, &par).await.unwrap();
    env.clock.advance(std::time::Duration::from_secs(61));
    let params = Params::from_pairs([
        ("client_id", id.as_str()),
        ("request_uri", pushed.request_uri.as_str()),
    ]);
    assert!(matches!(
        env.server.authorize(&env.tenant, &params).await.unwrap(),
        AuthorizeOutcome::Refused { .. }
    ));
    env.close().await;
}
both_backends!(par_request_uri_is_single_use_and_required_when_configured);

async fn dpop_nonces_binding_and_replay(backend: Backend) {
    let env = Env::new(backend).await;
    let (id, secret) = env
        .client(
            ClientAuthMethod::ClientSecretBasic,
            vec![GrantType::ClientCredentials],
            |_| {},
        )
        .await;
    let auth = basic(&id, &secret.unwrap());
    let key = DpopKey::new();
    let call = |proof: String| {
        form(&[("grant_type", "client_credentials")])
            .with_authorization(auth.clone())
            .with_dpop(proof)
    };
    let err = env
        .server
        .token(
            &env.tenant,
            &call(key.proof("POST", TOKEN_URL, NOW, None, None).await),
        )
        .await
        .unwrap_err();
    let Error::UseDpopNonce { nonce } = err else {
        panic!("expected use_dpop_nonce, got {err:?}")
    };
    let proof = key.proof("POST", TOKEN_URL, NOW, Some(&nonce), None).await;
    let outcome = env
        .server
        .token(&env.tenant, &call(proof.clone()))
        .await
        .unwrap();
    assert_eq!(outcome.response.token_type, "DPoP");
    assert!(outcome.dpop_nonce.is_some());
    // Replay, another method or URL.
    for (proof, what) in [
        (proof, "replay"),
        (
            key.proof("GET", TOKEN_URL, NOW, Some(&nonce), None).await,
            "htm",
        ),
        (
            key.proof(
                "POST",
                "https://as.example/acme/par",
                NOW,
                Some(&nonce),
                None,
            )
            .await,
            "htu",
        ),
        (
            key.proof("POST", TOKEN_URL, NOW - 3600, Some(&nonce), None)
                .await,
            "iat",
        ),
    ] {
        let err = env
            .server
            .token(&env.tenant, &call(proof))
            .await
            .unwrap_err();
        assert_eq!(code_of(&err), OAuthErrorCode::InvalidDpopProof, "{what}");
    }
    // An old nonce asks for a new one.
    env.clock.advance(std::time::Duration::from_secs(600));
    let now = NOW + 600;
    let err = env
        .server
        .token(
            &env.tenant,
            &call(key.proof("POST", TOKEN_URL, now, Some(&nonce), None).await),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UseDpopNonce { .. }), "{err:?}");

    // At the resource: the token needs the DPoP scheme and a proof with ath from the same key.
    let fresh = env.server.current_dpop_nonce(&env.tenant).await.unwrap();
    let token = env
        .server
        .token(
            &env.tenant,
            &call(key.proof("POST", TOKEN_URL, now, Some(&fresh), None).await),
        )
        .await
        .unwrap()
        .response
        .access_token;
    let validator = validator(&env.server, &env.tenant, env.clock.clone()).await;
    let rs = "https://rs.example/data";
    let as_bearer = ResourceRequest::new("GET", rs, Some(format!("Bearer {token}")));
    assert_eq!(
        code_of(&validator.validate(&as_bearer).await.unwrap_err()),
        OAuthErrorCode::InvalidToken
    );
    let good = ResourceRequest::new("GET", rs, Some(format!("DPoP {token}")))
        .with_dpop(key.proof("GET", rs, now, None, Some(&token)).await);
    let validated = validator.validate(&good).await.unwrap();
    assert_eq!(validated.jkt.as_deref(), Some(key.jkt().as_str()));
    assert_eq!(
        code_of(&validator.validate(&good).await.unwrap_err()),
        OAuthErrorCode::InvalidDpopProof
    );
    let other_key = ResourceRequest::new("GET", rs, Some(format!("DPoP {token}"))).with_dpop(
        DpopKey::new()
            .proof("GET", rs, now, None, Some(&token))
            .await,
    );
    assert_eq!(
        code_of(&validator.validate(&other_key).await.unwrap_err()),
        OAuthErrorCode::InvalidDpopProof
    );
    env.close().await;
}
both_backends!(dpop_nonces_binding_and_replay);

async fn introspection_and_revocation(backend: Backend) {
    let env = Env::new(backend).await;
    let (id, secret) = env
        .client(
            ClientAuthMethod::ClientSecretBasic,
            vec![
                GrantType::ClientCredentials,
                GrantType::AuthorizationCode,
                GrantType::RefreshToken,
            ],
            |_| {},
        )
        .await;
    let auth = basic(&id, &secret.unwrap());
    let token = env
        .server
        .token(
            &env.tenant,
            &form(&[("grant_type", "client_credentials")]).with_authorization(auth.clone()),
        )
        .await
        .unwrap()
        .response
        .access_token;
    let introspect = |token: &str| form(&[("token", token)]).with_authorization(auth.clone());
    let active = env
        .server
        .introspect(&env.tenant, &introspect(&token))
        .await
        .unwrap();
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], id.as_str());
    assert_eq!(active["token_type"], "Bearer");
    assert_eq!(
        env.server
            .introspect(&env.tenant, &introspect("garbage"))
            .await
            .unwrap(),
        json!({"active": false})
    );
    let unauthenticated = form(&[("token", token.as_str())]);
    assert_eq!(
        code_of(
            &env.server
                .introspect(&env.tenant, &unauthenticated)
                .await
                .unwrap_err()
        ),
        OAuthErrorCode::InvalidClient
    );
    env.server
        .revoke(
            &env.tenant,
            &form(&[("token", token.as_str())]).with_authorization(auth.clone()),
        )
        .await
        .unwrap();
    assert_eq!(
        env.server
            .introspect(&env.tenant, &introspect(&token))
            .await
            .unwrap(),
        json!({"active": false})
    );
    // Unknown tokens revoke fine.
    env.server
        .revoke(
            &env.tenant,
            &form(&[("token", "nothing")]).with_authorization(auth),
        )
        .await
        .unwrap();
    env.close().await;
}
both_backends!(introspection_and_revocation);

async fn tenants_do_not_accept_each_others_codes_or_tokens(backend: Backend) {
    let env = Env::new(backend).await;
    let other = env.backend.tenant("other").await;
    let (id, _) = env
        .client(
            ClientAuthMethod::None,
            vec![GrantType::AuthorizationCode],
            |_| {},
        )
        .await;
    // The same client id at the other tenant, so only the tenant differs.
    let mut metadata = edk_oauth::client::ClientMetadata::new(
        ClientAuthMethod::None,
        vec![GrantType::AuthorizationCode],
    );
    metadata.redirect_uris = vec!["https://client.example/cb".to_owned()];
    metadata.scopes = vec!["read".to_owned()];
    env.server
        .create_client(
            &other,
            edk_oauth::NewClient::new(metadata)
                .with_id(edk_core::ClientId::new(id.clone()).unwrap()),
        )
        .await
        .unwrap();
    let (verifier, challenge) = pkce();
    let code = authorize(&env, &id, &challenge, &[]).await;
    let call = form(&[
        ("grant_type", "authorization_code"),
        ("client_id", &id),
        ("code", &code),
        ("redirect_uri", "https://client.example/cb"),
        ("code_verifier", &verifier),
    ]);
    assert_eq!(
        code_of(&env.server.token(&other, &call).await.unwrap_err()),
        OAuthErrorCode::InvalidGrant
    );
    let token = env
        .server
        .token(&env.tenant, &call)
        .await
        .unwrap()
        .response
        .access_token;
    // A's token at B's resource, and at B's introspection: nothing.
    let b_validator = validator(&env.server, &other, env.clock.clone()).await;
    let request = ResourceRequest::new(
        "GET",
        "https://rs.example/x",
        Some(format!("Bearer {token}")),
    );
    assert_eq!(
        code_of(&b_validator.validate(&request).await.unwrap_err()),
        OAuthErrorCode::InvalidToken
    );
    assert!(
        env.server
            .own_access_token(&other, &token)
            .await
            .unwrap()
            .is_none()
    );
    env.close().await;
}
both_backends!(tenants_do_not_accept_each_others_codes_or_tokens);

async fn signing_key_rotation_keeps_old_tokens_verifiable(backend: Backend) {
    let env = Env::new(backend).await;
    let (id, secret) = env
        .client(
            ClientAuthMethod::ClientSecretPost,
            vec![GrantType::ClientCredentials],
            |_| {},
        )
        .await;
    let call = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &id),
        ("client_secret", &secret.unwrap()),
    ]);
    let old = env
        .server
        .token(&env.tenant, &call)
        .await
        .unwrap()
        .response
        .access_token;
    env.server.rotate_signing_key(&env.tenant).await.unwrap();
    let new = env
        .server
        .token(&env.tenant, &call)
        .await
        .unwrap()
        .response
        .access_token;
    let jwks = env.server.jwks(&env.tenant).await.unwrap();
    assert_eq!(jwks.keys.len(), 2);
    let kid = |t: &str| {
        edk_core::jose::Jws::parse(t, &Default::default())
            .unwrap()
            .header()
            .kid
            .clone()
    };
    assert_ne!(kid(&old), kid(&new));
    let validator = validator(&env.server, &env.tenant, env.clock.clone()).await;
    for token in [old, new] {
        validator
            .validate(&ResourceRequest::new(
                "GET",
                "https://rs.example/x",
                Some(format!("Bearer {token}")),
            ))
            .await
            .unwrap();
    }
    env.close().await;
}
both_backends!(signing_key_rotation_keeps_old_tokens_verifiable);

#[tokio::test]
async fn metadata_uses_the_binding_and_path_insertion() {
    let env = Env::with_config(Backend::sqlite().await, AsConfig::default()).await;
    let doc = env.server.metadata(&env.tenant).unwrap();
    assert_eq!(doc["issuer"], ISSUER);
    assert_eq!(doc["token_endpoint"], TOKEN_URL);
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    let err = env.server.openid_configuration(&env.tenant).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                what: "openid configuration"
            }
        ),
        "{err:?}"
    );
    let binding = env.tenant.binding().unwrap();
    assert_eq!(
        binding
            .well_known_url("oauth-authorization-server")
            .unwrap()
            .as_str(),
        "https://as.example/.well-known/oauth-authorization-server/acme"
    );
    env.close().await;
}
