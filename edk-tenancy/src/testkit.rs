//! The conformance suite every [`Tenancy`] backend runs, and fixtures for it.
//!
//! ```text
//! let clock = Arc::new(FixedClock::at_unix(1_700_000_000));
//! let tenancy = testkit::builder(database, Arc::clone(&clock)).build().await?;
//! testkit::tenancy_suite(&tenancy, &clock).await;
//! ```
//!
//! The suite panics on the first failed expectation, naming it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

use edk_core::{FixedClock, TenantId, TenantSlug};
use serde_json::json;

use crate::TenantContext;
use crate::config::{ConfigKey, ConfigSchema};
use crate::endpoint::{EndpointBinding, EndpointRequest, RoutedPath, ServiceType, WellKnownLayout};
use crate::error::{ConfigError, Error, ResolveError};
use crate::events::Event;
use crate::migrate::{MigrationScope, MigrationSet};
use crate::store::TenantTx;
use crate::tenancy::{DatabaseConfig, Tenancy, TenancyBuilder, TenancyOptions, TenantDirectory};
use crate::tenant::TenantStatus;

/// The component name of the fixture migrations.
pub const FIXTURE_COMPONENT: &str = "edk-tenancy-testkit";

/// A tenant-scoped fixture table, `testkit_note (id, body)`, for isolation tests.
#[must_use]
pub fn fixture_migrations() -> MigrationSet {
    MigrationSet::from_sql(
        FIXTURE_COMPONENT,
        MigrationScope::Tenant,
        &[
            (
                1,
                "notes",
                "CREATE TABLE testkit_note (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)",
            ),
            (
                2,
                "note index",
                "CREATE INDEX testkit_note_body ON testkit_note (body)",
            ),
        ],
        &[
            (
                1,
                "notes",
                "CREATE TABLE testkit_note (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
            ),
            (
                2,
                "note index",
                "CREATE INDEX testkit_note_body ON testkit_note (body)",
            ),
        ],
    )
    .expect("fixture migrations")
}

/// A configuration key of the suite: an integer in 30..=86400.
pub static OFFER_TTL: ConfigKey<u32> = ConfigKey::new(
    "testkit.offer_ttl",
    || 300,
    |v| {
        if (30..=86_400).contains(v) {
            Ok(())
        } else {
            Err("must be between 30 and 86400")
        }
    },
);

/// A configuration key of the suite: a free string.
pub static BRAND: ConfigKey<String> = ConfigKey::new(
    "testkit.brand",
    || "EDK".to_owned(),
    |v| {
        if v.len() <= 64 {
            Ok(())
        } else {
            Err("at most 64 bytes")
        }
    },
);

/// The suite's configuration keys.
#[must_use]
pub fn config_schema() -> ConfigSchema {
    ConfigSchema::builder()
        .key(&OFFER_TTL)
        .key(&BRAND)
        .build()
        .expect("suite schema")
}

/// A builder with the suite's fixtures, `clock`, and a cache TTL of 10 s.
#[must_use]
pub fn builder(database: DatabaseConfig, clock: Arc<FixedClock>) -> TenancyBuilder {
    Tenancy::builder(database)
        .clock(clock)
        .migrations(fixture_migrations())
        .config_schema(config_schema())
        .options(TenancyOptions {
            cache_ttl: Duration::from_secs(10),
            delete_grace: Duration::from_secs(3600),
            ..TenancyOptions::default()
        })
}

/// Writes a note in the tenant's schema or file.
///
/// # Errors
/// What the database returns.
pub async fn write_note(
    tenancy: &Tenancy,
    tenant: &TenantContext,
    body: &str,
) -> Result<(), Error> {
    let mut tx = tenancy.databases().begin(tenant).await?;
    match &mut tx {
        #[cfg(feature = "postgres")]
        TenantTx::Postgres(tx) => {
            sqlx::query("INSERT INTO testkit_note (body) VALUES ($1)")
                .bind(body)
                .execute(&mut **tx)
                .await?;
        }
        #[cfg(feature = "sqlite")]
        TenantTx::Sqlite(tx) => {
            sqlx::query("INSERT INTO testkit_note (body) VALUES (?1)")
                .bind(body)
                .execute(&mut **tx)
                .await?;
        }
    }
    tx.commit().await
}

/// Reads the notes in the tenant's schema or file, in insertion order.
///
/// # Errors
/// What the database returns.
pub async fn read_notes(tenancy: &Tenancy, tenant: &TenantContext) -> Result<Vec<String>, Error> {
    let mut tx = tenancy.databases().begin(tenant).await?;
    let rows: Vec<(String,)> = match &mut tx {
        #[cfg(feature = "postgres")]
        TenantTx::Postgres(tx) => {
            sqlx::query_as("SELECT body FROM testkit_note ORDER BY id")
                .fetch_all(&mut **tx)
                .await?
        }
        #[cfg(feature = "sqlite")]
        TenantTx::Sqlite(tx) => {
            sqlx::query_as("SELECT body FROM testkit_note ORDER BY id")
                .fetch_all(&mut **tx)
                .await?
        }
    };
    tx.commit().await?;
    Ok(rows.into_iter().map(|(body,)| body).collect())
}

