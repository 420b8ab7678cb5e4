//! The issuer's store on PostgreSQL and SQLite: configurations, single-use nonces and offer
//! references under concurrency and across replicas, session transitions, tenant isolation
//! and the purge of expired state.

use std::sync::Arc;

use edk_core::TenantSlug;
use edk_oid4vci::status::{CredentialSelector, StatusListSpec, StatusPurpose};
use edk_oid4vci::store::{
    IssuanceCompletion, IssuedFilter, IssuerStore, NewIssuedCredential, Notification,
    NotificationEvent, Session, SessionStatus, SqlStore, StatusStore as _, StoredConfiguration,
};
use edk_oid4vci::{CredentialConfiguration, IssuanceSettings, StoreError};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{DatabaseConfig, Tenancy, TenantContext, TenantDirectory as _};
use edk_testkit::TestDb;
use serde_json::json;

const NOW: i64 = 1_800_000_000;

pub(crate) struct Backend {
    pub(crate) tenancy: Tenancy,
    pub(crate) replica: Tenancy,
    _dir: Option<tempfile::TempDir>,
    db: Option<TestDb>,
}

async fn tenancy(database: DatabaseConfig) -> Tenancy {
    Tenancy::builder(database)
        .migrations(edk_oid4vci::migrations().unwrap())
        .build()
        .await
        .unwrap()
}

impl Backend {
    pub(crate) async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            tenancy: tenancy(DatabaseConfig::Sqlite(SqliteConfig::new(dir.path()))).await,
            replica: tenancy(DatabaseConfig::Sqlite(SqliteConfig::new(dir.path()))).await,
            _dir: Some(dir),
            db: None,
        }
    }

    pub(crate) async fn postgres() -> Self {
        let db = TestDb::new().await;
        let config = || {
            let mut config = edk_tenancy::store::postgres::PostgresConfig::new(db.url().into());
            config.max_connections = 40;
            DatabaseConfig::Postgres(config)
        };
        Self {
            tenancy: tenancy(config()).await,
            replica: tenancy(config()).await,
            _dir: None,
            db: Some(db),
        }
    }

    pub(crate) async fn tenant(&self, slug: &str) -> TenantContext {
        let tenant = self
            .tenancy
            .provision(TenantSlug::new(slug).unwrap(), slug)
            .await
            .unwrap();
        self.tenancy.context(tenant.id).await.unwrap()
    }

    pub(crate) async fn close(self) {
        if let Some(db) = self.db {
            db.close().await;
        }
    }
}

macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_sqlite() {
                super::$name(super::Backend::sqlite().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_postgres() {
                super::$name(super::Backend::postgres().await).await;
            }
        }
    };
}
pub(crate) use on_both_backends;

fn stored(vct: &str) -> StoredConfiguration {
    StoredConfiguration {
        configuration: CredentialConfiguration::from_json(json!({
            "format": "dc+sd-jwt", "vct": vct, "scope": "identity",
        }))
        .unwrap(),
        settings: IssuanceSettings {
            lifetime_secs: Some(60),
            ..IssuanceSettings::default()
        },
    }
}

fn session(id: &str, correlation_id: Option<&str>) -> Session {
    Session {
        id: id.to_owned(),
        correlation_id: correlation_id.map(str::to_owned),
        status: SessionStatus::Offered,
        configuration_ids: vec!["identity".to_owned()],
        claims: json!({ "identity": { "given_name": "Erika" } })
            .as_object()
            .cloned()
            .unwrap(),
        offer: json!({ "credential_issuer": "https://issuer.example" }),
        offer_uri: None,
        created_at: NOW,
        updated_at: NOW,
        expires_at: NOW + 600,
        deferred: false,
        minimized: false,
        subject: None,
        login_claims: serde_json::Map::new(),
    }
}

