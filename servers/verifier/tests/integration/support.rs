//! One tenancy on PostgreSQL or SQLite with a `LocalKms` and the verifier server
//! (`edk-verifier`'s app) listening on loopback.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use edk_core::jose::{Algorithm, Header, JwkSet, SigningKey, jws};
use edk_core::{Clock, SystemClock, TenantId, TenantSlug};
use edk_kms::LocalKms;
use edk_kms::provider::ProviderId;
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_server::{AuthConfig, HttpConfig, Metrics, TestServer, TrustedIssuer, spawn_server};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{
    DatabaseConfig, EndpointBinding, EndpointScheme, ServiceType, Tenancy, WellKnownLayout,
};
use edk_testkit::TestDb;
use edk_verifier_server::{VerifierParts, VerifierSettings};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};

pub(crate) const ADMIN_ISSUER: &str = "https://admin.example";

/// The verifier over one tenancy.
pub(crate) struct Deployment {
    pub(crate) tenancy: Tenancy,
    pub(crate) kms: Arc<LocalKms>,
    /// The certificates of the tenants' KMS aliases, which the verifier reads.
    pub(crate) certificates: edk_kms::cert::Certificates,
    pub(crate) parts: VerifierParts,
    pub(crate) verifier_http: TestServer,
    admin_key: SigningKey,
    _dir: Option<tempfile::TempDir>,
    db: Option<TestDb>,
}

/// A provisioned tenant with a `verifier` binding.
pub(crate) struct Tenant {
    pub(crate) id: TenantId,
    /// The verifier's identifier (`https://localhost:<port>/<slug>`).
    pub(crate) verifier: String,
    /// Where the verifier's endpoints are reached over plain HTTP.
    pub(crate) base: String,
}

impl Deployment {
    pub(crate) async fn sqlite() -> Self {
        Self::sqlite_with(&VerifierSettings::default()).await
    }

