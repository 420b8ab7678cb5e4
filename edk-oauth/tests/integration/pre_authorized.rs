//! Pre-authorized codes at the token endpoint: a `tx_code` the code does not have, wallets
//! naming an unregistered `client_id`, and the `client_id` of anonymous access tokens.

use base64::Engine as _;
use edk_oauth::client::{ClientAuthMethod, ClientMetadata, GrantType};
use edk_oauth::grant::Grant;
use edk_oauth::token::ANONYMOUS_CLIENT_ID;
use edk_oauth::{
    AsConfig, EndpointCall, Error, NewClient, OAuthErrorCode, Params, PreAuthorizedCodeRequest,
};
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::support::{Backend, Env, on_both_backends};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:pre-authorized_code";

fn form(pairs: &[(&str, &str)]) -> EndpointCall {
    EndpointCall::post(Params::from_pairs(pairs.iter().copied()))
}

fn claims(token: &str) -> Value {
    let jws = edk_core::jose::Jws::parse(token, &edk_core::Limits::DEFAULT).unwrap();
    serde_json::from_slice(jws.unverified_payload()).unwrap()
}

async fn mint(env: &Env, tx_code: bool) -> String {
    let mut request = PreAuthorizedCodeRequest::new(Grant::new("holder"));
    if tx_code {
        request = request.with_tx_code(6);
    }
    let minted = env
        .server
        .mint_pre_authorized_code(&env.tenant, request)
        .await
        .unwrap();
    minted.code.expose_secret().to_owned()
}

async fn a_tx_code_for_a_code_without_one_is_invalid_request(backend: Backend) {
    let env = Env::new(backend).await;
    let code = mint(&env, false).await;
    let err = env
        .server
        .token(
            &env.tenant,
            &form(&[
                ("grant_type", GRANT),
                ("pre-authorized_code", &code),
                ("tx_code", "123456"),
            ]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), OAuthErrorCode::InvalidRequest, "{err:?}");
    // The code is left as it was.
    let response = env
        .server
        .token(
            &env.tenant,
            &form(&[("grant_type", GRANT), ("pre-authorized_code", &code)]),
        )
        .await
        .unwrap()
        .response;
    // RFC 9068 §2.2: anonymous access tokens name the documented anonymous client.
    assert_eq!(
        claims(&response.access_token)["client_id"],
        ANONYMOUS_CLIENT_ID
    );
    env.close().await;
}
on_both_backends!(a_tx_code_for_a_code_without_one_is_invalid_request);

async fn an_unregistered_wallet_client_id_is_anonymous(backend: Backend) {
    let env = Env::new(backend).await;
    let (confidential, _) = env
        .client(
            ClientAuthMethod::ClientSecretBasic,
            vec![GrantType::PreAuthorizedCode],
            |_| {},
        )
        .await;
    // A wallet's own client_id, never registered here (npm @openid4vc/openid4vci sends one).
    let code = mint(&env, false).await;
    let response = env
        .server
        .token(
            &env.tenant,
            &form(&[
                ("grant_type", GRANT),
                ("pre-authorized_code", &code),
                ("client_id", "wallet-7c9e"),
            ]),
        )
        .await
        .unwrap()
        .response;
    assert_eq!(
        claims(&response.access_token)["client_id"],
        ANONYMOUS_CLIENT_ID
    );
    assert!(response.refresh_token.is_none());
    // A registered confidential client must still authenticate.
    let code = mint(&env, false).await;
    let err = env
        .server
        .token(
            &env.tenant,
            &form(&[
                ("grant_type", GRANT),
                ("pre-authorized_code", &code),
                ("client_id", &confidential),
            ]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), OAuthErrorCode::InvalidClient);
    // An unregistered client_id with a secret is a failed authentication, not anonymity.
    let credentials = base64::engine::general_purpose::STANDARD.encode("wallet-7c9e:guess");
    let err = env
        .server
        .token(
            &env.tenant,
            &form(&[("grant_type", GRANT), ("pre-authorized_code", &code)])
                .with_authorization(format!("Basic {credentials}")),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), OAuthErrorCode::InvalidClient);
    // `anonymous` cannot be registered.
    let metadata = ClientMetadata::new(ClientAuthMethod::None, vec![GrantType::PreAuthorizedCode]);
    let err = env
        .server
        .create_client(
            &env.tenant,
            NewClient::new(metadata).with_id(edk_core::ClientId::new(ANONYMOUS_CLIENT_ID).unwrap()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "client_id",
                ..
            }
        ),
        "{err:?}"
    );
    env.close().await;
}
on_both_backends!(an_unregistered_wallet_client_id_is_anonymous);

async fn without_anonymous_access_an_unregistered_client_id_is_invalid_client(backend: Backend) {
    let mut config = AsConfig::default();
    config.pre_authorized_anonymous_access = false;
    let env = Env::with_config(backend, config).await;
    let code = mint(&env, false).await;
    let err = env
        .server
        .token(
            &env.tenant,
            &form(&[
                ("grant_type", GRANT),
                ("pre-authorized_code", &code),
                ("client_id", "wallet-7c9e"),
            ]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), OAuthErrorCode::InvalidClient);
    env.close().await;
}
on_both_backends!(without_anonymous_access_an_unregistered_client_id_is_invalid_client);

#[tokio::test]
async fn metadata_lists_signing_algorithms_for_every_private_key_jwt_endpoint() {
    let env = Env::new(Backend::sqlite().await).await;
    let doc = env.server.metadata(&env.tenant).unwrap();
    for endpoint in ["token", "introspection", "revocation"] {
        let methods = &doc[format!("{endpoint}_endpoint_auth_methods_supported")];
        assert!(
            methods
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m == "private_key_jwt"),
            "{endpoint}"
        );
        let algs = &doc[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")];
        assert!(
            algs.as_array().unwrap().iter().any(|a| a == "ES256"),
            "{endpoint}: {algs}"
        );
    }
    env.close().await;
}
