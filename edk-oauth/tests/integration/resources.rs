//! RFC 8707 resources: a client may ask only for the resources registered for it.

use base64::Engine as _;
use edk_oauth::client::{ClientAuthMethod, ClientMetadata, GrantType};
use edk_oauth::{AuthorizeOutcome, EndpointCall, Error, NewClient, OAuthErrorCode, Params};

use crate::support::{Backend, Env, on_both_backends, pkce};

const ORDERS: &str = "https://api.example/orders";

fn basic(id: &str, secret: &str, resource: &str) -> EndpointCall {
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    EndpointCall::post(Params::from_pairs([
        ("grant_type", "client_credentials"),
        ("resource", resource),
    ]))
    .with_authorization(format!("Basic {credentials}"))
}

fn audience(token: &str) -> serde_json::Value {
    let jws = edk_core::jose::Jws::parse(token, &edk_core::Limits::DEFAULT).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(jws.unverified_payload()).unwrap();
    claims["aud"].clone()
}

async fn only_registered_resources_may_be_requested(backend: Backend) {
    let env = Env::new(backend).await;
    let (allowed, allowed_secret) = env
        .client(
            ClientAuthMethod::ClientSecretBasic,
            vec![GrantType::ClientCredentials],
            |m| m.resources = vec![ORDERS.to_owned()],
        )
        .await;
    let (other, other_secret) = env
        .client(
            ClientAuthMethod::ClientSecretBasic,
            vec![GrantType::ClientCredentials],
            |_| {},
        )
        .await;
    let (allowed_secret, other_secret) = (allowed_secret.unwrap(), other_secret.unwrap());

    let token = env
        .server
        .token(&env.tenant, &basic(&allowed, &allowed_secret, ORDERS))
        .await
        .unwrap()
        .response
        .access_token;
    assert_eq!(audience(&token), ORDERS);
    for (id, secret, resource) in [
        (&allowed, &allowed_secret, "https://api.example/payments"),
        (&allowed, &allowed_secret, "http://api.example/orders"),
        (&other, &other_secret, ORDERS),
    ] {
        let err = env
            .server
            .token(&env.tenant, &basic(id, secret, resource))
            .await
            .unwrap_err();
        assert_eq!(err.code(), OAuthErrorCode::InvalidTarget, "{id} {resource}");
    }

    // At the authorization endpoint: an error redirect, or a code for the registered one.
    let (public, _) = env
        .client(
            ClientAuthMethod::None,
            vec![GrantType::AuthorizationCode],
            |m| m.resources = vec![ORDERS.to_owned()],
        )
        .await;
    let (verifier, challenge) = pkce();
    let authorize = |resource: &str| {
        Params::from_pairs([
            ("response_type", "code"),
            ("client_id", public.as_str()),
            ("redirect_uri", "https://client.example/cb"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("resource", resource),
        ])
    };
    let query = |outcome: AuthorizeOutcome, name: &str| {
        let AuthorizeOutcome::Redirect(url) = outcome else {
            panic!("expected a redirect, got {outcome:?}");
        };
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    let refused = env
        .server
        .authorize(&env.tenant, &authorize("https://api.example/payments"))
        .await
        .unwrap();
    assert_eq!(query(refused, "error").as_deref(), Some("invalid_target"));
    let granted = env
        .server
        .authorize(&env.tenant, &authorize(ORDERS))
        .await
        .unwrap();
    let code = query(granted, "code").unwrap();
    let call = EndpointCall::post(Params::from_pairs([
        ("grant_type", "authorization_code"),
        ("client_id", public.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", "https://client.example/cb"),
        ("code_verifier", verifier.as_str()),
    ]));
    let token = env
        .server
        .token(&env.tenant, &call)
        .await
        .unwrap()
        .response
        .access_token;
    assert_eq!(audience(&token), ORDERS);

    // A registration naming something that is not an https resource is refused.
    let mut metadata = ClientMetadata::new(
        ClientAuthMethod::ClientSecretBasic,
        vec![GrantType::ClientCredentials],
    );
    metadata.resources = vec!["https://api.example/orders#fragment".to_owned()];
    let err = env
        .server
        .create_client(&env.tenant, NewClient::new(metadata))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "resources",
                ..
            }
        ),
        "{err:?}"
    );
    env.close().await;
}
on_both_backends!(only_registered_resources_may_be_requested);
