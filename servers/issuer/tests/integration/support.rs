//! One tenancy on PostgreSQL or SQLite with a `LocalKms`, the tenants' authorization server
//! (`edk-as`'s app, with the pre-approved test authenticator) and the issuer server
//! (`edk-issuer`'s app) each listening on loopback, both over that tenancy and one
//! `AuthorizationServer`; a wallet that speaks to them over HTTP; PyPI `sd-jwt` as the
//! verifier of the issued credentials.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use edk_core::encoding::b64url_encode;
use edk_core::jose::{Algorithm, Header, JwkSet, SigningKey, jws};
use edk_core::{Clock, SystemClock, TenantId, TenantSlug};
use edk_issuer_server::{IssuerParts, IssuerSettings, TokenKeys};
use edk_kms::LocalKms;
use edk_kms::kms::{Caller, KeyAlias};
use edk_kms::provider::ProviderId;
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_oauth::testkit::PreApprovedAuthenticator;
use edk_oauth::{AsConfig, AuthorizationServer, SqlStore};
use edk_server::{AuthConfig, HttpConfig, Metrics, TestServer, TrustedIssuer, spawn_server};
use edk_tenancy::store::sqlite::SqliteConfig;
use edk_tenancy::{
    DatabaseConfig, EndpointBinding, EndpointScheme, ServiceType, Tenancy, WellKnownLayout,
};
use edk_testkit::TestDb;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

pub(crate) const ADMIN_ISSUER: &str = "https://admin.example";
pub(crate) const PRE_AUTHORIZED: &str = "urn:ietf:params:oauth:grant-type:pre-authorized_code";

/// The authorization server and the issuer over one tenancy.
pub(crate) struct Deployment {
    pub(crate) tenancy: Tenancy,
    pub(crate) kms: Arc<LocalKms>,
    /// The certificates of the tenants' KMS aliases, which the issuer reads.
    pub(crate) certificates: edk_kms::cert::Certificates,
    pub(crate) parts: IssuerParts,
    pub(crate) as_http: TestServer,
    pub(crate) issuer_http: TestServer,
    admin_key: SigningKey,
    _dir: Option<tempfile::TempDir>,
    db: Option<TestDb>,
}

/// A provisioned tenant with `as` and `issuer` bindings.
pub(crate) struct Tenant {
    pub(crate) id: TenantId,
    /// The credential issuer identifier (`https://localhost:<issuer port>/<slug>`).
    pub(crate) credential_issuer: String,
    /// The issuer server's origin over plain HTTP, with the binding's host.
    pub(crate) issuer_origin: String,
    /// Where the issuer's endpoints are reached over plain HTTP.
    pub(crate) issuer_base: String,
    /// Where the AS's endpoints are reached over plain HTTP.
    pub(crate) as_base: String,
}

impl Deployment {
    pub(crate) async fn sqlite() -> Self {
        Self::sqlite_with(TokenKeys::Kms).await
    }

    pub(crate) async fn postgres() -> Self {
        Self::postgres_with(TokenKeys::Kms).await
    }

