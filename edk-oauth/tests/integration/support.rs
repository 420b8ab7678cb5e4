//! Shared fixtures: a tenancy on SQLite or a per-test PostgreSQL database, a real LocalKms
//! with a software provider, and an authorization server with tenants bound to AS endpoints.

use std::sync::Arc;

use edk_core::jose::{Algorithm, Header, SigningKey, jws};
use edk_core::{Clock, FixedClock, TenantSlug};
use edk_kms::LocalKms;
use edk_kms::provider::ProviderId;
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_oauth::client::{ClientAuthMethod, ClientMetadata, GrantType};
use edk_oauth::testkit::PreApprovedAuthenticator;
use edk_oauth::{AsConfig, AuthorizationServer, NewClient, SqlStore};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{
    DatabaseConfig, EndpointBinding, EndpointRequest, ServiceType, Tenancy, TenantContext,
    TenantDirectory, WellKnownLayout,
};
use edk_testkit::TestDb;
use secrecy::ExposeSecret;
use serde_json::json;

/// The fixed time of library tests.
pub(crate) const NOW: i64 = 1_800_000_000;

/// Runs `$name` (an async fn taking a `Backend`) on SQLite and on PostgreSQL.
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn on_sqlite() {
                super::$name(crate::support::Backend::sqlite().await).await;
            }
            #[tokio::test]
            async fn on_postgres() {
                super::$name(crate::support::Backend::postgres().await).await;
            }
        }
    };
}
pub(crate) use on_both_backends;

/// The number of rows in `table` of `tenant`'s schema.
pub(crate) async fn count_rows(tenancy: &Tenancy, tenant: &TenantContext, table: &str) -> i64 {
    let sql = format!("SELECT CAST(COUNT(*) AS BIGINT) FROM {table}");
    let mut tx = tenancy.databases().begin(tenant).await.unwrap();
    let (count,): (i64,) = match &mut tx {
        edk_tenancy::TenantTx::Postgres(tx) => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut **tx)
            .await
            .unwrap(),
        edk_tenancy::TenantTx::Sqlite(tx) => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut **tx)
            .await
            .unwrap(),
        _ => panic!("unsupported backend"),
    };
    tx.commit().await.unwrap();
    count
}

/// A tenancy with the edk-kms and edk-oauth migrations and the database it lives in.
pub(crate) struct Backend {
    pub(crate) tenancy: Tenancy,
    _dir: Option<tempfile::TempDir>,
    db: Option<TestDb>,
}

impl Backend {
    pub(crate) async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tenancy = Tenancy::builder(DatabaseConfig::Sqlite(SqliteConfig::new(dir.path())))
            .migrations(edk_kms::migrations().unwrap())
            .migrations(edk_oauth::migrations().unwrap())
            .build()
            .await
            .unwrap();
        Self {
            tenancy,
            _dir: Some(dir),
            db: None,
        }
    }

    pub(crate) async fn postgres() -> Self {
        let db = TestDb::new().await;
        let tenancy = Self::postgres_tenancy(db.url()).await;
        Self {
            tenancy,
            _dir: None,
            db: Some(db),
        }
    }

    /// Another tenancy (a second replica) on the same PostgreSQL database.
    pub(crate) async fn postgres_tenancy(url: &str) -> Tenancy {
        let mut config = edk_tenancy::store::postgres::PostgresConfig::new(url.into());
        config.max_connections = 20;
        Tenancy::builder(DatabaseConfig::Postgres(config))
            .migrations(edk_kms::migrations().unwrap())
            .migrations(edk_oauth::migrations().unwrap())
            .build()
            .await
            .unwrap()
    }

    /// Another tenancy (a second replica) on the same database, PostgreSQL or SQLite.
    pub(crate) async fn replica(&self) -> Tenancy {
        if let Some(db) = &self.db {
            return Self::postgres_tenancy(db.url()).await;
        }
        let dir = self._dir.as_ref().unwrap().path();
        Tenancy::builder(DatabaseConfig::Sqlite(SqliteConfig::new(dir)))
            .migrations(edk_kms::migrations().unwrap())
            .migrations(edk_oauth::migrations().unwrap())
            .build()
            .await
            .unwrap()
    }

    /// Provisions `slug`, binds its AS at `https://as.example/<slug>` and returns its context.
    pub(crate) async fn tenant(&self, slug: &str) -> TenantContext {
        let tenant = self
            .tenancy
            .provision(TenantSlug::new(slug).unwrap(), slug)
            .await
            .unwrap();
        let binding = EndpointBinding::new(
            tenant.id,
            ServiceType::As,
            "as.example",
            None,
            &format!("/{slug}"),
            WellKnownLayout::Inserted,
        )
        .unwrap();
        self.tenancy.bind(&binding).await.unwrap();
        resolve(&self.tenancy, slug).await
    }

    pub(crate) async fn close(self) {
        if let Some(db) = self.db {
            db.close().await;
        }
    }
}