async fn configurations_are_stored_replaced_and_deleted(backend: Backend) {
    let store = SqlStore::new(backend.tenancy.clone());
    let acme = backend.tenant("acme").await;
    let other = backend.tenant("other").await;
    store
        .put_configuration(&acme, "identity", &stored("https://v.example/1"), NOW)
        .await
        .unwrap();
    store
        .put_configuration(&acme, "identity", &stored("https://v.example/2"), NOW + 1)
        .await
        .unwrap();
    store
        .put_configuration(&acme, "address", &stored("https://v.example/a"), NOW)
        .await
        .unwrap();
    let read = store
        .configuration(&acme, "identity")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read, stored("https://v.example/2"));
    let ids: Vec<String> = store
        .configurations(&acme)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, ["address", "identity"]);
    assert!(
        store
            .configuration(&other, "identity")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.configurations(&other).await.unwrap().is_empty());
    assert!(
        !store
            .delete_configuration(&other, "identity")
            .await
            .unwrap()
    );
    assert!(store.delete_configuration(&acme, "identity").await.unwrap());
    assert!(
        store
            .configuration(&acme, "identity")
            .await
            .unwrap()
            .is_none()
    );
    backend.close().await;
}
on_both_backends!(configurations_are_stored_replaced_and_deleted);

async fn a_nonce_is_redeemed_once_by_64_concurrent_requests_on_two_replicas(backend: Backend) {
    let first = Arc::new(SqlStore::new(backend.tenancy.clone()));
    let second = Arc::new(SqlStore::new(backend.replica.clone()));
    let acme = backend.tenant("acme").await;
    first.insert_nonce(&acme, "n-1", NOW + 60).await.unwrap();
    let attempts = (0..64).map(|i| {
        let store = if i % 2 == 0 {
            Arc::clone(&first)
        } else {
            Arc::clone(&second)
        };
        let acme = acme.clone();
        tokio::spawn(async move { store.redeem_nonce(&acme, "n-1", NOW).await.unwrap() })
    });
    let results = futures::future::join_all(attempts).await;
    let redeemed = results.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(redeemed, 1);
    assert!(!first.redeem_nonce(&acme, "n-1", NOW).await.unwrap());
    backend.close().await;
}
on_both_backends!(a_nonce_is_redeemed_once_by_64_concurrent_requests_on_two_replicas);

async fn nonces_expire_and_stay_in_their_tenant(backend: Backend) {
    let store = SqlStore::new(backend.tenancy.clone());
    let acme = backend.tenant("acme").await;
    let other = backend.tenant("other").await;
    store.insert_nonce(&acme, "late", NOW + 60).await.unwrap();
    assert!(!store.redeem_nonce(&acme, "late", NOW + 60).await.unwrap());
    store.insert_nonce(&acme, "mine", NOW + 60).await.unwrap();
    assert!(!store.redeem_nonce(&other, "mine", NOW).await.unwrap());
    assert!(store.redeem_nonce(&acme, "mine", NOW).await.unwrap());
    assert!(
        !store
            .redeem_nonce(&acme, "never-issued", NOW)
            .await
            .unwrap()
    );
    store.insert_nonce(&acme, "dup", NOW + 60).await.unwrap();
    assert!(matches!(
        store
            .insert_nonce(&acme, "dup", NOW + 60)
            .await
            .unwrap_err(),
        StoreError::Conflict("nonce")
    ));
    backend.close().await;
}
on_both_backends!(nonces_expire_and_stay_in_their_tenant);

async fn an_offer_reference_is_served_once(backend: Backend) {
    let first = Arc::new(SqlStore::new(backend.tenancy.clone()));
    let second = Arc::new(SqlStore::new(backend.replica.clone()));
    let acme = backend.tenant("acme").await;
    let other = backend.tenant("other").await;
    let offer = json!({ "credential_issuer": "https://issuer.example",
        "credential_configuration_ids": ["identity"] });
    first
        .insert_offer_reference(&acme, "handle", "s-1", &offer, NOW + 300)
        .await
        .unwrap();
    assert!(
        first
            .take_offer_reference(&other, "handle", NOW)
            .await
            .unwrap()
            .is_none()
    );
    let attempts = (0..16).map(|i| {
        let store = if i % 2 == 0 {
            Arc::clone(&first)
        } else {
            Arc::clone(&second)
        };
        let acme = acme.clone();
        tokio::spawn(async move {
            store
                .take_offer_reference(&acme, "handle", NOW)
                .await
                .unwrap()
        })
    });
    let served: Vec<_> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .filter_map(|r| r.unwrap())
        .collect();
    assert_eq!(served, vec![("s-1".to_owned(), offer.clone())]);
    first
        .insert_offer_reference(&acme, "stale", "s-2", &offer, NOW)
        .await
        .unwrap();
    assert!(
        first
            .take_offer_reference(&acme, "stale", NOW)
            .await
            .unwrap()
            .is_none()
    );
    backend.close().await;
}
on_both_backends!(an_offer_reference_is_served_once);

