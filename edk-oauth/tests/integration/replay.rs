//! DPoP replay at resource servers shared through the store: a proof accepted by one
//! replica's validator is refused by another's over the same database.

use std::sync::Arc;

use edk_core::jose::JwksResolver;
use edk_oauth::client::{ClientAuthMethod, GrantType};
use edk_oauth::{
    AccessTokenValidator, AsConfig, AuthorizationServer, EndpointCall, OAuthErrorCode, Params,
    ResourceRequest, SqlStore, StoreReplayCache,
};
use edk_tenancy::TenantContext;

use crate::support::{Backend, DpopKey, Env, NOW, on_both_backends, resolve};

const RS: &str = "https://rs.example/data";

async fn replica_validator(
    env: &Env,
    tenancy: &edk_tenancy::Tenancy,
    tenant: &TenantContext,
) -> AccessTokenValidator {
    let jwks = env.server.jwks(&env.tenant).await.unwrap();
    let issuer = AuthorizationServer::issuer(tenant).unwrap();
    AccessTokenValidator::new(
        issuer.clone(),
        issuer,
        Arc::new(JwksResolver::new(&jwks)),
        env.clock.clone(),
    )
    .with_replay_cache(Arc::new(StoreReplayCache::new(
        Arc::new(SqlStore::new(tenancy.clone())),
        tenant.clone(),
    )))
}

async fn a_proof_accepted_by_one_replica_is_refused_by_another(backend: Backend) {
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
    let key = DpopKey::new();
    let call = EndpointCall::post(Params::from_pairs([
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret.unwrap().as_str()),
    ]))
    .with_dpop(
        key.proof("POST", "https://as.example/acme/token", NOW, None, None)
            .await,
    );
    let token = env
        .server
        .token(&env.tenant, &call)
        .await
        .unwrap()
        .response
        .access_token;

    let other_tenancy = env.backend.replica().await;
    let other_tenant = resolve(&other_tenancy, "acme").await;
    let first = replica_validator(&env, &env.backend.tenancy, &env.tenant).await;
    let second = replica_validator(&env, &other_tenancy, &other_tenant).await;
    let request = |proof: String| {
        ResourceRequest::new("GET", RS, Some(format!("DPoP {token}"))).with_dpop(proof)
    };
    let proof = key.proof("GET", RS, NOW, None, Some(&token)).await;
    first.validate(&request(proof.clone())).await.unwrap();
    let err = second.validate(&request(proof.clone())).await.unwrap_err();
    assert_eq!(err.code(), OAuthErrorCode::InvalidDpopProof);
    let err = first.validate(&request(proof)).await.unwrap_err();
    assert_eq!(err.code(), OAuthErrorCode::InvalidDpopProof);
    // A fresh proof works at either.
    let fresh = key.proof("GET", RS, NOW, None, Some(&token)).await;
    second.validate(&request(fresh)).await.unwrap();
    env.close().await;
}
on_both_backends!(a_proof_accepted_by_one_replica_is_refused_by_another);
