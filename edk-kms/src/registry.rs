//! Key providers registered at run time, and tenants' alias bindings to providers.
//!
//! An operator registers a provider (`aws-eu-west-1`, `vault-prod`) as typed configuration:
//! the `kind` and the fields a server's `kms.providers` entry takes, with every secret given
//! as a [`SecretRef`] (an environment variable, a file or a Kubernetes secret), never in
//! clear. The registration is stored in the platform database (`kms_provider_registration`),
//! the provider is built by a [`ProviderFactory`] (which resolves the references) and
//! installed in the [`LocalKms`](crate::LocalKms), and every replica reloads it on the
//! [`PROVIDER_CHANGED_TOPIC`] event.
//!
//! A tenant binds an alias to a provider ([`AliasBinding`], `kms_alias_binding`): new keys of
//! that alias are created there.

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use edk_core::TenantId;
use edk_core::jose::Algorithm;
use edk_tenancy::PlatformPool;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::Row as _;

use crate::Error;
use crate::kms::KeyAlias;
use crate::provider::{KeyProvider, ProviderId};
use crate::store::StoreError;

/// The event topic published when a registration changes; the payload is `{"id": ...}`.
pub const PROVIDER_CHANGED_TOPIC: &str = "kms.provider_changed";

/// The configuration fields that hold secrets: in a registration each must be a
/// [`SecretRef`].
pub const SECRET_FIELDS: [&str; 7] = [
    "secret_access_key",
    "session_token",
    "token",
    "secret_id",
    "client_secret",
    "pin",
    "key",
];

/// A secret given by reference, resolved when the provider is built and never stored in
/// clear: `{"env": "NAME"}`, `{"file": "/run/secrets/x"}` or
/// `{"kubernetes": {"secret": "name", "key": "k"}}` (a mounted Kubernetes secret under the
/// configured secrets directory).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum SecretRef {
    /// An environment variable of the KMS process.
    Env(String),
    /// A file (an absolute path) the KMS process can read.
    File(PathBuf),
    /// A key of a Kubernetes secret mounted as `<secrets dir>/<secret>/<key>`.
    Kubernetes {
        /// The secret's name.
        secret: String,
        /// The key within the secret.
        key: String,
    },
}

/// Where secret references are resolved from.
#[derive(Clone, Debug, Default)]
pub struct SecretSources {
    kubernetes_dir: Option<PathBuf>,
}