async fn a_session_and_its_offer_reference_are_stored_together(backend: Backend) {
    let store = SqlStore::new(backend.tenancy.clone());
    let acme = backend.tenant("acme").await;
    let offer = json!({ "credential_issuer": "https://issuer.example",
        "credential_configuration_ids": ["identity"] });
    store
        .insert_session_and_reference(&acme, &session("s-1", None), None, "handle-1", &offer)
        .await
        .unwrap();
    assert!(store.session(&acme, "s-1").await.unwrap().is_some());
    assert_eq!(
        store
            .take_offer_reference(&acme, "handle-1", NOW)
            .await
            .unwrap(),
        Some(("s-1".to_owned(), offer.clone()))
    );
    // A reference that cannot be stored leaves no session behind.
    store
        .insert_offer_reference(&acme, "taken", "s-0", &offer, NOW + 300)
        .await
        .unwrap();
    assert!(matches!(
        store
            .insert_session_and_reference(&acme, &session("s-2", None), None, "taken", &offer)
            .await
            .unwrap_err(),
        StoreError::Conflict("offer reference")
    ));
    assert!(store.session(&acme, "s-2").await.unwrap().is_none());
    // Nor does a session that cannot be stored leave its reference.
    assert!(matches!(
        store
            .insert_session_and_reference(&acme, &session("s-1", None), None, "handle-3", &offer)
            .await
            .unwrap_err(),
        StoreError::Conflict(_)
    ));
    assert!(
        store
            .take_offer_reference(&acme, "handle-3", NOW)
            .await
            .unwrap()
            .is_none()
    );
    backend.close().await;
}
on_both_backends!(a_session_and_its_offer_reference_are_stored_together);

async fn sessions_move_only_from_the_expected_status(backend: Backend) {
    let store = SqlStore::new(backend.tenancy.clone());
    let acme = backend.tenant("acme").await;
    let other = backend.tenant("other").await;
    store
        .insert_session(&acme, &session("s-1", Some("order-7")), None)
        .await
        .unwrap();
    assert!(matches!(
        store
            .insert_session(&acme, &session("s-2", Some("order-7")), None)
            .await
            .unwrap_err(),
        StoreError::Conflict("session id, correlation id or issuer_state")
    ));
    let by_correlation = store
        .session_by_correlation(&acme, "order-7")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_correlation, session("s-1", Some("order-7")));
    assert!(store.session(&other, "s-1").await.unwrap().is_none());
    assert!(
        store
            .transition(
                &acme,
                "s-1",
                &[SessionStatus::Offered],
                SessionStatus::TokenIssued,
                NOW + 5
            )
            .await
            .unwrap()
    );
    // A second token for the same offer does not move it again.
    assert!(
        !store
            .transition(
                &acme,
                "s-1",
                &[SessionStatus::Offered],
                SessionStatus::TokenIssued,
                NOW + 6
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .transition(
                &other,
                "s-1",
                &[SessionStatus::TokenIssued],
                SessionStatus::Cancelled,
                NOW
            )
            .await
            .unwrap()
    );
    let read = store.session(&acme, "s-1").await.unwrap().unwrap();
    assert_eq!(read.status, SessionStatus::TokenIssued);
    assert_eq!(read.updated_at, NOW + 5);
    backend.close().await;
}
on_both_backends!(sessions_move_only_from_the_expected_status);

