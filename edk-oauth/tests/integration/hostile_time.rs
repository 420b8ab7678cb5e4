//! DPoP proofs and client assertions with extreme `iat` and `exp` values (`i64::MAX`,
//! `i64::MIN`, huge floats) are refused with their protocol error, never a panic.

use edk_core::jose::{Algorithm, Header, JwkSet, SigningKey, jws};
use edk_oauth::client::{ClientAuthMethod, GrantType};
use edk_oauth::{AsConfig, EndpointCall, OAuthErrorCode, Params, ResourceRequest};
use serde_json::{Value, json};

use crate::support::{Backend, DpopKey, Env, NOW, on_both_backends};

const TOKEN_URL: &str = "https://as.example/acme/token";

fn hostile() -> [Value; 6] {
    [
        json!(i64::MAX),
        json!(i64::MIN),
        json!(1e300),
        json!(-1e300),
        json!(9.3e18),
        json!("1800000000"),
    ]
}

fn form(pairs: &[(&str, &str)]) -> EndpointCall {
    EndpointCall::post(Params::from_pairs(pairs.iter().copied()))
}

async fn proof(key: &DpopKey, method: &str, htu: &str, iat: &Value, ath: Option<&str>) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let mut claims = json!({
        "jti": uuid::Uuid::new_v4().to_string(), "htm": method, "htu": htu, "iat": iat,
    });
    if let Some(token) = ath {
        claims["ath"] = json!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(token.as_bytes()))
        );
    }
    let header = Header::new(Algorithm::Es256)
        .with_typ("dpop+jwt")
        .with_jwk(&key.key.public_jwk());
    jws::sign(header, claims.to_string().as_bytes(), &key.key)
        .await
        .unwrap()
}

async fn extreme_dpop_iat_is_an_invalid_proof(backend: Backend) {
    let mut config = AsConfig::default();
    config.dpop_nonce_required = false;
    let env = Env::with_config(backend, config).await;
    let (id, secret) = env
        .client(
            ClientAuthMethod::ClientSecretPost,
            vec![GrantType::ClientCredentials],
            |_| {},
        )
        .await;
    let secret = secret.unwrap();
    let call = |proof: String| {
        form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ])
        .with_dpop(proof)
    };
    let key = DpopKey::new();
    for iat in hostile() {
        let err = env
            .server
            .token(
                &env.tenant,
                &call(proof(&key, "POST", TOKEN_URL, &iat, None).await),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), OAuthErrorCode::InvalidDpopProof, "iat {iat}");
    }
    // A fractional NumericDate within the window is a NumericDate like any other.
    let token = env
        .server
        .token(
            &env.tenant,
            &call(proof(&key, "POST", TOKEN_URL, &json!(1_800_000_000.5), None).await),
        )
        .await
        .unwrap()
        .response
        .access_token;

    // At a resource server.
    let validator = crate::flows::validator(&env.server, &env.tenant, env.clock.clone()).await;
    let rs = "https://rs.example/data";
    for iat in hostile() {
        let request = ResourceRequest::new("GET", rs, Some(format!("DPoP {token}")))
            .with_dpop(proof(&key, "GET", rs, &iat, Some(&token)).await);
        let err = validator.validate(&request).await.unwrap_err();
        assert_eq!(err.code(), OAuthErrorCode::InvalidDpopProof, "iat {iat}");
    }
    env.close().await;
}
on_both_backends!(extreme_dpop_iat_is_an_invalid_proof);

async fn extreme_assertion_times_are_an_invalid_client(backend: Backend) {
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
    let assertion = |iat: Value, exp: Value| {
        let claims = json!({
            "iss": id, "sub": id, "aud": TOKEN_URL, "jti": uuid::Uuid::new_v4().to_string(),
            "iat": iat, "exp": exp,
        });
        let key = &key;
        async move {
            jws::sign(
                Header::new(Algorithm::Es256).with_typ("JWT"),
                claims.to_string().as_bytes(),
                key,
            )
            .await
            .unwrap()
        }
    };
    let mut cases: Vec<(Value, Value)> = hostile()
        .into_iter()
        .map(|iat| (iat, json!(NOW + 60)))
        .collect();
    cases.extend(hostile().into_iter().map(|exp| (json!(NOW), exp)));
    for (iat, exp) in cases {
        let jwt = assertion(iat.clone(), exp.clone()).await;
        let call = form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", edk_oauth::JWT_BEARER_ASSERTION),
            ("client_assertion", &jwt),
        ]);
        let err = env.server.token(&env.tenant, &call).await.unwrap_err();
        assert_eq!(
            err.code(),
            OAuthErrorCode::InvalidClient,
            "iat {iat}, exp {exp}"
        );
    }
    let jwt = assertion(json!(NOW), json!(NOW + 60)).await;
    let call = form(&[
        ("grant_type", "client_credentials"),
        ("client_assertion_type", edk_oauth::JWT_BEARER_ASSERTION),
        ("client_assertion", &jwt),
    ]);
    env.server.token(&env.tenant, &call).await.unwrap();
    env.close().await;
}
on_both_backends!(extreme_assertion_times_are_an_invalid_client);