/// The context of `slug`'s AS in `tenancy`.
pub(crate) async fn resolve(tenancy: &Tenancy, slug: &str) -> TenantContext {
    let request = EndpointRequest::new("https", "as.example", None, &format!("/{slug}/token"));
    tenancy
        .resolve(ServiceType::As, &request)
        .await
        .unwrap()
        .context
}

/// One KEK shared by every replica of a test.
pub(crate) fn software_provider(kek: &secrecy::SecretString) -> Arc<SoftwareProvider> {
    let kek = KekConfig::key(
        KekId::new("test").unwrap(),
        secrecy::SecretString::from(kek.expose_secret().to_owned()),
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

pub(crate) fn new_kek() -> secrecy::SecretString {
    generate_kek().unwrap()
}

/// A real LocalKms and authorization server over `tenancy`.
pub(crate) fn server(
    tenancy: &Tenancy,
    kek: &secrecy::SecretString,
    clock: Arc<dyn Clock>,
    config: AsConfig,
) -> Arc<AuthorizationServer> {
    let kms = LocalKms::builder(tenancy.clone(), vec![software_provider(kek)])
        .clock(Arc::clone(&clock))
        .build()
        .unwrap();
    Arc::new(AuthorizationServer::new(
        Arc::new(SqlStore::new(tenancy.clone())),
        Arc::new(kms),
        Arc::new(PreApprovedAuthenticator::new("alice", Arc::clone(&clock))),
        clock,
        config,
    ))
}

/// A backend, a fixed clock, a server and one tenant.
pub(crate) struct Env {
    pub(crate) backend: Backend,
    pub(crate) clock: Arc<FixedClock>,
    pub(crate) server: Arc<AuthorizationServer>,
    pub(crate) tenant: TenantContext,
    pub(crate) kek: secrecy::SecretString,
}

impl Env {
    pub(crate) async fn new(backend: Backend) -> Self {
        Self::with_config(backend, AsConfig::default()).await
    }

    pub(crate) async fn with_config(backend: Backend, config: AsConfig) -> Self {
        let clock = Arc::new(FixedClock::at_unix(NOW));
        let kek = new_kek();
        let server = server(&backend.tenancy, &kek, clock.clone(), config);
        let tenant = backend.tenant("acme").await;
        Self {
            backend,
            clock,
            server,
            tenant,
            kek,
        }
    }

    /// Another LocalKms over the same tenancy and key encryption key (what an embedding
    /// application next to the AS holds).
    pub(crate) fn kms(&self) -> Arc<LocalKms> {
        Arc::new(
            LocalKms::builder(
                self.backend.tenancy.clone(),
                vec![software_provider(&self.kek)],
            )
            .clock(self.clock.clone())
            .build()
            .unwrap(),
        )
    }

    /// Registers a client with `method` and `grants`, returning its id and secret.
    pub(crate) async fn client(
        &self,
        method: ClientAuthMethod,
        grants: Vec<GrantType>,
        tweak: impl FnOnce(&mut ClientMetadata),
    ) -> (String, Option<String>) {
        let mut metadata = ClientMetadata::new(method, grants);
        metadata.scopes = vec!["read".to_owned(), "write".to_owned()];
        metadata.redirect_uris = vec!["https://client.example/cb".to_owned()];
        tweak(&mut metadata);
        let (client, secret) = self
            .server
            .create_client(&self.tenant, NewClient::new(metadata))
            .await
            .unwrap();
        (
            client.client_id.as_str().to_owned(),
            secret.map(|s| s.expose_secret().to_owned()),
        )
    }

    pub(crate) async fn close(self) {
        self.backend.close().await;
    }
}

/// A DPoP key and proofs made with it.
pub(crate) struct DpopKey {
    pub(crate) key: SigningKey,
}

impl DpopKey {
    pub(crate) fn new() -> Self {
        Self {
            key: SigningKey::generate(Algorithm::Es256).unwrap(),
        }
    }

    pub(crate) fn jkt(&self) -> String {
        self.key.public_jwk().thumbprint()
    }

    pub(crate) async fn proof(
        &self,
        method: &str,
        htu: &str,
        iat: i64,
        nonce: Option<&str>,
        access_token: Option<&str>,
    ) -> String {
        use base64::Engine as _;
        use sha2::Digest as _;
        let mut claims = json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "htm": method,
            "htu": htu,
            "iat": iat,
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        if let Some(token) = access_token {
            let ath = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(token.as_bytes()));
            claims["ath"] = json!(ath);
        }
        let header = Header::new(Algorithm::Es256)
            .with_typ("dpop+jwt")
            .with_jwk(&self.key.public_jwk());
        jws::sign(header, claims.to_string().as_bytes(), &self.key)
            .await
            .unwrap()
    }
}

/// A PKCE pair: (verifier, S256 challenge).
pub(crate) fn pkce() -> (String, String) {
    use base64::Engine as _;
    use sha2::Digest as _;
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}