/// Binds `tenant`'s issuer at `https://host/prefix` with both well-known forms.
pub async fn bind_issuer(tenancy: &Tenancy, tenant: TenantId, host: &str, prefix: &str) {
    let binding = EndpointBinding::new(
        tenant,
        ServiceType::Issuer,
        host,
        None,
        prefix,
        WellKnownLayout::Both,
    )
    .expect("binding");
    tenancy.bind(&binding).await.expect("bind");
}

/// A request to `https://host{path}`.
#[must_use]
pub fn request(host: &str, path: &str) -> EndpointRequest {
    EndpointRequest::new("https", host, None, path)
}

fn slug(value: &str) -> TenantSlug {
    TenantSlug::new(value).expect("slug")
}

/// Runs every check of the suite on a fresh `tenancy` built with [`builder`].
pub async fn tenancy_suite(tenancy: &Tenancy, clock: &FixedClock) {
    provisioning_is_idempotent(tenancy).await;
    hostile_display_names_are_stored_verbatim(tenancy).await;
    requests_resolve_to_their_binding_only(tenancy).await;
    data_is_isolated_between_tenants(tenancy).await;
    configuration_overlays_and_versions(tenancy).await;
    lifecycle_fails_closed(tenancy, clock).await;
}

/// Provisioning twice gives one active tenant, one event, and a complete ledger.
pub async fn provisioning_is_idempotent(tenancy: &Tenancy) {
    let mut events = tenancy.events().subscribe();
    let first = tenancy
        .provision(slug("suite-acme"), "Acme")
        .await
        .expect("provision");
    let second = tenancy
        .provision(slug("suite-acme"), "Acme again")
        .await
        .expect("provision again");
    assert_eq!(first.id, second.id, "one tenant per slug");
    assert_eq!(second.status, TenantStatus::Active);
    assert_eq!(second.display_name, "Acme", "a re-run does not rename");
    let mut provisioned = 0;
    while let Ok(event) = events.try_recv() {
        if matches!(event, Event::TenantProvisioned { tenant, .. } if tenant == first.id) {
            provisioned += 1;
        }
    }
    assert_eq!(provisioned, 1, "TenantProvisioned is published once");
    let context = tenancy.context(first.id).await.expect("context");
    assert!(
        read_notes(tenancy, &context)
            .await
            .expect("fixture table exists")
            .is_empty()
    );
    let report = tenancy.upgrade_all().await.expect("upgrade");
    assert_eq!(report.applied, 0, "nothing left to apply");
}

/// Quotes and semicolons in a display name are data, never SQL.
pub async fn hostile_display_names_are_stored_verbatim(tenancy: &Tenancy) {
    let name = "Robert'); DROP TABLE tenant; --";
    let tenant = tenancy
        .provision(slug("suite-bobby"), name)
        .await
        .expect("provision");
    assert_eq!(
        tenancy
            .tenant(tenant.id)
            .await
            .expect("read back")
            .display_name,
        name
    );
    assert!(matches!(
        tenancy.provision(slug("suite-ctl"), "a\u{0}b").await,
        Err(Error::Id(_))
    ));
    assert!(tenancy.tenants().await.expect("registry intact").len() >= 2);
}

