//! A tenant flooding client-secret checks gets `temporarily_unavailable` at once beyond its
//! share of the argon2 pool, while another tenant's check goes through.

use base64::Engine as _;
use edk_oauth::client::{ClientAuthMethod, GrantType};
use edk_oauth::{EndpointCall, NewClient, OAuthErrorCode, Params};
use futures::future::join_all;
use secrecy::ExposeSecret;

use crate::support::{Backend, Env, on_both_backends};

const FLOOD: usize = 16;

fn basic(id: &str, secret: &str) -> EndpointCall {
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    EndpointCall::post(Params::from_pairs([("grant_type", "client_credentials")]))
        .with_authorization(format!("Basic {credentials}"))
}

async fn a_flooding_tenant_is_refused_fast_and_others_proceed(backend: Backend) {
    let env = Env::new(backend).await;
    let other = env.backend.tenant("other").await;
    let (id, secret) = env
        .client(
            ClientAuthMethod::ClientSecretBasic,
            vec![GrantType::ClientCredentials],
            |_| {},
        )
        .await;
    let secret = secret.unwrap();
    let metadata = edk_oauth::client::ClientMetadata::new(
        ClientAuthMethod::ClientSecretBasic,
        vec![GrantType::ClientCredentials],
    );
    let (other_client, other_secret) = env
        .server
        .create_client(&other, NewClient::new(metadata))
        .await
        .unwrap();
    let other_secret = other_secret.unwrap().expose_secret().to_owned();
    // One wrong secret first: the registration is cached, so the flood reaches the pool at
    // once.
    let err = env
        .server
        .token(&env.tenant, &basic(&id, "wrong"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), OAuthErrorCode::InvalidClient);

    let flood = (0..FLOOD).map(|n| {
        let call = basic(&id, &format!("wrong-{n}"));
        let server = &env.server;
        let tenant = &env.tenant;
        async move { server.token(tenant, &call).await }
    });
    let other_call = basic(other_client.client_id.as_str(), &other_secret);
    let (flooded, other_result) =
        tokio::join!(join_all(flood), env.server.token(&other, &other_call));
    other_result.unwrap();
    let codes: Vec<_> = flooded
        .into_iter()
        .map(|result| result.unwrap_err().code())
        .collect();
    let refused = codes
        .iter()
        .filter(|code| **code == OAuthErrorCode::TemporarilyUnavailable)
        .count();
    let checked = codes
        .iter()
        .filter(|code| **code == OAuthErrorCode::InvalidClient)
        .count();
    assert_eq!((refused, checked), (FLOOD - 2, 2), "{codes:?}");
    assert_eq!(OAuthErrorCode::TemporarilyUnavailable.status(), 503);
    // The share is given back: the tenant's own client works again.
    env.server
        .token(&env.tenant, &basic(&id, &secret))
        .await
        .unwrap();
    env.close().await;
}
on_both_backends!(a_flooding_tenant_is_refused_fast_and_others_proceed);
