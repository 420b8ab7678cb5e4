//! Only versions of the tenant's access-token signing alias verify its access tokens: a JWT
//! with `typ: at+jwt` and the right claims signed by any other key of the tenant is refused by
//! introspection and by a resource server wired to the KMS.

use edk_core::jose::{Algorithm, Header, SigningKey, jws};
use edk_kms::Kms as _;
use edk_kms::kms::{Caller, KeyAlias, NewKey, purpose, service};
use edk_kms::provider::KeySpec;
use edk_oauth::client::{ClientAuthMethod, GrantType};
use edk_oauth::{AccessTokenValidator, EndpointCall, OAuthErrorCode, Params, ResourceRequest};
use serde_json::{Value, json};

use crate::support::{Backend, Env, NOW, on_both_backends};

const ISSUER: &str = "https://as.example/acme";

fn claims(client_id: &str) -> Value {
    json!({
        "iss": ISSUER, "sub": client_id, "aud": ISSUER, "client_id": client_id,
        "scope": "read", "iat": NOW, "exp": NOW + 300, "jti": uuid::Uuid::new_v4().to_string(),
    })
}

async fn tokens_signed_by_other_tenant_keys_are_refused(backend: Backend) {
    let env = Env::new(backend).await;
    let (id, secret) = env
        .client(
            ClientAuthMethod::ClientSecretPost,
            vec![GrantType::ClientCredentials],
            |_| {},
        )
        .await;
    let secret = secret.unwrap();
    let call = EndpointCall::post(Params::from_pairs([
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
    ]));
    let genuine = env
        .server
        .token(&env.tenant, &call)
        .await
        .unwrap()
        .response
        .access_token;

    // Another key of the tenant: an issuer's credential-signing key, held by the KMS.
    let kms = env.kms();
    let caller = Caller::new(env.tenant.clone(), "test");
    let credential = KeyAlias::new(service::ISSUER, purpose::CREDENTIAL_SIGNING).unwrap();
    kms.create_key(
        &caller,
        &NewKey::new(credential.clone(), KeySpec::signing(Algorithm::Es256)),
    )
    .await
    .unwrap();
    let signer = kms.signer(&caller, &credential).await.unwrap();
    let by_credential_key = jws::sign(
        Header::new(signer.algorithm()).with_typ("at+jwt"),
        claims(&id).to_string().as_bytes(),
        signer.as_ref(),
    )
    .await
    .unwrap();

    // A public key registered for verification only; whoever holds its private key signs.
    let outside = SigningKey::generate(Algorithm::Es256).unwrap();
    let registered = KeyAlias::new(service::VERIFIER, "partner-verification").unwrap();
    let info = kms
        .register_public_key(&caller, &registered, &outside.public_jwk())
        .await
        .unwrap();
    let kid = info.versions[0].kid.as_str().to_owned();
    let by_registered_key = jws::sign(
        Header::new(Algorithm::Es256)
            .with_typ("at+jwt")
            .with_kid(&kid),
        claims(&id).to_string().as_bytes(),
        &outside,
    )
    .await
    .unwrap();

    let introspect = |token: &str| {
        EndpointCall::post(Params::from_pairs([
            ("token", token),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ]))
    };
    let active = env
        .server
        .introspect(&env.tenant, &introspect(&genuine))
        .await
        .unwrap();
    assert_eq!(active["active"], true);
    let validator = AccessTokenValidator::new(
        ISSUER,
        ISSUER,
        env.server.access_token_keys(&env.tenant),
        env.clock.clone(),
    );
    let request = |token: &str| {
        ResourceRequest::new(
            "GET",
            "https://rs.example/x",
            Some(format!("Bearer {token}")),
        )
    };
    validator.validate(&request(&genuine)).await.unwrap();

    for forged in [by_credential_key, by_registered_key] {
        assert_eq!(
            env.server
                .introspect(&env.tenant, &introspect(&forged))
                .await
                .unwrap(),
            json!({"active": false})
        );
        assert!(
            env.server
                .own_access_token(&env.tenant, &forged)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            validator
                .validate(&request(&forged))
                .await
                .unwrap_err()
                .code(),
            OAuthErrorCode::InvalidToken
        );
    }
    // The resolver is the server's: rotation keeps old tokens verifiable through it.
    env.server.rotate_signing_key(&env.tenant).await.unwrap();
    validator.validate(&request(&genuine)).await.unwrap();
    env.close().await;
}
on_both_backends!(tokens_signed_by_other_tenant_keys_are_refused);