async fn a_credential_response_is_completed_in_one_unit_of_work(backend: Backend) {
    let store = SqlStore::new(backend.tenancy.clone());
    let acme = backend.tenant("acme").await;
    let spec = StatusListSpec {
        configuration_id: "identity".to_owned(),
        purpose: StatusPurpose::Revocation,
        bits: edk_core::status_list::Bits::One,
        size: 64,
        issuer: "https://issuer.example/acme".to_owned(),
        uri_base: "https://issuer.example/acme/status-lists".to_owned(),
    };
    let record =
        |credential_id: &str, session_id: &str, index: edk_oid4vci::status::StatusIndex| {
            NewIssuedCredential {
                credential_id: credential_id.to_owned(),
                session_id: session_id.to_owned(),
                correlation_id: None,
                configuration_id: "identity".to_owned(),
                list_id: index.list_id,
                index: index.index,
                issued_at: NOW,
                expires_at: None,
            }
        };
    let recorded = |credential_id: &str| {
        let store = store.clone();
        let acme = acme.clone();
        let filter = IssuedFilter {
            selectors: vec![CredentialSelector::Credential(credential_id.to_owned())],
            limit: 10,
            ..IssuedFilter::default()
        };
        async move {
            store
                .issued_credentials(&acme, &filter)
                .await
                .unwrap()
                .len()
        }
    };
    for id in ["s-1", "s-2"] {
        store
            .insert_session(&acme, &session(id, None), None)
            .await
            .unwrap();
    }
    let mut indices = store
        .allocate_status_indices(&acme, &spec, 2, NOW)
        .await
        .unwrap()
        .into_iter();
    let first = [record("c-1", "s-1", indices.next().unwrap())];
    let completion = IssuanceCompletion {
        session_id: "s-1",
        from: &[SessionStatus::Offered, SessionStatus::TokenIssued],
        issued: &first,
        notification_id: "n-1",
        notification_expires_at: NOW + 600,
        now: NOW + 5,
    };
    assert!(store.complete_issuance(&acme, &completion).await.unwrap());
    let read = store.session(&acme, "s-1").await.unwrap().unwrap();
    assert_eq!(read.status, SessionStatus::CredentialIssued);
    assert_eq!(read.updated_at, NOW + 5);
    assert_eq!(recorded("c-1").await, 1);
    let accepted = Notification {
        event: NotificationEvent::CredentialAccepted,
        description: None,
        received_at: NOW + 10,
    };
    assert!(
        store
            .record_notification(&acme, "n-1", "s-1", &accepted)
            .await
            .unwrap()
    );
    // A response that cannot be completed whole (its notification id is taken) stores
    // nothing: no credential record, no move of the session.
    let second = [record("c-2", "s-2", indices.next().unwrap())];
    let clash = IssuanceCompletion {
        session_id: "s-2",
        issued: &second,
        ..completion
    };
    assert!(matches!(
        store.complete_issuance(&acme, &clash).await.unwrap_err(),
        StoreError::Conflict("notification id")
    ));
    assert_eq!(recorded("c-2").await, 0);
    let read = store.session(&acme, "s-2").await.unwrap().unwrap();
    assert_eq!(read.status, SessionStatus::Offered);
    // A session no longer in one of `from` does not move.
    let late = IssuanceCompletion {
        session_id: "s-1",
        issued: &[],
        notification_id: "n-3",
        ..completion
    };
    assert!(!store.complete_issuance(&acme, &late).await.unwrap());
    backend.close().await;
}
on_both_backends!(a_credential_response_is_completed_in_one_unit_of_work);

async fn purge_removes_expired_state_and_expires_unused_offers(backend: Backend) {
    let store = SqlStore::new(backend.tenancy.clone());
    let acme = backend.tenant("acme").await;
    store.insert_nonce(&acme, "old", NOW).await.unwrap();
    store.insert_nonce(&acme, "live", NOW + 100).await.unwrap();
    store
        .insert_offer_reference(&acme, "old", "s", &json!({}), NOW)
        .await
        .unwrap();
    let mut lapsed = session("lapsed", None);
    lapsed.expires_at = NOW;
    store.insert_session(&acme, &lapsed, None).await.unwrap();
    let mut used = session("used", None);
    used.expires_at = NOW;
    used.status = SessionStatus::CredentialIssued;
    store.insert_session(&acme, &used, None).await.unwrap();
    store
        .insert_session(&acme, &session("open", None), None)
        .await
        .unwrap();
    assert_eq!(store.purge_expired(&acme, NOW).await.unwrap(), 3);
    assert!(store.redeem_nonce(&acme, "live", NOW).await.unwrap());
    let status = |id: &'static str| {
        let store = store.clone();
        let acme = acme.clone();
        async move { store.session(&acme, id).await.unwrap().unwrap().status }
    };
    assert_eq!(status("lapsed").await, SessionStatus::Expired);
    assert_eq!(status("used").await, SessionStatus::CredentialIssued);
    assert_eq!(status("open").await, SessionStatus::Offered);
    assert_eq!(store.purge_expired(&acme, NOW).await.unwrap(), 0);
    backend.close().await;
}
on_both_backends!(purge_removes_expired_state_and_expires_unused_offers);
