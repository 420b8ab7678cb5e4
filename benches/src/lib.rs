#![doc = include_str!("../README.md")]

use std::sync::Arc;
use std::time::Duration;

use edk_core::jose::SigningKey;
use edk_core::sd_jwt_vc::SdJwtVcBuilder;
use edk_core::{Clock, SystemClock, TenantSlug};
use edk_kms::LocalKms;
use edk_kms::provider::ProviderId;
use edk_kms::provider::software::{
    KekConfig, KekId, SoftwareProvider, SoftwareProviderConfig, generate_kek,
};
use edk_oauth::client::{ClientAuthMethod, ClientMetadata, GrantType};
use edk_oauth::{AsConfig, AuthorizationServer, NewClient, NoAuthenticator, SqlStore};
use edk_server::{AuthConfig, HttpConfig, Metrics};
use edk_tenancy::{
    DatabaseConfig, EndpointBinding, ServiceType, Tenancy, TenantContext, TenantDirectory as _,
    WellKnownLayout,
};
use poem::endpoint::BoxEndpoint;
use secrecy::ExposeSecret as _;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// The issuance time of [`identity_vc`] (seconds since the epoch).
pub const IDENTITY_VC_NOW: i64 = 1_700_000_000;

/// The claims of [`identity_vc`] that are selectively disclosable.
pub const IDENTITY_VC_DISCLOSABLE: [&str; 8] = [
    "given_name",
    "family_name",
    "birthdate",
    "email",
    "phone_number",
    "address",
    "is_over_18",
    "is_over_21",
];

/// The SD-JWT VC of the benchmarks: 10 claims, 8 of them selectively disclosable
/// ([`IDENTITY_VC_DISCLOSABLE`]), bound to `holder`'s key, valid a day from
/// [`IDENTITY_VC_NOW`].
///
/// # Panics
/// Never: the claim paths are valid constants.
pub fn identity_vc(holder: &SigningKey) -> SdJwtVcBuilder {
    let mut builder = SdJwtVcBuilder::new("https://credentials.example/identity")
        .issuer("https://issuer.example")
        .issued_at(IDENTITY_VC_NOW)
        .expires_at(IDENTITY_VC_NOW + 86_400)
        .holder_key(&holder.public_jwk());
    let claims = json!({
        "given_name": "Erika", "family_name": "Mustermann", "birthdate": "1963-08-12",
        "email": "erika@example.com", "phone_number": "+49-221-555-0101",
        "address": {"street_address": "Heidestraße 17", "locality": "Köln", "country": "DE"},
        "nationality": "DE", "is_over_18": true, "is_over_21": true, "is_over_65": false,
    });
    if let Some(claims) = claims.as_object() {
        for (name, value) in claims {
            builder = builder.claim(name.clone(), value.clone());
        }
    }
    for name in IDENTITY_VC_DISCLOSABLE {
        #[expect(clippy::expect_used, reason = "the claim paths are valid constants")]
        let path = name.parse().expect("a claim path");
        builder = builder.selectively_disclose(path);
    }
    builder
}

/// The `q` quantile (0 to 1) of `sorted` latencies by nearest rank, zero when there are none.
#[must_use]
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a list of latencies"
    )]
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

/// An authorization server as the AS server builds it, for the token endpoint benchmarks: a
/// `LocalKms` with the software provider (its audit writer running in the background), the
/// tenancy's event listener, and the whole HTTP application.
pub struct AsBench {
    /// The tenancy.
    pub tenancy: Tenancy,
    /// The authorization server.
    pub server: Arc<AuthorizationServer>,
    cancel: CancellationToken,
    /// Stops the KMS's and the tenancy's background tasks once `cancel` is cancelled.
    stopped: tokio::task::JoinHandle<()>,
}

/// The tenant [`AsBench::tenant`] makes, with its `client_credentials` client.
pub struct BenchTenant {
    /// The tenant's authorization server context.
    pub context: TenantContext,
    /// The client id.
    pub client_id: String,
    /// The client secret (`client_secret_basic`).
    pub client_secret: String,
}