/// Bindings route their own requests, unknown endpoints fail closed, URLs come from the
/// binding.
pub async fn requests_resolve_to_their_binding_only(tenancy: &Tenancy) {
    let a = tenancy
        .provision(slug("suite-route-a"), "A")
        .await
        .expect("a");
    let b = tenancy
        .provision(slug("suite-route-b"), "B")
        .await
        .expect("b");
    bind_issuer(tenancy, a.id, "issuer.suite.example", "/a").await;
    bind_issuer(tenancy, b.id, "issuer.suite.example", "/b").await;

    let resolved = tenancy
        .resolve(
            ServiceType::Issuer,
            &request("ISSUER.suite.example.", "/a/credential"),
        )
        .await
        .expect("resolve a");
    assert_eq!(resolved.context.id(), a.id);
    assert_eq!(
        resolved.path,
        RoutedPath::Service {
            rest: "/credential".to_owned()
        }
    );
    let binding = resolved.context.binding().expect("binding");
    assert_eq!(binding.identifier(), "https://issuer.suite.example/a");
    assert_eq!(
        binding
            .well_known_url("openid-credential-issuer")
            .expect("url")
            .as_str(),
        "https://issuer.suite.example/.well-known/openid-credential-issuer/a"
    );
    let well_known = tenancy
        .resolve(
            ServiceType::Issuer,
            &request(
                "issuer.suite.example",
                "/.well-known/openid-credential-issuer/b",
            ),
        )
        .await
        .expect("well-known b");
    assert_eq!(well_known.context.id(), b.id);

    for (host, path) in [
        ("issuer.suite.example", "/c/credential"),
        ("other.suite.example", "/a/credential"),
        ("issuer.suite.example", "/"),
    ] {
        let err = tenancy
            .resolve(ServiceType::Issuer, &request(host, path))
            .await
            .expect_err("unbound endpoint");
        assert!(
            matches!(err, ResolveError::NotBound),
            "{host}{path}: {err:?}"
        );
        assert_eq!(err.to_string(), "no tenant is bound to this endpoint");
    }

    let taken = EndpointBinding::new(
        b.id,
        ServiceType::Issuer,
        "issuer.suite.example",
        None,
        "/a",
        WellKnownLayout::Inserted,
    )
    .expect("binding");
    assert!(matches!(
        tenancy.bind(&taken).await,
        Err(Error::BindingTaken)
    ));

    bind_issuer(tenancy, a.id, "a.suite.example", "").await;
    assert!(
        tenancy
            .resolve(
                ServiceType::Issuer,
                &request("issuer.suite.example", "/a/credential")
            )
            .await
            .is_err(),
        "a rebind replaces the old endpoint at once"
    );
    let moved = tenancy
        .resolve(
            ServiceType::Issuer,
            &request("a.suite.example", "/credential"),
        )
        .await
        .expect("new endpoint");
    assert_eq!(moved.context.id(), a.id);
    assert!(
        tenancy
            .unbind(a.id, ServiceType::Issuer)
            .await
            .expect("unbind")
    );
    assert!(
        tenancy
            .resolve(
                ServiceType::Issuer,
                &request("a.suite.example", "/credential")
            )
            .await
            .is_err()
    );
    let for_service = tenancy
        .context_for_service(b.id, ServiceType::Issuer)
        .await
        .expect("context for b");
    assert_eq!(for_service.binding().expect("binding").path_prefix(), "/b");
    assert!(matches!(
        tenancy
            .context_for_service(b.id, ServiceType::Verifier)
            .await,
        Err(Error::NoBinding { .. })
    ));
}

/// What one tenant writes, another cannot read.
pub async fn data_is_isolated_between_tenants(tenancy: &Tenancy) {
    let a = tenancy
        .provision(slug("suite-iso-a"), "A")
        .await
        .expect("a");
    let b = tenancy
        .provision(slug("suite-iso-b"), "B")
        .await
        .expect("b");
    let ctx_a = tenancy.context(a.id).await.expect("a");
    let ctx_b = tenancy.context(b.id).await.expect("b");
    write_note(tenancy, &ctx_a, "secret of a")
        .await
        .expect("write a");
    write_note(tenancy, &ctx_b, "secret of b")
        .await
        .expect("write b");
    assert_eq!(
        read_notes(tenancy, &ctx_a).await.expect("read a"),
        ["secret of a"]
    );
    assert_eq!(
        read_notes(tenancy, &ctx_b).await.expect("read b"),
        ["secret of b"]
    );
}

/// The effective `testkit.offer_ttl` seen by `tenant`'s context.
async fn offer_ttl(tenancy: &Tenancy, tenant: TenantId) -> u32 {
    tenancy
        .context(tenant)
        .await
        .expect("ctx")
        .config()
        .get(&OFFER_TTL)
}