impl SecretSources {
    /// Environment variables and files only: Kubernetes references are refused.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            kubernetes_dir: None,
        }
    }

    /// Resolves Kubernetes references from secrets mounted under `dir` (`dir/<secret>/<key>`).
    #[must_use]
    pub fn with_kubernetes_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.kubernetes_dir = Some(dir.into());
        self
    }

    /// The value of `reference`, the secret at `field` (a dotted path, for errors).
    ///
    /// # Errors
    /// [`Error::InvalidRegistration`] naming `field` when the reference is malformed or cannot
    /// be resolved (the error never holds the value).
    pub fn resolve(&self, field: &str, reference: &SecretRef) -> Result<SecretString, Error> {
        let invalid = |reason: &str| Error::InvalidRegistration {
            field: field.to_owned(),
            reason: reason.to_owned(),
        };
        let value = match reference {
            SecretRef::Env(name) => {
                if name.is_empty() || name.contains('=') || name.contains('\0') {
                    return Err(invalid("names no valid environment variable"));
                }
                std::env::var(name).map_err(|_| invalid("names an unset environment variable"))?
            }
            SecretRef::File(path) => {
                if !path.is_absolute() {
                    return Err(invalid("must be an absolute file path"));
                }
                read_secret(path).ok_or_else(|| invalid("names a file that cannot be read"))?
            }
            SecretRef::Kubernetes { secret, key } => {
                let Some(dir) = &self.kubernetes_dir else {
                    return Err(invalid(
                        "is a Kubernetes secret but no secrets directory is configured",
                    ));
                };
                if !is_plain_name(secret) || !is_plain_name(key) {
                    return Err(invalid("names a malformed Kubernetes secret or key"));
                }
                read_secret(&dir.join(secret).join(key))
                    .ok_or_else(|| invalid("names a Kubernetes secret that is not mounted"))?
            }
        };
        if value.is_empty() {
            return Err(invalid("resolves to an empty secret"));
        }
        Ok(SecretString::from(value))
    }

    /// `config` with every secret field's reference replaced by its value, ready to be read
    /// as the provider's configuration.
    ///
    /// # Errors
    /// [`Error::InvalidRegistration`] naming the field for a secret given in clear, a
    /// malformed reference or one that cannot be resolved.
    pub fn resolve_config(&self, config: &Map<String, Value>) -> Result<Map<String, Value>, Error> {
        let mut resolved = config.clone();
        self.walk(&mut resolved, "")?;
        Ok(resolved)
    }

    fn walk(&self, object: &mut Map<String, Value>, prefix: &str) -> Result<(), Error> {
        for (name, value) in object.iter_mut() {
            let field = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            if SECRET_FIELDS.contains(&name.as_str()) {
                let reference = secret_ref(&field, value)?;
                let secret = self.resolve(&field, &reference)?;
                *value = Value::String(secrecy::ExposeSecret::expose_secret(&secret).to_owned());
                continue;
            }
            match value {
                Value::Object(inner) => self.walk(inner, &field)?,
                Value::Array(items) => {
                    for (index, item) in items.iter_mut().enumerate() {
                        if let Value::Object(inner) = item {
                            self.walk(inner, &format!("{field}[{index}]"))?;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Checks that every secret field of `config` is a well-formed [`SecretRef`], without
/// resolving any.
///
/// # Errors
/// [`Error::InvalidRegistration`] naming the first offending field.
pub fn check_secret_refs(config: &Map<String, Value>) -> Result<(), Error> {
    fn walk(object: &Map<String, Value>, prefix: &str) -> Result<(), Error> {
        for (name, value) in object {
            let field = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            if SECRET_FIELDS.contains(&name.as_str()) {
                secret_ref(&field, value)?;
                continue;
            }
            match value {
                Value::Object(inner) => walk(inner, &field)?,
                Value::Array(items) => {
                    for (index, item) in items.iter().enumerate() {
                        if let Value::Object(inner) = item {
                            walk(inner, &format!("{field}[{index}]"))?;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
    walk(config, "")
}

fn secret_ref(field: &str, value: &Value) -> Result<SecretRef, Error> {
    serde_json::from_value(value.clone()).map_err(|_| Error::InvalidRegistration {
        field: field.to_owned(),
        reason: "must be a secret reference: {\"env\": ...}, {\"file\": ...} or \
                 {\"kubernetes\": {\"secret\": ..., \"key\": ...}}"
            .to_owned(),
    })
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && matches!(
            Path::new(name).components().collect::<Vec<_>>().as_slice(),
            [Component::Normal(_)]
        )
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn read_secret(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.trim_end_matches(['\r', '\n']).to_owned())
}

/// A provider registered at run time: its id, `kind` and configuration (secret fields as
/// [`SecretRef`]s only, so it can be shown and logged).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProviderRegistration {
    /// The provider's id.
    pub id: ProviderId,
    /// The provider kind (`aws`, `azure`, `csc`, `vault`, `pkcs11`, `software`).
    pub kind: String,
    /// The kind's configuration fields, without `id` and `kind`.
    pub config: Map<String, Value>,
    /// When it was first registered (seconds since the epoch).
    pub created_at: i64,
    /// When it last changed (seconds since the epoch).
    pub updated_at: i64,
}

impl ProviderRegistration {
    /// A registration of `id` as `kind` with `config`; `id` and `kind` inside `config` are
    /// dropped.
    #[must_use]
    pub fn new(id: ProviderId, kind: impl Into<String>, mut config: Map<String, Value>) -> Self {
        config.remove("id");
        config.remove("kind");
        Self {
            id,
            kind: kind.into(),
            config,
            created_at: 0,
            updated_at: 0,
        }
    }

    /// The configuration as a server's `kms.providers` entry takes it: `kind`, `id` and the
    /// fields (secrets still as references).
    #[must_use]
    pub fn entry(&self) -> Map<String, Value> {
        let mut entry = self.config.clone();
        entry.insert("kind".to_owned(), Value::String(self.kind.clone()));
        entry.insert("id".to_owned(), Value::String(self.id.to_string()));
        entry
    }
}

/// Builds providers from registrations: checks the configuration of the kind, resolves the
/// secret references and opens the provider.
#[async_trait]
pub trait ProviderFactory: fmt::Debug + Send + Sync {
    /// The provider `registration` describes.
    ///
    /// # Errors
    /// [`Error::InvalidRegistration`] naming the field for an unknown kind, a missing or
    /// malformed field or an unresolvable secret; the provider's own errors otherwise.
    async fn build(
        &self,
        registration: &ProviderRegistration,
    ) -> Result<Arc<dyn KeyProvider>, Error>;
}

/// A snapshot of the providers, in order of preference.
type Providers = Arc<Vec<Arc<dyn KeyProvider>>>;

/// The providers a KMS uses: those of the configuration file, then those registered at run
/// time. Cheap to clone; clones share the set.
#[derive(Clone)]
pub struct ProviderSet {
    inner: Arc<RwLock<Providers>>,
    configured: Arc<Vec<ProviderId>>,
}

impl ProviderSet {
    /// A set of the configured `providers`, in order of preference.
    #[must_use]
    pub fn new(providers: Vec<Arc<dyn KeyProvider>>) -> Self {
        let configured = providers.iter().map(|p| p.id().clone()).collect();
        Self {
            inner: Arc::new(RwLock::new(Arc::new(providers))),
            configured: Arc::new(configured),
        }
    }

    /// Every provider now, in order of preference.
    #[must_use]
    pub fn snapshot(&self) -> Providers {
        Arc::clone(&self.inner.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The providers of the configuration file, in order of preference: those a KMS picks
    /// from when a new key names no provider and its alias has no binding. Registered
    /// providers are used only where named.
    #[must_use]
    pub fn configured(&self) -> Vec<Arc<dyn KeyProvider>> {
        self.snapshot()
            .iter()
            .filter(|p| self.is_configured(p.id()))
            .cloned()
            .collect()
    }

    /// The provider with `id`.
    #[must_use]
    pub fn get(&self, id: &ProviderId) -> Option<Arc<dyn KeyProvider>> {
        self.snapshot().iter().find(|p| p.id() == id).cloned()
    }

    /// Whether `id` comes from the configuration file (and so cannot be changed at run time).
    #[must_use]
    pub fn is_configured(&self, id: &ProviderId) -> bool {
        self.configured.contains(id)
    }

    /// Adds `provider`, or replaces the registered one with its id.
    pub(crate) fn install(&self, provider: Arc<dyn KeyProvider>) {
        let mut guard = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let mut next: Vec<_> = guard.iter().cloned().collect();
        match next.iter_mut().find(|p| p.id() == provider.id()) {
            Some(slot) => *slot = provider,
            None => next.push(provider),
        }
        *guard = Arc::new(next);
    }

    /// Removes the registered provider `id` (never a configured one).
    pub(crate) fn remove(&self, id: &ProviderId) {
        if self.is_configured(id) {
            return;
        }
        let mut guard = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let next: Vec<_> = guard.iter().filter(|p| p.id() != id).cloned().collect();
        *guard = Arc::new(next);
    }
}

impl fmt::Debug for ProviderSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.snapshot().iter()).finish()
    }
}

/// A tenant's binding of an alias to a provider: new keys of the alias are made there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AliasBinding {
    /// The alias (`service.purpose`).
    pub alias: KeyAlias,
    /// The provider new keys are created in.
    pub provider: ProviderId,
    /// The signing algorithm the binding was checked for.
    pub algorithm: Algorithm,
}

impl AliasBinding {
    /// A binding of `alias` to `provider` for keys signing with `algorithm`.
    #[must_use]
    pub const fn new(alias: KeyAlias, provider: ProviderId, algorithm: Algorithm) -> Self {
        Self {
            alias,
            provider,
            algorithm,
        }
    }
}

/// The platform tables of registrations and bindings.
#[derive(Clone, Debug)]
pub(crate) struct RegistrationStore {
    pool: PlatformPool,
}

/// Runs a statement on the platform pool; the rows it changed.
macro_rules! execute {
    ($pool:expr, $sql:expr $(, $arg:expr)*) => {
        match $pool {
            PlatformPool::Postgres(pool) => sqlx::query($sql)
                $(.bind($arg))*
                .execute(pool)
                .await
                .map(|done| done.rows_affected()),
            PlatformPool::Sqlite(pool) => sqlx::query($sql)
                $(.bind($arg))*
                .execute(pool)
                .await
                .map(|done| done.rows_affected()),
            _ => Err(sqlx::Error::Configuration(
                "unsupported platform database".into(),
            )),
        }
    };
}

fn store_err(err: sqlx::Error) -> Error {
    Error::Store(StoreError::from(err))
}

impl RegistrationStore {
    pub(crate) const fn new(pool: PlatformPool) -> Self {
        Self { pool }
    }

    pub(crate) async fn list(&self) -> Result<Vec<ProviderRegistration>, Error> {
        let sql = "SELECT id, kind, config, created_at, updated_at \
                   FROM kms_provider_registration ORDER BY created_at, id";
        let rows: Vec<(String, String, String, i64, i64)> = match &self.pool {
            PlatformPool::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await,
            PlatformPool::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await,
            _ => Ok(Vec::new()),
        }
        .map_err(store_err)?;
        rows.into_iter().map(registration_of).collect()
    }

    pub(crate) async fn get(&self, id: &ProviderId) -> Result<Option<ProviderRegistration>, Error> {
        let sql = "SELECT id, kind, config, created_at, updated_at \
                   FROM kms_provider_registration WHERE id = $1";
        let row: Option<(String, String, String, i64, i64)> = match &self.pool {
            PlatformPool::Postgres(pool) => {
                sqlx::query_as(sql)
                    .bind(id.as_str())
                    .fetch_optional(pool)
                    .await
            }
            PlatformPool::Sqlite(pool) => {
                sqlx::query_as(sql)
                    .bind(id.as_str())
                    .fetch_optional(pool)
                    .await
            }
            _ => Ok(None),
        }
        .map_err(store_err)?;
        row.map(registration_of).transpose()
    }

    pub(crate) async fn upsert(
        &self,
        registration: &ProviderRegistration,
        at: i64,
    ) -> Result<(), Error> {
        let config = serde_json::to_string(&registration.config)
            .map_err(|_| corrupt("registration config"))?;
        let sql = "INSERT INTO kms_provider_registration (id, kind, config, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $4) \
                   ON CONFLICT (id) DO UPDATE SET kind = $2, config = $3, updated_at = $4";
        execute!(
            &self.pool,
            sql,
            registration.id.as_str(),
            registration.kind.as_str(),
            config.as_str(),
            at
        )
        .map_err(store_err)?;
        Ok(())
    }

    pub(crate) async fn delete(&self, id: &ProviderId) -> Result<bool, Error> {
        let sql = "DELETE FROM kms_provider_registration WHERE id = $1";
        Ok(execute!(&self.pool, sql, id.as_str()).map_err(store_err)? > 0)
    }

    pub(crate) async fn bindings(&self, tenant: TenantId) -> Result<Vec<AliasBinding>, Error> {
        let sql = "SELECT alias, provider, algorithm FROM kms_alias_binding \
                   WHERE tenant_id = $1 ORDER BY alias";
        let tenant = tenant.to_string();
        let rows: Vec<(String, String, String)> = match &self.pool {
            PlatformPool::Postgres(pool) => sqlx::query_as(sql).bind(&tenant).fetch_all(pool).await,
            PlatformPool::Sqlite(pool) => sqlx::query_as(sql).bind(&tenant).fetch_all(pool).await,
            _ => Ok(Vec::new()),
        }
        .map_err(store_err)?;
        rows.into_iter().map(binding_of).collect()
    }

    pub(crate) async fn binding(
        &self,
        tenant: TenantId,
        alias: &KeyAlias,
    ) -> Result<Option<AliasBinding>, Error> {
        Ok(self
            .bindings(tenant)
            .await?
            .into_iter()
            .find(|binding| binding.alias == *alias))
    }

    pub(crate) async fn bind(
        &self,
        tenant: TenantId,
        binding: &AliasBinding,
        at: i64,
    ) -> Result<(), Error> {
        let sql = "INSERT INTO kms_alias_binding (tenant_id, alias, provider, algorithm, updated_at) \
                   VALUES ($1, $2, $3, $4, $5) \
                   ON CONFLICT (tenant_id, alias) DO UPDATE SET provider = $3, algorithm = $4, \
                   updated_at = $5";
        let tenant = tenant.to_string();
        let alias = binding.alias.to_string();
        execute!(
            &self.pool,
            sql,
            tenant.as_str(),
            alias.as_str(),
            binding.provider.as_str(),
            binding.algorithm.name(),
            at
        )
        .map_err(store_err)?;
        Ok(())
    }

    pub(crate) async fn unbind(&self, tenant: TenantId, alias: &KeyAlias) -> Result<bool, Error> {
        let sql = "DELETE FROM kms_alias_binding WHERE tenant_id = $1 AND alias = $2";
        let tenant = tenant.to_string();
        let alias = alias.to_string();
        Ok(execute!(&self.pool, sql, tenant.as_str(), alias.as_str()).map_err(store_err)? > 0)
    }

    pub(crate) async fn unbind_tenant(&self, tenant: TenantId) -> Result<(), Error> {
        let sql = "DELETE FROM kms_alias_binding WHERE tenant_id = $1";
        let tenant = tenant.to_string();
        execute!(&self.pool, sql, tenant.as_str()).map_err(store_err)?;
        Ok(())
    }

    /// How many bindings name `provider`.
    pub(crate) async fn bound_to(&self, provider: &ProviderId) -> Result<i64, Error> {
        let sql = "SELECT COUNT(*) AS n FROM kms_alias_binding WHERE provider = $1";
        let count = match &self.pool {
            PlatformPool::Postgres(pool) => sqlx::query(sql)
                .bind(provider.as_str())
                .fetch_one(pool)
                .await
                .and_then(|row| row.try_get::<i64, _>("n")),
            PlatformPool::Sqlite(pool) => sqlx::query(sql)
                .bind(provider.as_str())
                .fetch_one(pool)
                .await
                .and_then(|row| row.try_get::<i64, _>("n")),
            _ => Ok(0),
        };
        count.map_err(store_err)
    }
}

fn corrupt(what: &'static str) -> Error {
    Error::Store(StoreError::Corrupt { what })
}

fn registration_of(
    (id, kind, config, created_at, updated_at): (String, String, String, i64, i64),
) -> Result<ProviderRegistration, Error> {
    Ok(ProviderRegistration {
        id: ProviderId::new(id).map_err(|_| corrupt("registration id"))?,
        kind,
        config: serde_json::from_str(&config).map_err(|_| corrupt("registration config"))?,
        created_at,
        updated_at,
    })
}

fn binding_of(
    (alias, provider, algorithm): (String, String, String),
) -> Result<AliasBinding, Error> {
    Ok(AliasBinding {
        alias: alias.parse().map_err(|_| corrupt("binding alias"))?,
        provider: ProviderId::new(provider).map_err(|_| corrupt("binding provider"))?,
        algorithm: Algorithm::from_name(&algorithm).ok_or_else(|| corrupt("binding algorithm"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_must_be_references_and_resolve_by_field() {
        let config: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "address": "http://127.0.0.1:8200",
            "auth": {"kind": "token", "token": "in-clear"}
        }))
        .unwrap();
        let err = check_secret_refs(&config).unwrap_err();
        assert!(err.to_string().contains("`auth.token`"), "{err}");
        assert!(!err.to_string().contains("in-clear"));

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("vault")).unwrap();
        std::fs::write(dir.path().join("vault").join("token"), "from-k8s\n").unwrap();
        let sources = SecretSources::new().with_kubernetes_dir(dir.path());
        let config: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "auth": {"kind": "token", "token": {"kubernetes": {"secret": "vault", "key": "token"}}}
        }))
        .unwrap();
        let resolved = sources.resolve_config(&config).unwrap();
        assert_eq!(resolved["auth"]["token"], "from-k8s");
        for bad in [
            serde_json::json!({"kubernetes": {"secret": "..", "key": "token"}}),
            serde_json::json!({"kubernetes": {"secret": "vault", "key": "../../etc"}}),
            serde_json::json!({"file": "relative/path"}),
            serde_json::json!({"env": "EDK_SURELY_UNSET_VARIABLE"}),
        ] {
            let config: Map<String, Value> =
                serde_json::from_value(serde_json::json!({"auth": {"token": bad}})).unwrap();
            let err = sources.resolve_config(&config).unwrap_err();
            assert!(err.to_string().contains("`auth.token`"), "{err}");
        }
        assert!(
            SecretSources::new()
                .resolve_config(&config)
                .unwrap_err()
                .to_string()
                .contains("no secrets directory")
        );
    }
}