    /// On SQLite, with `settings`.
    pub(crate) async fn sqlite_with(settings: &VerifierSettings) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = DatabaseConfig::Sqlite(SqliteConfig::new(dir.path()));
        Self::new(database, Some(dir), None, generate_kek().unwrap(), settings).await
    }

    pub(crate) async fn postgres() -> Self {
        Self::postgres_with(&VerifierSettings::default()).await
    }

    /// On PostgreSQL, with `settings`.
    pub(crate) async fn postgres_with(settings: &VerifierSettings) -> Self {
        let db = TestDb::new().await;
        let database = DatabaseConfig::Postgres(edk_tenancy::store::postgres::PostgresConfig::new(
            db.url().into(),
        ));
        Self::new(database, None, Some(db), generate_kek().unwrap(), settings).await
    }

    /// Two replicas of the verifier (each listening on a port of its own) on one throwaway
    /// PostgreSQL database, with the same key encryption key. The first owns the database:
    /// close the second one first.
    pub(crate) async fn postgres_replicas() -> (Self, Self) {
        Self::postgres_replicas_with(&VerifierSettings::default()).await
    }

    /// Two replicas as [`Deployment::postgres_replicas`] makes them, with `settings`.
    pub(crate) async fn postgres_replicas_with(settings: &VerifierSettings) -> (Self, Self) {
        let db = TestDb::new().await;
        let database = DatabaseConfig::Postgres(edk_tenancy::store::postgres::PostgresConfig::new(
            db.url().into(),
        ));
        let kek = generate_kek().unwrap();
        let second_kek = SecretString::from(kek.expose_secret().to_owned());
        let first = Self::new(database.clone(), None, Some(db), kek, settings).await;
        let second = Self::new(database, None, None, second_kek, settings).await;
        (first, second)
    }

    async fn new(
        database: DatabaseConfig,
        dir: Option<tempfile::TempDir>,
        db: Option<TestDb>,
        kek: SecretString,
        settings: &VerifierSettings,
    ) -> Self {
        let tenancy = Tenancy::builder(database)
            .migrations(edk_kms::migrations().unwrap())
            .migrations(edk_kms::cert::migrations().unwrap())
            .migrations(edk_verifier_server::migrations().unwrap())
            .config_schema(
                edk_tenancy::ConfigSchema::builder()
                    .key(&edk_verifier_server::PRESENTATION_RETENTION)
                    .build()
                    .unwrap(),
            )
            .build()
            .await
            .unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let kek = KekConfig::key(KekId::new("test").unwrap(), kek).unwrap();
        let provider = SoftwareProvider::new(SoftwareProviderConfig::new(
            ProviderId::new("software").unwrap(),
            kek,
        ))
        .unwrap();
        let kms = Arc::new(
            LocalKms::builder(tenancy.clone(), vec![Arc::new(provider)])
                .clock(Arc::clone(&clock))
                .build()
                .unwrap(),
        );
        let certificates = edk_kms::cert::Certificates::new(
            kms.clone(),
            Arc::new(edk_kms::cert::store::SqlCertificateStore::new(
                tenancy.clone(),
            )),
            Arc::clone(&clock),
        );
        let admin_key = SigningKey::generate(Algorithm::Es256).unwrap();
        let mut auth = AuthConfig::default();
        auth.issuers.push(TrustedIssuer::with_jwks(
            ADMIN_ISSUER,
            JwkSet {
                keys: vec![admin_key.public_jwk()],
            },
        ));
        let parts = VerifierParts::new(
            tenancy.clone(),
            kms.clone(),
            Arc::new(certificates.clone()),
            Arc::clone(&clock),
            settings,
        )
        .unwrap();
        let app = edk_verifier_server::build_app(
            &HttpConfig::default(),
            &auth,
            &Metrics::new().unwrap(),
            &parts,
            edk_server::HealthApi::new(),
            None,
        )
        .unwrap();
        Self {
            verifier_http: spawn_server(app).await.unwrap(),
            tenancy,
            kms,
            certificates,
            parts,
            admin_key,
            _dir: dir,
            db,
        }
    }

    /// Provisions `slug` with its verifier at `https://localhost:<port>/<slug>`.
    pub(crate) async fn tenant(&self, slug: &str) -> Tenant {
        let tenant = self
            .tenancy
            .provision(TenantSlug::new(slug).unwrap(), slug)
            .await
            .unwrap();
        let port = self.verifier_http.addr().port();
        let binding = EndpointBinding::with_scheme(
            tenant.id,
            ServiceType::Verifier,
            EndpointScheme::Https,
            "localhost",
            Some(port),
            &format!("/{slug}"),
            WellKnownLayout::Inserted,
        )
        .unwrap();
        self.tenancy.bind(&binding).await.unwrap();
        Tenant {
            id: tenant.id,
            verifier: format!("https://localhost:{port}/{slug}"),
            base: format!("http://localhost:{port}/{slug}"),
        }
    }

    /// An admin token for `tenant` with `scope`.
    pub(crate) async fn admin_token(&self, tenant: TenantId, scope: &str) -> String {
        let now = SystemClock.unix_seconds();
        let claims = json!({
            "iss": ADMIN_ISSUER, "aud": "edk-admin", "sub": "ops",
            "tenant": tenant.to_string(), "scope": scope, "iat": now, "exp": now + 600,
        });
        jws::sign(
            Header::new(Algorithm::Es256).with_typ("JWT"),
            claims.to_string().as_bytes(),
            &self.admin_key,
        )
        .await
        .unwrap()
    }

    /// `method` on the verifier's admin API with a token of every scope.
    pub(crate) async fn admin(
        &self,
        tenant: &Tenant,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let token = self
            .admin_token(tenant.id, "oid4vp:read oid4vp:write")
            .await;
        let mut request = http()
            .request(
                method,
                self.verifier_http.url(&format!("/api/oid4vp/v1{path}")),
            )
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub(crate) async fn close(self) {
        self.verifier_http.shutdown().await.unwrap();
        drop(self.parts);
        drop(self.tenancy);
        if let Some(db) = self.db {
            db.close().await;
        }
    }
}

pub(crate) fn http() -> reqwest::Client {
    edk_server::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// A DCQL query for an SD-JWT VC of `vct` with `given_name` and `family_name`.
pub(crate) fn identity_query() -> Value {
    json!({
        "credentials": [{
            "id": "identity",
            "format": "dc+sd-jwt",
            "meta": {"vct_values": ["https://credentials.example.com/identity"]},
            "claims": [{"path": ["given_name"]}, {"path": ["family_name"]}]
        }]
    })
}