/// Defaults, platform values and tenant values overlay; writes are validated and versioned.
pub async fn configuration_overlays_and_versions(tenancy: &Tenancy) {
    let t = tenancy
        .provision(slug("suite-config"), "Config")
        .await
        .expect("tenant");
    let other = tenancy
        .provision(slug("suite-config-2"), "Other")
        .await
        .expect("tenant");
    assert_eq!(offer_ttl(tenancy, t.id).await, 300);

    let platform = tenancy
        .set_config(None, "testkit.offer_ttl", json!(600), None)
        .await
        .expect("platform");
    assert_eq!(platform.version, 1);
    assert_eq!(offer_ttl(tenancy, t.id).await, 600);

    let own = tenancy
        .set_config(Some(t.id), "testkit.offer_ttl", json!(900), Some(0))
        .await
        .expect("create");
    assert_eq!(own.version, 1);
    assert_eq!(offer_ttl(tenancy, t.id).await, 900);
    assert_eq!(offer_ttl(tenancy, other.id).await, 600);

    let again = tenancy
        .set_config(Some(t.id), "testkit.offer_ttl", json!(120), Some(1))
        .await
        .expect("update");
    assert_eq!(again.version, 2);
    assert!(matches!(
        tenancy
            .set_config(Some(t.id), "testkit.offer_ttl", json!(130), Some(1))
            .await,
        Err(Error::Config(ConfigError::VersionConflict { .. }))
    ));
    assert!(matches!(
        tenancy
            .set_config(Some(t.id), "testkit.offer_ttl", json!(130), Some(0))
            .await,
        Err(Error::Config(ConfigError::VersionConflict { .. }))
    ));
    assert!(matches!(
        tenancy
            .set_config(Some(t.id), "testkit.offer_ttl", json!(5), None)
            .await,
        Err(Error::Config(ConfigError::InvalidValue { .. }))
    ));
    assert!(matches!(
        tenancy
            .set_config(Some(t.id), "testkit.nope", json!(5), None)
            .await,
        Err(Error::Config(ConfigError::UnknownKey { .. }))
    ));
    assert!(matches!(
        tenancy
            .set_config(
                Some(TenantId::generate()),
                "testkit.brand",
                json!("x"),
                None
            )
            .await,
        Err(Error::TenantNotFound)
    ));
    let unconditional = tenancy
        .set_config(Some(t.id), "testkit.offer_ttl", json!(150), None)
        .await
        .expect("set");
    assert_eq!(unconditional.version, 3);
    let ctx = tenancy.context(t.id).await.expect("ctx");
    assert_eq!(ctx.config().get(&OFFER_TTL), 150);
    assert_eq!(ctx.config().get(&BRAND), "EDK");
    let stored = tenancy.config_properties(Some(t.id)).await.expect("list");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].version, 3);
}

/// Suspended and deleted tenants fail closed; resumed ones serve again; purging drops the
/// data after the grace period and frees the slug.
pub async fn lifecycle_fails_closed(tenancy: &Tenancy, clock: &FixedClock) {
    let t = tenancy
        .provision(slug("suite-life"), "Life")
        .await
        .expect("tenant");
    bind_issuer(tenancy, t.id, "life.suite.example", "").await;
    let ctx = tenancy.context(t.id).await.expect("ctx");
    write_note(tenancy, &ctx, "kept while suspended")
        .await
        .expect("write");

    assert_eq!(
        tenancy.suspend(t.id).await.expect("suspend").status,
        TenantStatus::Suspended
    );
    let err = tenancy
        .resolve(ServiceType::Issuer, &request("life.suite.example", "/x"))
        .await
        .expect_err("suspended");
    assert!(matches!(err, ResolveError::NotServing));
    assert_eq!(err.to_string(), "no tenant is bound to this endpoint");
    assert!(matches!(
        tenancy.context(t.id).await,
        Err(Error::TenantNotActive { .. })
    ));
    assert!(matches!(
        tenancy.suspend(t.id).await.map(|t| t.status),
        Ok(TenantStatus::Suspended)
    ));

    assert_eq!(
        tenancy.resume(t.id).await.expect("resume").status,
        TenantStatus::Active
    );
    let ctx = tenancy.context(t.id).await.expect("ctx after resume");
    assert_eq!(
        read_notes(tenancy, &ctx).await.expect("read"),
        ["kept while suspended"]
    );
    assert!(matches!(
        tenancy.resume(t.id).await.map(|t| t.status),
        Ok(TenantStatus::Active)
    ));

    let deleted = tenancy.delete(t.id).await.expect("delete");
    assert_eq!(deleted.status, TenantStatus::Deleted);
    assert!(deleted.deleted_at.is_some());
    assert!(
        tenancy
            .resolve(ServiceType::Issuer, &request("life.suite.example", "/x"))
            .await
            .is_err()
    );
    assert!(matches!(
        tenancy.resume(t.id).await,
        Err(Error::InvalidTransition { .. })
    ));
    assert!(matches!(
        tenancy.provision(slug("suite-life"), "Again").await,
        Err(Error::SlugTaken { .. })
    ));
    assert!(
        tenancy
            .purge_deleted()
            .await
            .expect("purge early")
            .is_empty(),
        "grace period holds"
    );

    clock.advance(Duration::from_secs(3601));
    assert_eq!(tenancy.purge_deleted().await.expect("purge"), [t.id]);
    assert!(matches!(
        tenancy.tenant(t.id).await,
        Err(Error::TenantNotFound)
    ));
    let reborn = tenancy
        .provision(slug("suite-life"), "Reborn")
        .await
        .expect("slug is free");
    assert_ne!(reborn.id, t.id);
    let ctx = tenancy.context(reborn.id).await.expect("ctx");
    assert!(
        read_notes(tenancy, &ctx).await.expect("read").is_empty(),
        "a new tenant starts empty"
    );
}