impl std::fmt::Debug for AsBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsBench").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for BenchTenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BenchTenant")
            .field("tenant", &self.context.id())
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .finish()
    }
}

impl AsBench {
    /// The authorization server on `database` (with the KMS and OAuth migrations), and its
    /// HTTP application.
    ///
    /// # Panics
    /// When any part cannot be set up.
    #[expect(clippy::unwrap_used, reason = "a benchmark fixture")]
    pub async fn start(database: DatabaseConfig) -> (Self, BoxEndpoint<'static, poem::Response>) {
        let tenancy = Tenancy::builder(database)
            .migrations(edk_kms::migrations().unwrap())
            .migrations(edk_oauth::migrations().unwrap())
            .build()
            .await
            .unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let kek = KekConfig::key(KekId::new("bench").unwrap(), generate_kek().unwrap()).unwrap();
        let provider = SoftwareProvider::new(SoftwareProviderConfig::new(
            ProviderId::new("software").unwrap(),
            kek,
        ))
        .unwrap();
        let kms = LocalKms::builder(tenancy.clone(), vec![Arc::new(provider)])
            .clock(Arc::clone(&clock))
            .build()
            .unwrap();
        // As in the servers: the tenancy's event listener keeps its caches fresh, and the
        // KMS's background task writes audit records off the request path.
        let cancel = CancellationToken::new();
        let tenancy_task = tenancy.start(&cancel);
        let kms_task = kms.start(&cancel);
        let server = Arc::new(AuthorizationServer::new(
            Arc::new(SqlStore::new(tenancy.clone())),
            Arc::new(kms),
            Arc::new(NoAuthenticator),
            Arc::clone(&clock),
            AsConfig::default(),
        ));
        let app = edk_as_server::build_app(
            &HttpConfig::default(),
            &AuthConfig::default(),
            &Metrics::new().unwrap(),
            &tenancy,
            &server,
            edk_server::HealthApi::new(),
            clock,
            None,
            None,
        )
        .unwrap();
        let stopping = cancel.clone();
        let stopped = tokio::spawn(async move {
            stopping.cancelled().await;
            kms_task.shutdown().await;
            tenancy_task.shutdown().await;
        });
        let bench = Self {
            tenancy,
            server,
            cancel,
            stopped,
        };
        (bench, app)
    }

    /// Provisions the tenant `bench`, binds its authorization server to
    /// `localhost:<port>/bench` and registers a `client_credentials` client with scope
    /// `api:read`.
    ///
    /// # Panics
    /// When any part cannot be set up.
    #[expect(clippy::unwrap_used, reason = "a benchmark fixture")]
    pub async fn tenant(&self, port: u16) -> BenchTenant {
        let tenant = self
            .tenancy
            .provision(TenantSlug::new("bench").unwrap(), "bench")
            .await
            .unwrap();
        let binding = EndpointBinding::new(
            tenant.id,
            ServiceType::As,
            "localhost",
            Some(port),
            "/bench",
            WellKnownLayout::Inserted,
        )
        .unwrap();
        self.tenancy.bind(&binding).await.unwrap();
        let context = self
            .tenancy
            .context_for_service(tenant.id, ServiceType::As)
            .await
            .unwrap();
        let mut metadata = ClientMetadata::new(
            ClientAuthMethod::ClientSecretBasic,
            vec![GrantType::ClientCredentials],
        );
        metadata.scopes = vec!["api:read".to_owned()];
        let (client, secret) = self
            .server
            .create_client(&context, NewClient::new(metadata))
            .await
            .unwrap();
        BenchTenant {
            context,
            client_id: client.client_id.as_str().to_owned(),
            client_secret: secret.unwrap().expose_secret().to_owned(),
        }
    }

    /// Stops the background tasks.
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.stopped.await;
    }
}
