//! The store's single-use semantics on both backends.

use edk_core::ClientId;
use edk_oauth::client::{Client, ClientAuthMethod, ClientMetadata, GrantType};
use edk_oauth::grant::Grant;
use edk_oauth::store::{GrantCheck, NewPreAuthCode, OAuthStore, PreAuthRedemption};
use edk_oauth::{Error, SqlStore};

use crate::support::Backend;

async fn clients_round_trip(backend: Backend) {
    let tenant = backend.tenant("acme").await;
    let store = SqlStore::new(backend.tenancy.clone());
    let client = Client {
        client_id: ClientId::new("svc").unwrap(),
        metadata: ClientMetadata::new(
            ClientAuthMethod::ClientSecretBasic,
            vec![GrantType::ClientCredentials],
        ),
        created_at: 1,
        updated_at: 1,
    };
    store
        .insert_client(&tenant, &client, Some("hash"))
        .await
        .unwrap();
    let again = store.insert_client(&tenant, &client, None).await;
    assert!(matches!(again, Err(Error::Conflict { .. })));
    let (found, hash) = store
        .client(&tenant, &client.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, client);
    assert_eq!(hash.as_deref(), Some("hash"));
    assert!(
        store
            .delete_client(&tenant, &client.client_id)
            .await
            .unwrap()
    );
    assert!(
        store
            .client(&tenant, &client.client_id)
            .await
            .unwrap()
            .is_none()
    );
    backend.close().await;
}

#[tokio::test]
async fn clients_round_trip_on_sqlite() {
    clients_round_trip(Backend::sqlite().await).await;
}

#[tokio::test]
async fn clients_round_trip_on_postgres() {
    clients_round_trip(Backend::postgres().await).await;
}

async fn tx_code_attempts_are_bounded(backend: Backend) {
    let tenant = backend.tenant("acme").await;
    let store = SqlStore::new(backend.tenancy.clone());
    let code = NewPreAuthCode {
        code_hash: "code".to_owned(),
        tx_code_hash: Some("right".to_owned()),
        grant: Grant::new("alice"),
        expires_at: 1_000,
    };
    store.insert_pre_auth(&tenant, &code, 0).await.unwrap();
    let missing = store
        .redeem_pre_auth(&tenant, "code", None, 3, GrantCheck::ANY, 10)
        .await
        .unwrap();
    assert_eq!(missing, PreAuthRedemption::TxCodeRequired);
    for remaining in [2, 1, 0] {
        let wrong = store
            .redeem_pre_auth(&tenant, "code", Some("wrong"), 3, GrantCheck::ANY, 10)
            .await
            .unwrap();
        assert_eq!(wrong, PreAuthRedemption::WrongTxCode { remaining });
    }
    let revoked = store
        .redeem_pre_auth(&tenant, "code", Some("right"), 3, GrantCheck::ANY, 10)
        .await
        .unwrap();
    assert_eq!(revoked, PreAuthRedemption::Invalid);
    backend.close().await;
}

#[tokio::test]
async fn tx_code_attempts_are_bounded_on_sqlite() {
    tx_code_attempts_are_bounded(Backend::sqlite().await).await;
}

#[tokio::test]
async fn tx_code_attempts_are_bounded_on_postgres() {
    tx_code_attempts_are_bounded(Backend::postgres().await).await;
}
