//! Two KMS instances (two `LocalKms`, each on its own tenancy and pool) over one database,
//! appending to one tenant's audit chain at the same time: the chain stays linear (every
//! sequence number once, each record linked to the one before) and verifies.

use std::sync::Arc;

use edk_core::jose::Algorithm;
use edk_core::{FixedClock, TenantSlug};
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_kms::provider::{KeyProvider, KeySpec, ProviderId};
use edk_kms::{Caller, KeyAlias, Kms, LocalKms, NewKey};
use edk_tenancy::store::postgres::PostgresConfig;
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{DatabaseConfig, Tenancy, TenantDirectory as _};
use edk_testkit::TestDb;
use secrecy::{ExposeSecret, SecretString};

use crate::support::Backend;

/// Operations each instance runs at once.
const PER_INSTANCE: usize = 60;

fn provider(kek: &SecretString) -> Arc<dyn KeyProvider> {
    let kek = KekConfig::key(
        KekId::new("k1").unwrap(),
        SecretString::from(kek.expose_secret().to_owned()),
    )
    .unwrap();
    Arc::new(
        SoftwareProvider::new(SoftwareProviderConfig::new(
            ProviderId::new("software").unwrap(),
            kek,
        ))
        .unwrap(),
    )
}

async fn tenancy(config: DatabaseConfig, clock: Arc<FixedClock>) -> Tenancy {
    Tenancy::builder(config)
        .clock(clock)
        .migrations(edk_kms::migrations().unwrap())
        .build()
        .await
        .unwrap()
}

async fn two_instances_append_to_one_chain(backend: Backend) {
    let clock = Arc::new(FixedClock::at_unix(1_700_000_000));
    let dir = edk_testkit::temp_dir();
    let db = match backend {
        Backend::Postgres => Some(TestDb::new().await),
        Backend::Sqlite => None,
    };
    let config = || match &db {
        Some(db) => {
            let mut config = PostgresConfig::new(SecretString::from(db.url()));
            config.max_connections = 8;
            DatabaseConfig::Postgres(config)
        }
        None => DatabaseConfig::Sqlite(SqliteConfig::new(dir.path())),
    };
    let kek = generate_kek().unwrap();
    let first = tenancy(config(), clock.clone()).await;
    let second = tenancy(config(), clock.clone()).await;
    let tenant = first
        .provision(TenantSlug::new("tenant-a").unwrap(), "A")
        .await
        .unwrap();
    let mut instances: Vec<(LocalKms, Caller)> = Vec::new();
    for (tenancy, actor) in [(&first, "alice"), (&second, "bob")] {
        let kms = LocalKms::builder(tenancy.clone(), vec![provider(&kek)])
            .clock(clock.clone())
            .build()
            .unwrap();
        let caller = Caller::new(tenancy.context(tenant.id).await.unwrap(), actor);
        instances.push((kms, caller));
    }
    let alias = KeyAlias::new("issuer", "credential-signing").unwrap();
    let (kms, caller) = &instances[0];
    kms.create_key(
        caller,
        &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
    )
    .await
    .unwrap();

    // Both instances sign at once, each from many tasks.
    let mut tasks = tokio::task::JoinSet::new();
    for (kms, caller) in &instances {
        for i in 0..PER_INSTANCE {
            let kms = kms.clone();
            let caller = caller.clone();
            let alias = alias.clone();
            tasks.spawn(async move {
                kms.sign(&caller, &alias, format!("message {i}").as_bytes())
                    .await
                    .unwrap();
            });
        }
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }

    // Reading flushes each instance's buffered records.
    let mut events = Vec::new();
    for (kms, caller) in &instances {
        events = kms.audit_events(caller, 0, 1_000).await.unwrap();
    }
    let expected = 1 + 2 * PER_INSTANCE;
    assert_eq!(events.len(), expected, "every operation recorded once");
    for (i, event) in events.iter().enumerate() {
        assert_eq!(
            event.seq,
            u64::try_from(i + 1).unwrap(),
            "no gap, no duplicate"
        );
        let before = if i == 0 {
            ""
        } else {
            events[i - 1].hash.as_str()
        };
        assert_eq!(
            event.prev_hash, before,
            "record {} links to the one before",
            event.seq
        );
    }
    let actors = |name: &str| events.iter().filter(|e| e.actor.ends_with(name)).count();
    assert_eq!(actors("bob"), PER_INSTANCE);
    for (kms, caller) in &instances {
        let report = kms.verify_audit(caller).await.unwrap();
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(report.records, u64::try_from(expected).unwrap());
    }
    if let Some(db) = db {
        db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_append_to_one_chain_on_postgres() {
    two_instances_append_to_one_chain(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_append_to_one_chain_on_sqlite() {
    two_instances_append_to_one_chain(Backend::Sqlite).await;
}