    /// On SQLite, the credential endpoint finding access token keys as `token_keys` says.
    pub(crate) async fn sqlite_with(token_keys: TokenKeys) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = DatabaseConfig::Sqlite(SqliteConfig::new(dir.path()));
        Self::new(database, Some(dir), None, token_keys).await
    }

    /// On PostgreSQL, the credential endpoint finding access token keys as `token_keys` says.
    pub(crate) async fn postgres_with(token_keys: TokenKeys) -> Self {
        let db = TestDb::new().await;
        let database = DatabaseConfig::Postgres(edk_tenancy::store::postgres::PostgresConfig::new(
            db.url().into(),
        ));
        Self::new(database, None, Some(db), token_keys).await
    }

    async fn new(
        database: DatabaseConfig,
        dir: Option<tempfile::TempDir>,
        db: Option<TestDb>,
        token_keys: TokenKeys,
    ) -> Self {
        let kek = generate_kek().unwrap();
        let admin_key = SigningKey::generate(Algorithm::Es256).unwrap();
        Self::with_keys(database, dir, db, token_keys, kek, admin_key, false).await
    }

    /// On PostgreSQL or SQLite, end users logging in at each tenant's upstream OpenID
    /// Provider (tenant configuration `oauth.upstream_oidc`) instead of the pre-approved
    /// test end user.
    pub(crate) async fn federated(postgres: bool) -> Self {
        let kek = generate_kek().unwrap();
        let admin_key = SigningKey::generate(Algorithm::Es256).unwrap();
        if postgres {
            let db = TestDb::new().await;
            let database = DatabaseConfig::Postgres(
                edk_tenancy::store::postgres::PostgresConfig::new(db.url().into()),
            );
            Self::with_keys(
                database,
                None,
                Some(db),
                TokenKeys::Kms,
                kek,
                admin_key,
                true,
            )
            .await
        } else {
            let dir = tempfile::tempdir().unwrap();
            let database = DatabaseConfig::Sqlite(SqliteConfig::new(dir.path()));
            Self::with_keys(
                database,
                Some(dir),
                None,
                TokenKeys::Kms,
                kek,
                admin_key,
                true,
            )
            .await
        }
    }

    /// Two deployments (replicas of the AS and of the issuer, each listening on ports of its
    /// own) on one throwaway PostgreSQL database, with the same KEK and admin token key. The
    /// first owns the database: close the second one first.
    pub(crate) async fn postgres_replicas() -> (Self, Self) {
        let db = TestDb::new().await;
        let database = DatabaseConfig::Postgres(edk_tenancy::store::postgres::PostgresConfig::new(
            db.url().into(),
        ));
        let kek = generate_kek().unwrap();
        let admin_key = SigningKey::generate(Algorithm::Es256).unwrap();
        let second_kek = SecretString::from(kek.expose_secret().to_owned());
        let second_admin_key =
            SigningKey::from_jwk(&admin_key.to_jwk().unwrap(), Some(Algorithm::Es256)).unwrap();
        let first = Self::with_keys(
            database.clone(),
            None,
            Some(db),
            TokenKeys::Kms,
            kek,
            admin_key,
            false,
        )
        .await;
        let second = Self::with_keys(
            database,
            None,
            None,
            TokenKeys::Kms,
            second_kek,
            second_admin_key,
            false,
        )
        .await;
        (first, second)
    }

    async fn with_keys(
        database: DatabaseConfig,
        dir: Option<tempfile::TempDir>,
        db: Option<TestDb>,
        token_keys: TokenKeys,
        kek: SecretString,
        admin_key: SigningKey,
        federated: bool,
    ) -> Self {
        let tenancy = Tenancy::builder(database)
            .migrations(edk_kms::migrations().unwrap())
            .migrations(edk_kms::cert::migrations().unwrap())
            .migrations(edk_oauth::migrations().unwrap())
            .migrations(edk_oauth::federation::migrations().unwrap())
            .migrations(edk_oid4vci::migrations().unwrap())
            .config_schema(
                edk_tenancy::ConfigSchema::builder()
                    .key(&edk_oauth::federation::UPSTREAM_OIDC)
                    .key(&edk_oauth::client_attestation::CLIENT_ATTESTATION)
                    .key(&edk_oid4vci::SESSION_RETENTION)
                    .key(&edk_oid4vci::CLAIMS_ENDPOINT)
                    .key(&edk_oid4vci::WALLET_INITIATED)
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
        let authenticator: Arc<dyn edk_oauth::Authenticator> = if federated {
            Arc::new(
                edk_oauth::federation::OidcFederation::new(
                    tenancy.clone(),
                    http(),
                    Arc::clone(&clock),
                )
                .with_kms(kms.clone()),
            )
        } else {
            Arc::new(PreApprovedAuthenticator::new("alice", Arc::clone(&clock)))
        };
        let server = Arc::new(
            AuthorizationServer::new(
                Arc::new(SqlStore::new(tenancy.clone())),
                kms.clone(),
                authenticator,
                Arc::clone(&clock),
                AsConfig::default(),
            )
            .with_credential_grant_policy(Arc::new(
                edk_oid4vci::IssuerGrantPolicy::new(
                    Arc::new(edk_oid4vci::SqlStore::new(tenancy.clone())),
                    tenancy.clone(),
                    Arc::clone(&clock),
                ),
            )),
        );
        let mut auth = AuthConfig::default();
        auth.issuers.push(TrustedIssuer::with_jwks(
            ADMIN_ISSUER,
            JwkSet {
                keys: vec![admin_key.public_jwk()],
            },
        ));
        let as_app = edk_as_server::build_app(
            &HttpConfig::default(),
            &auth,
            &Metrics::new().unwrap(),
            &tenancy,
            &server,
            edk_server::HealthApi::new(),
            Arc::clone(&clock),
            None,
            None,
        )
        .unwrap();
        let settings = IssuerSettings::default();
        let certificates = edk_kms::cert::Certificates::new(
            kms.clone(),
            Arc::new(edk_kms::cert::store::SqlCertificateStore::new(
                tenancy.clone(),
            )),
            Arc::clone(&clock),
        );
        let issuer = IssuerParts::issuer(
            &tenancy,
            kms.clone(),
            Arc::clone(&clock),
            settings.options(),
        )
        .unwrap()
        .with_claims_source(Arc::new(edk_oid4vci::HttpClaimsSource::new(http())))
        .with_certificates(Arc::new(certificates.clone()));
        let parts = IssuerParts {
            tenancy: tenancy.clone(),
            issuer: Arc::new(issuer),
            server,
            clock,
            metadata_max_age_secs: settings.metadata_max_age_secs,
            status_list_publish_interval: std::time::Duration::from_secs(60),
            token_keys,
        };
        let issuer_app = edk_issuer_server::build_app(
            &HttpConfig::default(),
            &auth,
            &Metrics::new().unwrap(),
            &parts,
            edk_server::HealthApi::new(),
            None,
        )
        .unwrap();
        Self {
            as_http: spawn_server(as_app).await.unwrap(),
            issuer_http: spawn_server(issuer_app).await.unwrap(),
            tenancy,
            kms,
            certificates,
            parts,
            admin_key,
            _dir: dir,
            db,
        }
    }

    /// Provisions `slug` with its AS at `https://localhost:<AS port>/<slug>` and its issuer
    /// at `https://localhost:<issuer port>/<slug>` (path-inserted well-known documents).
    pub(crate) async fn tenant(&self, slug: &str) -> Tenant {
        self.tenant_with(slug, EndpointScheme::Https).await
    }

    /// Provisions `slug` with bindings of `scheme` (`http` only for loopback: then the AS's
    /// `jwks_uri` is reachable here over plain HTTP).
    pub(crate) async fn tenant_with(&self, slug: &str, scheme: EndpointScheme) -> Tenant {
        let tenant = self
            .tenancy
            .provision(TenantSlug::new(slug).unwrap(), slug)
            .await
            .unwrap();
        let as_port = self.as_http.addr().port();
        let issuer_port = self.issuer_http.addr().port();
        for (service, port) in [
            (ServiceType::As, as_port),
            (ServiceType::Issuer, issuer_port),
        ] {
            let binding = EndpointBinding::with_scheme(
                tenant.id,
                service,
                scheme,
                "localhost",
                Some(port),
                &format!("/{slug}"),
                WellKnownLayout::Inserted,
            )
            .unwrap();
            self.tenancy.bind(&binding).await.unwrap();
        }
        Tenant {
            id: tenant.id,
            credential_issuer: format!("{scheme}://localhost:{issuer_port}/{slug}"),
            issuer_origin: format!("http://localhost:{issuer_port}"),
            issuer_base: format!("http://localhost:{issuer_port}/{slug}"),
            as_base: format!("http://localhost:{as_port}/{slug}"),
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

    /// Issuance session `session_id` of `tenant`, as the admin API shows it.
    pub(crate) async fn session(&self, tenant: &Tenant, session_id: &str) -> Value {
        let (status, session) = self
            .admin(
                tenant,
                reqwest::Method::GET,
                &format!("/sessions/{session_id}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{session}");
        session
    }

    /// `method` on the issuer's admin API with a token of every scope.
    pub(crate) async fn admin(
        &self,
        tenant: &Tenant,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let token = self
            .admin_token(tenant.id, "oid4vci:read oid4vci:write")
            .await;
        let mut request = http()
            .request(
                method,
                self.issuer_http.url(&format!("/api/oid4vci/v1{path}")),
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

    /// Stores the `identity` SD-JWT VC configuration, bound to `jwk` keys.
    pub(crate) async fn configure(&self, tenant: &Tenant) {
        let (status, body) = self
            .admin(
                tenant,
                reqwest::Method::PUT,
                "/configurations/identity",
                Some(json!({
                    "configuration": {
                        "format": "dc+sd-jwt",
                        "vct": "https://credentials.example.com/identity",
                        "scope": "identity",
                        "cryptographic_binding_methods_supported": ["jwk"],
                        "credential_signing_alg_values_supported": ["ES256"],
                        "proof_types_supported": {
                            "jwt": { "proof_signing_alg_values_supported": ["ES256"] }
                        },
                    },
                    "settings": { "lifetime_secs": 86400 },
                })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// An offer of `identity` with a 6-digit transaction code.
    pub(crate) async fn offer(&self, tenant: &Tenant, by_reference: bool) -> Value {
        let (status, body) = self
            .admin(
                tenant,
                reqwest::Method::POST,
                "/offers",
                Some(json!({
                    "credential_configuration_ids": ["identity"],
                    "claims": { "identity": { "given_name": "Erika", "family_name": "Mustermann" } },
                    "tx_code": { "digits": 6, "description": "sent by SMS" },
                    "by_reference": by_reference,
                })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// The public keys of the tenant's credential signing key.
    pub(crate) async fn issuer_jwks(&self, tenant: &Tenant) -> JwkSet {
        let context = edk_tenancy::TenantDirectory::context(&self.tenancy, tenant.id)
            .await
            .unwrap();
        edk_kms::Kms::jwks(
            self.kms.as_ref(),
            &Caller::new(context, "test"),
            &KeyAlias::new("issuer", "credential-signing").unwrap(),
        )
        .await
        .unwrap()
    }

    /// Stops this replica as if its process were killed between two requests: its
    /// listeners close and its in-process state goes away, the database stays.
    pub(crate) async fn kill(self) {
        assert!(
            self.db.is_none(),
            "a killed replica must not own the database"
        );
        self.as_http.shutdown().await.unwrap();
        self.issuer_http.shutdown().await.unwrap();
        drop(self.parts);
        drop(self.kms);
        drop(self.tenancy);
    }

    pub(crate) async fn close(self) {
        self.as_http.shutdown().await.unwrap();
        self.issuer_http.shutdown().await.unwrap();
        drop(self.parts);
        drop(self.tenancy);
        if let Some(db) = self.db {
            db.close().await;
        }
    }
}

/// Redeems the offer's pre-authorized code (with its transaction code) at the tenant's AS:
/// the token response.
pub(crate) async fn redeem(
    tenant: &Tenant,
    offer: &Value,
    dpop: Option<String>,
) -> reqwest::Response {
    let code = offer["credential_offer"]["grants"][PRE_AUTHORIZED]["pre-authorized_code"]
        .as_str()
        .unwrap();
    let mut request = http().post(format!("{}/token", tenant.as_base)).form(&[
        ("grant_type", PRE_AUTHORIZED),
        ("pre-authorized_code", code),
        ("tx_code", offer["tx_code"].as_str().unwrap()),
    ]);
    if let Some(proof) = dpop {
        request = request.header("dpop", proof);
    }
    request.send().await.unwrap()
}

/// A fresh `c_nonce` from the nonce endpoint.
pub(crate) async fn nonce(tenant: &Tenant) -> String {
    let response = http()
        .post(format!("{}/nonce", tenant.issuer_base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(header(&response, "cache-control"), "no-store");
    let body: Value = response.json().await.unwrap();
    body["c_nonce"].as_str().unwrap().to_owned()
}

/// A JWT key proof (OpenID4VCI Appendix F.4) of `key` for `aud` with `nonce`.
pub(crate) fn key_proof(key: &SigningKey, aud: &str, nonce: Option<&str>) -> String {
    let header = Header::new(key.algorithm())
        .with_typ(edk_oid4vci::proof::PROOF_TYP)
        .with_jwk(&key.public_jwk());
    let mut claims = json!({ "aud": aud, "iat": SystemClock.unix_seconds() });
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    let header = b64url_encode(serde_json::to_vec(&header).unwrap());
    let payload = b64url_encode(claims.to_string());
    let signature = key
        .sign_bytes(format!("{header}.{payload}").as_bytes())
        .unwrap();
    format!("{header}.{payload}.{}", b64url_encode(signature))
}

/// A DPoP proof (RFC 9449) of `key` for `POST htu`, with `ath` of `access_token` and `nonce`
/// when given.
pub(crate) async fn dpop_proof(
    key: &SigningKey,
    htu: &str,
    access_token: Option<&str>,
    nonce: Option<&str>,
) -> String {
    let mut claims = json!({
        "jti": uuid::Uuid::new_v4().to_string(), "htm": "POST", "htu": htu,
        "iat": SystemClock.unix_seconds(),
    });
    if let Some(token) = access_token {
        claims["ath"] = json!(b64url_encode(Sha256::digest(token.as_bytes())));
    }
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    let header = Header::new(Algorithm::Es256)
        .with_typ("dpop+jwt")
        .with_jwk(&key.public_jwk());
    jws::sign(header, claims.to_string().as_bytes(), key)
        .await
        .unwrap()
}

/// The value of header `name`.
pub(crate) fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// A reqwest client (loopback only; no proxies).
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

/// Verifies `sd_jwt` with PyPI `sd-jwt` (`interop/python/sd_jwt_verify.py`) and the issuer's
/// public key: the processed claims.
pub(crate) async fn python_verify(sd_jwt: String, issuer_jwk: Value) -> Value {
    tokio::task::spawn_blocking(move || {
        let python = workspace_root().join("target/interop/venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run scripts/test",
            python.display()
        );
        let mut child = Command::new(python)
            .arg("sd_jwt_verify.py")
            .current_dir(workspace_root().join("interop/python"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let request = json!({ "sd_jwt": sd_jwt, "issuer_jwk": issuer_jwk });
        child
            .stdin
            .take()
            .unwrap()
            .write_all(request.to_string().as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "sd_jwt_verify.py failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Value>(&output.stdout).unwrap()["payload"].clone()
    })
    .await
    .unwrap()
}

/// Binds tenant `acme`'s issuer (`localhost`) and AS (`as.localhost`) under `/acme` on `port`,
/// as a compiled server in front of `tenancy` serves them.
pub(crate) async fn bind_acme(tenancy: &Tenancy, tenant: TenantId, port: u16) {
    for (service, host) in [
        (ServiceType::Issuer, "localhost"),
        (ServiceType::As, "as.localhost"),
    ] {
        let binding = EndpointBinding::new(
            tenant,
            service,
            host,
            Some(port),
            "/acme",
            WellKnownLayout::Inserted,
        )
        .unwrap();
        tenancy.bind(&binding).await.unwrap();
    }
}
