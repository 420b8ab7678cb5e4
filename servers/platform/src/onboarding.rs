//! Tenant onboarding: recorded, idempotent steps that take a tenant from its registry row to
//! a serving tenant with its keys, endpoints, issuer DID and the default settings that let it
//! issue and verify credentials at once.
//!
//! The record is the tenant configuration property [`ONBOARDING`] (`platform.onboarding`):
//! the request and the state of each step. Every step can run again without harm (the
//! registry is keyed by slug, keys that exist are kept, bindings that are already in place
//! are left alone), so a crash or a failed step is resumed by sending the same request
//! again: the steps already done are skipped and the first unfinished one runs.

use std::sync::Arc;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use edk_core::jose::Algorithm;
use edk_core::{Clock, ErrorChain, ErrorKind, HasKind, TenantId, TenantSlug};
use edk_did::registrar::{CreateDid, Registrar};
use edk_did::store::SqlDidStore;
use edk_kms::cert::store::SqlCertificateStore;
use edk_kms::cert::{
    CertificateProfile, Certificates, ChainName, DistinguishedName, SubjectAltName,
};
use edk_kms::provider::KeySpec;
use edk_kms::{Caller, KeyAlias, Kms, NewKey};
use edk_oauth::AuthorizationServer;
use edk_oid4vci::issuer::DEFAULT_SIGNING_PURPOSE;
use edk_oid4vci::metadata::check_configuration_id;
use edk_oid4vci::{
    ConfigError, CredentialConfiguration, IssuanceSettings, IssuerStore as _, KeyIdentification,
    StoredConfiguration,
};
use edk_tenancy::config::ConfigKey;
use edk_tenancy::{
    EndpointBinding, EndpointScheme, ServiceType, Tenancy, TenantContext, TenantDirectory as _,
    WellKnownLayout,
};

/// The tenant property holding the onboarding record.
pub static ONBOARDING: ConfigKey<Option<Onboarding>> =
    ConfigKey::new("platform.onboarding", || None, |_| Ok(()));

/// The tenant property holding the tenant's issuer DID, made by the [`Step::IssuerDid`] step
/// with its own key (`did.issuer`, ES256): the DID the tenant's issuer is known by, which a
/// credential configuration names with `key_identification: {"kind": "did", …}`.
pub static ISSUER_DID: ConfigKey<Option<String>> =
    ConfigKey::new("platform.issuer_did", || None, check_did);

#[expect(
    clippy::ref_option,
    reason = "the shape of a configuration key's rule is fixed by edk-tenancy"
)]
fn check_did(did: &Option<String>) -> Result<(), &'static str> {
    match did {
        Some(did) if edk_core::Did::new(did).is_err() => Err("not a DID"),
        _ => Ok(()),
    }
}

/// The steps, in order.
pub const STEPS: [Step; 7] = [
    Step::Registry,
    Step::KmsAliases,
    Step::Bindings,
    Step::AuthorizationServer,
    Step::IssuerDid,
    Step::IssuerSettings,
    Step::VerifierSettings,
];

/// The keys every tenant gets at onboarding: (service, purpose, algorithm).
pub const DEFAULT_KEYS: [(&str, &str, Algorithm); 4] = [
    ("issuer", "credential-signing", Algorithm::Es256),
    ("issuer", "ca-root", Algorithm::Es256),
    ("verifier", "request-object-signing", Algorithm::Es256),
    ("verifier", "ca-root", Algorithm::Es256),
];

/// The tenant's certificate chain, marked trust anchor, that holds the root of its own
/// issuer (`issuer.ca-root`): its verifier trusts the credentials its issuer signs.
pub const ISSUER_TRUST_CHAIN: &str = "tenant-issuers";

/// The id of the default credential configuration when the request names none.
pub const DEFAULT_CONFIGURATION_ID: &str = "identity";

/// How long the tenant's CA certificates are valid (ten years).
const CA_VALIDITY: std::time::Duration = std::time::Duration::from_secs(10 * 365 * 86_400);

/// How long the certificates of its signing keys are valid (one year).
const LEAF_VALIDITY: std::time::Duration = std::time::Duration::from_secs(365 * 86_400);

/// One onboarding step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The registry row, the tenant's schema (or file) and every migration.
    Registry,
    /// The default key aliases ([`DEFAULT_KEYS`]) in the configured KMS.
    KmsAliases,
    /// The endpoint bindings of each requested service.
    Bindings,
    /// The tenant authorization server: its access-token signing key and metadata.
    AuthorizationServer,
    /// The issuer DID (did:web or did:webvh, key `did.issuer`) under the tenant's `did`
    /// binding, recorded in [`ISSUER_DID`]; nothing to do for a tenant without a `did`
    /// binding.
    IssuerDid,
    /// The default issuer settings: the certificate of `issuer.credential-signing` under the
    /// tenant's issuer root (`issuer.ca-root`), and the default credential configuration.
    IssuerSettings,
    /// The default verifier settings: the issuer root as the tenant's trust anchor
    /// ([`ISSUER_TRUST_CHAIN`]) and the certificate of `verifier.request-object-signing`
    /// naming the verifier's host, for `x509_san_dns` and `x509_hash` requests.
    VerifierSettings,
}

impl Step {
    /// The step's name in the record and the API.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Registry => "registry",
            Self::KmsAliases => "kms_aliases",
            Self::Bindings => "bindings",
            Self::AuthorizationServer => "authorization_server",
            Self::IssuerDid => "issuer_did",
            Self::IssuerSettings => "issuer_settings",
            Self::VerifierSettings => "verifier_settings",
        }
    }
}

/// Where one service of a tenant is reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingRequest {
    /// `as`, `did`, `issuer` or `verifier`.
    pub service: String,
    /// The DNS host.
    pub host: String,
    /// The port, when not the scheme's default.
    #[serde(default)]
    pub port: Option<u16>,
    /// The path prefix (`/` for the host root).
    pub path_prefix: String,
    /// `inserted` (`/.well-known/<name><prefix>`, the default) or `appended`.
    #[serde(default)]
    pub well_known: Option<String>,
    /// Advertise `http` (loopback hosts only, for local development).
    #[serde(default)]
    pub dangerous_loopback_http: bool,
}

impl BindingRequest {
    /// The binding for `tenant`, or the name of the field that is wrong and why.
    ///
    /// # Errors
    /// `(field, reason)`.
    pub fn binding(&self, tenant: TenantId) -> Result<EndpointBinding, (&'static str, String)> {
        let service = ServiceType::ALL
            .into_iter()
            .find(|service| service.as_str() == self.service)
            .ok_or((
                "service",
                "one of `as`, `did`, `issuer`, `verifier`".to_owned(),
            ))?;
        let layout = match self.well_known.as_deref() {
            None | Some("inserted") => WellKnownLayout::Inserted,
            Some("appended") => WellKnownLayout::Appended,
            Some(_) => return Err(("well_known", "`inserted` or `appended`".to_owned())),
        };
        let scheme = if self.dangerous_loopback_http {
            EndpointScheme::Http
        } else {
            EndpointScheme::Https
        };
        EndpointBinding::with_scheme(
            tenant,
            service,
            scheme,
            &self.host,
            self.port,
            &self.path_prefix,
            layout,
        )
        .map_err(|err| {
            let field = match err {
                edk_tenancy::error::BindingError::Host
                | edk_tenancy::error::BindingError::HttpNotLoopback => "host",
                _ => "path_prefix",
            };
            (field, err.to_string())
        })
    }
}

/// The issuer DID to make.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerDidRequest {
    /// `web` (the default) or `webvh`.
    pub method: String,
}

/// The default credential configuration to store for the tenant's issuer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfigurationRequest {
    /// The configuration id (1 to 128 printable ASCII characters).
    pub id: String,
    /// The SD-JWT VC type (`vct`).
    pub vct: String,
    /// The credential's lifetime in seconds; unset: no `exp`.
    #[serde(default)]
    pub lifetime_secs: Option<u64>,
}

/// What an onboarding was asked to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnboardingRequest {
    /// The tenant's slug.
    pub slug: String,
    /// The tenant's display name.
    pub display_name: String,
    /// The endpoints of its services.
    pub bindings: Vec<BindingRequest>,
    /// The issuer DID; unset: did:web when a `did` binding is given.
    #[serde(default)]
    pub issuer_did: Option<IssuerDidRequest>,
    /// The default credential configuration; unset: an SD-JWT VC configuration
    /// [`DEFAULT_CONFIGURATION_ID`] of type `<issuer identifier>/identity` when an `issuer`
    /// binding is given.
    #[serde(default)]
    pub credential_configuration: Option<CredentialConfigurationRequest>,
}

impl OnboardingRequest {
    fn binding_of(&self, service: ServiceType) -> Option<&BindingRequest> {
        self.bindings
            .iter()
            .find(|binding| binding.service == service.as_str())
    }

    /// The DID method to make, if any.
    fn did_method(&self) -> Option<&str> {
        self.binding_of(ServiceType::Did)?;
        Some(
            self.issuer_did
                .as_ref()
                .map_or("web", |did| did.method.as_str()),
        )
    }

    /// The default credential configuration (id and stored form) for a tenant whose issuer
    /// identifier is `issuer`: signed by `issuer.credential-signing`, named by its `x5c`
    /// chain, which the tenant's verifier trusts.
    fn configuration(
        &self,
        issuer: Option<&str>,
    ) -> Result<Option<(String, StoredConfiguration)>, (String, String)> {
        let (id, vct, lifetime) = match &self.credential_configuration {
            Some(wanted) => (wanted.id.clone(), wanted.vct.clone(), wanted.lifetime_secs),
            None => match issuer {
                Some(issuer) => (
                    DEFAULT_CONFIGURATION_ID.to_owned(),
                    format!("{issuer}/identity"),
                    Some(365 * 86_400),
                ),
                None => return Ok(None),
            },
        };
        let field = |name: &str| format!("credential_configuration.{name}");
        check_configuration_id(&id).map_err(|err| (field("id"), reason_of(&err)))?;
        let configuration = CredentialConfiguration::from_json(serde_json::json!({
            "format": "dc+sd-jwt",
            "vct": vct,
            "cryptographic_binding_methods_supported": ["jwk"],
            "credential_signing_alg_values_supported": ["ES256"],
            "proof_types_supported": {"jwt": {"proof_signing_alg_values_supported": ["ES256"]}},
        }))
        .map_err(|err| config_field(&err, &field))?;
        let settings = IssuanceSettings {
            signing_key: Some(DEFAULT_SIGNING_PURPOSE.to_owned()),
            key_identification: KeyIdentification::X5c,
            lifetime_secs: lifetime,
            ..IssuanceSettings::default()
        };
        settings
            .validate()
            .map_err(|err| config_field(&err, &field))?;
        Ok(Some((
            id,
            StoredConfiguration {
                configuration,
                settings,
            },
        )))
    }
}

/// The reason of a credential configuration error.
fn reason_of(err: &ConfigError) -> String {
    match err {
        ConfigError::Invalid { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// A credential configuration error as `(request field, reason)`.
fn config_field(err: &ConfigError, field: &dyn Fn(&str) -> String) -> (String, String) {
    match err {
        ConfigError::Invalid {
            field: name,
            reason,
        } => {
            let name = if name == "vct" || name == "lifetime_secs" {
                name.as_str()
            } else {
                "vct"
            };
            (field(name), reason.clone())
        }
        other => (field("vct"), other.to_string()),
    }
}

/// The state of one step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepRecord {
    /// The step.
    pub step: Step,
    /// `pending`, `done` or `failed`.
    pub state: String,
    /// When it last changed (RFC 3339).
    pub at: Option<String>,
    /// Why it failed, for the operator (client errors only).
    pub error: Option<String>,
}

/// The onboarding record of a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Onboarding {
    /// The request.
    pub request: OnboardingRequest,
    /// Each step, in order.
    pub steps: Vec<StepRecord>,
    /// The issuer DID made by [`Step::IssuerDid`].
    #[serde(default)]
    pub issuer_did: Option<String>,
    /// The id of the credential configuration stored by [`Step::IssuerSettings`].
    #[serde(default)]
    pub credential_configuration: Option<String>,
}

impl Onboarding {
    fn new(request: OnboardingRequest) -> Self {
        Self {
            request,
            steps: STEPS
                .iter()
                .map(|step| StepRecord {
                    step: *step,
                    state: "pending".to_owned(),
                    at: None,
                    error: None,
                })
                .collect(),
            issuer_did: None,
            credential_configuration: None,
        }
    }

    /// Whether every step is done.
    #[must_use]
    pub fn complete(&self) -> bool {
        self.steps.iter().all(|step| step.state == "done")
    }

    fn done(&self, step: Step) -> bool {
        self.steps
            .iter()
            .any(|record| record.step == step && record.state == "done")
    }

    fn mark(&mut self, step: Step, state: &str, error: Option<String>, clock: &dyn Clock) {
        let at: chrono::DateTime<Utc> = clock.now().into();
        if !self.steps.iter().any(|record| record.step == step) {
            // A record from before the step existed.
            self.steps.push(StepRecord {
                step,
                state: String::new(),
                at: None,
                error: None,
            });
        }
        if let Some(record) = self.steps.iter_mut().find(|record| record.step == step) {
            state.clone_into(&mut record.state);
            record.at = Some(at.to_rfc3339());
            record.error = error;
        }
    }
}

/// Why onboarding stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnboardingError {
    /// A request field is wrong.
    #[error("`{field}`: {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
    /// The slug names a tenant that finished onboarding, or was asked with another request.
    #[error("tenant `{slug}` exists")]
    Exists {
        /// The slug.
        slug: String,
    },
    /// A step failed; the record says which, and the same request resumes there.
    #[error("onboarding step `{step}` failed: {reason}")]
    Step {
        /// The step.
        step: &'static str,
        /// Why (the cause's message for client errors; server faults are only logged).
        reason: String,
        /// The kind of the cause.
        kind: ErrorKind,
    },
    /// The tenancy refused.
    #[error("the tenancy refused")]
    Tenancy(#[source] edk_tenancy::Error),
}

impl HasKind for OnboardingError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } => ErrorKind::InvalidInput,
            Self::Exists { .. } => ErrorKind::Conflict,
            Self::Step { kind, .. } => *kind,
            Self::Tenancy(err) => err.kind(),
        }
    }
}

/// Runs the onboarding steps of tenants.
#[derive(Clone, Debug)]
pub struct Onboarder {
    tenancy: Tenancy,
    kms: Arc<dyn Kms>,
    oauth: Arc<AuthorizationServer>,
    clock: Arc<dyn Clock>,
    reserved: TenantId,
    certificates: Certificates,
    dids: Arc<Registrar>,
    issuer: Arc<edk_oid4vci::SqlStore>,
}

impl Onboarder {
    /// Onboards tenants of `tenancy` with keys in `kms`, their authorization server served by
    /// `oauth`; `reserved` (the operator realm) is never onboarded. Certificates, DIDs and
    /// credential configurations are written to the tenants' databases, which the KMS, DID
    /// and issuer services share.
    #[must_use]
    pub fn new(
        tenancy: Tenancy,
        kms: Arc<dyn Kms>,
        oauth: Arc<AuthorizationServer>,
        clock: Arc<dyn Clock>,
        reserved: TenantId,
    ) -> Self {
        let certificates = Certificates::new(
            Arc::clone(&kms),
            Arc::new(SqlCertificateStore::new(tenancy.clone())),
            Arc::clone(&clock),
        );
        let dids = Registrar::new(
            Arc::new(SqlDidStore::new(tenancy.clone())),
            Arc::clone(&kms),
            Arc::clone(&clock),
        )
        .with_events(Arc::clone(tenancy.events()));
        Self {
            issuer: Arc::new(edk_oid4vci::SqlStore::new(tenancy.clone())),
            tenancy,
            kms,
            oauth,
            clock,
            reserved,
            certificates,
            dids: Arc::new(dids),
        }
    }

    /// The onboarding record of `tenant`, if it was onboarded through the platform.
    ///
    /// # Errors
    /// [`OnboardingError::Tenancy`].
    pub async fn record(&self, tenant: TenantId) -> Result<Option<Onboarding>, OnboardingError> {
        let properties = self
            .tenancy
            .config_properties(Some(tenant))
            .await
            .map_err(OnboardingError::Tenancy)?;
        Ok(properties
            .into_iter()
            .find(|property| property.key == ONBOARDING.name())
            .and_then(|property| serde_json::from_value(property.value).ok()))
    }

    async fn save(&self, tenant: TenantId, record: &Onboarding) -> Result<(), OnboardingError> {
        let value = serde_json::to_value(Some(record)).map_err(|_| OnboardingError::Invalid {
            field: "bindings".to_owned(),
            reason: "not representable".to_owned(),
        })?;
        self.tenancy
            .set_config(Some(tenant), ONBOARDING.name(), value, None)
            .await
            .map(|_| ())
            .map_err(OnboardingError::Tenancy)
    }

    /// Checks `request` before anything is written.
    ///
    /// # Errors
    /// [`OnboardingError::Invalid`] naming the field.
    pub fn validate(&self, request: &OnboardingRequest) -> Result<TenantSlug, OnboardingError> {
        let invalid = |field: String, reason: String| OnboardingError::Invalid { field, reason };
        let slug = TenantSlug::new(&request.slug)
            .map_err(|err| invalid("slug".to_owned(), err.to_string()))?;
        if slug.as_str() == crate::operators::OPERATOR_REALM_SLUG {
            return Err(invalid("slug".to_owned(), "is reserved".to_owned()));
        }
        let name = request.display_name.trim();
        if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
            return Err(invalid(
                "display_name".to_owned(),
                "1 to 200 characters, no control characters".to_owned(),
            ));
        }
        let mut services = Vec::new();
        for (index, binding) in request.bindings.iter().enumerate() {
            // Any tenant id shows whether the binding is well formed.
            let checked = binding
                .binding(self.reserved)
                .map_err(|(field, reason)| invalid(format!("bindings[{index}].{field}"), reason))?;
            if services.contains(&checked.service()) {
                return Err(invalid(
                    format!("bindings[{index}].service"),
                    "bound twice".to_owned(),
                ));
            }
            services.push(checked.service());
        }
        if !services.contains(&ServiceType::As) {
            return Err(invalid(
                "bindings".to_owned(),
                "needs a binding of service `as` for the tenant's authorization server".to_owned(),
            ));
        }
        if let Some(did) = &request.issuer_did {
            if !["web", "webvh"].contains(&did.method.as_str()) {
                return Err(invalid(
                    "issuer_did.method".to_owned(),
                    "`web` or `webvh`".to_owned(),
                ));
            }
            if !services.contains(&ServiceType::Did) {
                return Err(invalid(
                    "issuer_did".to_owned(),
                    "needs a binding of service `did` to publish the DID under".to_owned(),
                ));
            }
        }
        let issuer = request
            .binding_of(ServiceType::Issuer)
            .and_then(|binding| binding.binding(self.reserved).ok());
        request
            .configuration(issuer.as_ref().map(EndpointBinding::identifier))
            .map_err(|(field, reason)| invalid(field, reason))?;
        Ok(slug)
    }

    /// Onboards the tenant of `request`, or resumes its onboarding at the first unfinished
    /// step. Returns the tenant and its record.
    ///
    /// # Errors
    /// [`OnboardingError`]: invalid input before anything is written, `Exists` for a slug
    /// whose onboarding is complete or that was asked with another request, `Step` for the
    /// first step that failed (recorded).
    pub async fn onboard(
        &self,
        request: OnboardingRequest,
    ) -> Result<(TenantId, Onboarding), OnboardingError> {
        let slug = self.validate(&request)?;
        let existing = match self.tenancy.tenant_by_slug(&slug).await {
            Ok(tenant) => Some(tenant),
            Err(err) if err.kind() == ErrorKind::NotFound => None,
            Err(err) => return Err(OnboardingError::Tenancy(err)),
        };
        let mut record = match &existing {
            Some(tenant) => match self.record(tenant.id).await? {
                Some(record) if record.request == request && !record.complete() => record,
                // A run stopped between the registry row and its record leaves a bare row.
                None if self.bare(tenant.id).await? => Onboarding::new(request.clone()),
                _ => {
                    return Err(OnboardingError::Exists {
                        slug: slug.to_string(),
                    });
                }
            },
            None => Onboarding::new(request.clone()),
        };
        faults::check(&request.slug, Step::Registry, faults::Point::Before)?;
        let tenant = match existing {
            Some(tenant) => tenant,
            None => self
                .tenancy
                .provision(slug, request.display_name.trim())
                .await
                .map_err(|err| self.step_failed(Step::Registry, &err))?,
        };
        faults::check(&request.slug, Step::Registry, faults::Point::After)?;
        record.mark(Step::Registry, "done", None, self.clock.as_ref());
        self.save(tenant.id, &record).await?;
        for step in STEPS.into_iter().skip(1) {
            if record.done(step) {
                continue;
            }
            let ran = match faults::check(&request.slug, step, faults::Point::Before) {
                Ok(()) => self.run(step, tenant.id, &request, &mut record).await,
                Err(err) => Err(err),
            };
            match ran {
                Ok(()) => {
                    // A process stopped here has done the step without recording it.
                    faults::check(&request.slug, step, faults::Point::After)?;
                    record.mark(step, "done", None, self.clock.as_ref());
                }
                Err(err) => {
                    let public = err.kind().is_client_error().then(|| err.to_string());
                    record.mark(step, "failed", public, self.clock.as_ref());
                    self.save(tenant.id, &record).await?;
                    return Err(err);
                }
            }
            self.save(tenant.id, &record).await?;
        }
        tracing::info!(tenant = %tenant.id, "tenant onboarded");
        Ok((tenant.id, record))
    }

    /// Whether `tenant` is a registry row and nothing more: no configuration, no binding.
    async fn bare(&self, tenant: TenantId) -> Result<bool, OnboardingError> {
        let properties = self
            .tenancy
            .config_properties(Some(tenant))
            .await
            .map_err(OnboardingError::Tenancy)?;
        let bindings = self
            .tenancy
            .bindings(tenant)
            .await
            .map_err(OnboardingError::Tenancy)?;
        Ok(properties.is_empty() && bindings.is_empty())
    }

    fn step_failed(&self, step: Step, err: &(dyn HasKind + 'static)) -> OnboardingError {
        let kind = err.kind();
        if !kind.is_client_error() {
            tracing::error!(step = step.as_str(), error = %ErrorChain(err), "onboarding step failed");
        }
        OnboardingError::Step {
            step: step.as_str(),
            reason: if kind.is_client_error() {
                err.to_string()
            } else {
                "a server-side fault; see the log".to_owned()
            },
            kind,
        }
    }

    async fn run(
        &self,
        step: Step,
        tenant: TenantId,
        request: &OnboardingRequest,
        record: &mut Onboarding,
    ) -> Result<(), OnboardingError> {
        let failed = |err: &(dyn HasKind + 'static)| self.step_failed(step, err);
        match step {
            Step::Registry => Ok(()),
            Step::KmsAliases => {
                let context = self.tenancy.context(tenant).await.map_err(|e| failed(&e))?;
                let caller = Caller::new(context, "edk-platform");
                for (service, purpose, algorithm) in DEFAULT_KEYS {
                    let alias = KeyAlias::new(service, purpose).map_err(|e| failed(&e))?;
                    let key = NewKey::new(alias, KeySpec::signing(algorithm));
                    match self.kms.create_key(&caller, &key).await {
                        Ok(_) => {}
                        Err(err) if err.kind() == ErrorKind::Conflict => {}
                        Err(err) => return Err(failed(&err)),
                    }
                }
                Ok(())
            }
            Step::Bindings => {
                let current = self
                    .tenancy
                    .bindings(tenant)
                    .await
                    .map_err(|e| failed(&e))?;
                for wanted in &request.bindings {
                    let binding = wanted.binding(tenant).map_err(|(field, reason)| {
                        OnboardingError::Invalid {
                            field: field.to_owned(),
                            reason,
                        }
                    })?;
                    if current.contains(&binding) {
                        continue;
                    }
                    self.tenancy
                        .unbind(tenant, binding.service())
                        .await
                        .map_err(|e| failed(&e))?;
                    self.tenancy.bind(&binding).await.map_err(|e| failed(&e))?;
                }
                Ok(())
            }
            Step::AuthorizationServer => {
                let context = self
                    .tenancy
                    .context_for_service(tenant, ServiceType::As)
                    .await
                    .map_err(|e| failed(&e))?;
                self.oauth.jwks(&context).await.map_err(|e| failed(&e))?;
                self.oauth.metadata(&context).map_err(|e| failed(&e))?;
                Ok(())
            }
            Step::IssuerDid => {
                record.issuer_did = self.issuer_did(tenant, request).await?;
                Ok(())
            }
            Step::IssuerSettings => {
                record.credential_configuration = self.issuer_settings(tenant, request).await?;
                Ok(())
            }
            Step::VerifierSettings => self.verifier_settings(tenant, request).await,
        }
    }

    /// The context of `tenant` as `service` sees it: with its binding when it has one.
    async fn context_of(
        &self,
        tenant: TenantId,
        request: &OnboardingRequest,
        service: ServiceType,
    ) -> Result<TenantContext, edk_tenancy::Error> {
        if request.binding_of(service).is_some() {
            self.tenancy.context_for_service(tenant, service).await
        } else {
            self.tenancy.context(tenant).await
        }
    }

    /// Makes the issuer DID under the tenant's `did` binding, or finds the one a run stopped
    /// before recording made, and records it in [`ISSUER_DID`].
    async fn issuer_did(
        &self,
        tenant: TenantId,
        request: &OnboardingRequest,
    ) -> Result<Option<String>, OnboardingError> {
        let failed = |err: &(dyn HasKind + 'static)| self.step_failed(Step::IssuerDid, err);
        let Some(method) = request.did_method() else {
            return Ok(None);
        };
        let context = self
            .tenancy
            .context_for_service(tenant, ServiceType::Did)
            .await
            .map_err(|e| failed(&e))?;
        let caller = Caller::new(context.clone(), "edk-platform");
        // Where the registrar publishes it: below the binding's path prefix.
        let location = context
            .binding()
            .map(|binding| binding.path_prefix())
            .unwrap_or_default()
            .split('/')
            .filter(|segment| !segment.is_empty())
            .chain([ISSUER_DID_PATH])
            .collect::<Vec<_>>()
            .join("/");
        let existing = self
            .dids
            .store()
            .by_location(&context, method, &location)
            .await
            .map_err(|e| failed(&e))?;
        let stored = match existing {
            Some(stored) => stored,
            None => {
                let mut create = CreateDid::new(method);
                create.path = vec![ISSUER_DID_PATH.to_owned()];
                self.dids
                    .create(&caller, create)
                    .await
                    .map_err(|e| failed(&e))?
            }
        };
        let did = stored.did.to_string();
        let value = serde_json::to_value(Some(&did)).unwrap_or_default();
        self.tenancy
            .set_config(Some(tenant), ISSUER_DID.name(), value, None)
            .await
            .map_err(|e| failed(&e))?;
        Ok(Some(did))
    }

    /// The certificate of `subject` under the CA `ca` (self-signed when they are the same),
    /// unless its current key has one already.
    async fn certify(
        &self,
        caller: &Caller,
        ca: &KeyAlias,
        subject: &KeyAlias,
        profile: CertificateProfile,
    ) -> Result<edk_kms::cert::CertificateInfo, edk_kms::cert::Error> {
        let current = self
            .kms
            .public_key(caller, &edk_kms::KeyRef::Alias(subject.clone()))
            .await?;
        match self.certificates.certificate(caller, subject).await {
            Ok(stored) if stored.kid.as_ref().map(ToString::to_string) == current.kid => {
                return Ok(stored.certificate);
            }
            Ok(_) => {}
            Err(err) if err.kind() == ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        Ok(self
            .certificates
            .issue(caller, ca, subject, &profile)
            .await?
            .certificate)
    }

    /// The issuer root, the certificate of the credential signing key under it, and the
    /// default credential configuration (kept when the tenant already has one of that id).
    async fn issuer_settings(
        &self,
        tenant: TenantId,
        request: &OnboardingRequest,
    ) -> Result<Option<String>, OnboardingError> {
        let step = Step::IssuerSettings;
        let failed = |err: &(dyn HasKind + 'static)| self.step_failed(step, err);
        let context = self
            .context_of(tenant, request, ServiceType::Issuer)
            .await
            .map_err(|e| failed(&e))?;
        let caller = Caller::new(context.clone(), "edk-platform");
        let root = KeyAlias::new("issuer", "ca-root").map_err(|e| failed(&e))?;
        let signing = KeyAlias::new("issuer", DEFAULT_SIGNING_PURPOSE).map_err(|e| failed(&e))?;
        let name = |what: &str| {
            DistinguishedName::parse(&format!("CN={} {what}", request.slug)).map_err(|e| failed(&e))
        };
        let ca = CertificateProfile::ca(CA_VALIDITY, Some(0)).with_subject(name("issuers")?);
        self.certify(&caller, &root, &root, ca)
            .await
            .map_err(|e| failed(&e))?;
        let leaf = CertificateProfile::leaf(LEAF_VALIDITY).with_subject(name("issuer")?);
        self.certify(&caller, &root, &signing, leaf)
            .await
            .map_err(|e| failed(&e))?;
        let configuration = request
            .configuration(context.binding().map(EndpointBinding::identifier))
            .map_err(|(field, reason)| OnboardingError::Invalid { field, reason })?;
        let Some((id, configuration)) = configuration else {
            return Ok(None);
        };
        let existing = self
            .issuer
            .configuration(&context, &id)
            .await
            .map_err(|e| failed(&e))?;
        if existing.is_none() {
            self.issuer
                .put_configuration(&context, &id, &configuration, self.clock.unix_seconds())
                .await
                .map_err(|e| failed(&e))?;
        }
        Ok(Some(id))
    }

    /// The issuer root as the tenant's trust anchor, and the certificate of the verifier's
    /// request signing key naming its host, under the verifier's own root.
    async fn verifier_settings(
        &self,
        tenant: TenantId,
        request: &OnboardingRequest,
    ) -> Result<(), OnboardingError> {
        let failed = |err: &(dyn HasKind + 'static)| self.step_failed(Step::VerifierSettings, err);
        let context = self
            .context_of(tenant, request, ServiceType::Verifier)
            .await
            .map_err(|e| failed(&e))?;
        let caller = Caller::new(context.clone(), "edk-platform");
        let issuer_root = KeyAlias::new("issuer", "ca-root").map_err(|e| failed(&e))?;
        let root = self
            .certificates
            .certificate(&caller, &issuer_root)
            .await
            .map_err(|e| failed(&e))?;
        let chain = ChainName::new(ISSUER_TRUST_CHAIN).map_err(|e| failed(&e))?;
        let pem = root.certificate.pem().map_err(|e| failed(&e))?;
        self.certificates
            .put_chain(&caller, &chain, &pem, true)
            .await
            .map_err(|e| failed(&e))?;
        let Some(host) = context.binding().map(|binding| binding.host().to_owned()) else {
            return Ok(());
        };
        let verifier_root = KeyAlias::new("verifier", "ca-root").map_err(|e| failed(&e))?;
        let signing =
            KeyAlias::new("verifier", "request-object-signing").map_err(|e| failed(&e))?;
        let name = |what: &str| {
            DistinguishedName::parse(&format!("CN={host} {what}")).map_err(|e| failed(&e))
        };
        let ca = CertificateProfile::ca(CA_VALIDITY, Some(0)).with_subject(name("verifier CA")?);
        self.certify(&caller, &verifier_root, &verifier_root, ca)
            .await
            .map_err(|e| failed(&e))?;
        let leaf = CertificateProfile::leaf(LEAF_VALIDITY)
            .with_subject(name("verifier")?)
            .with_sans([SubjectAltName::Dns(host.clone())]);
        self.certify(&caller, &verifier_root, &signing, leaf)
            .await
            .map_err(|e| failed(&e))?;
        Ok(())
    }
}

/// The path segment below the `did` binding the issuer DID is published at.
pub const ISSUER_DID_PATH: &str = "issuer";

/// Failures injected at onboarding steps (feature `testing`): a test stops an onboarding
/// before a step runs, or after it ran and before it is recorded (as a process killed there
/// would), and then resumes it.
pub mod faults {
    use super::{OnboardingError, Step};

    /// Where in a step the failure strikes.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Point {
        /// Before the step runs: the step is recorded `failed`.
        Before,
        /// After the step ran, before it is recorded: the step stays `pending`.
        After,
    }

    #[cfg(feature = "testing")]
    static FAULTS: std::sync::Mutex<Vec<(String, Step, Point)>> = std::sync::Mutex::new(Vec::new());

    /// Makes the next onboarding of `slug` fail at `step`, at `point`, once.
    #[cfg(feature = "testing")]
    pub fn inject(slug: &str, step: Step, point: Point) {
        if let Ok(mut faults) = FAULTS.lock() {
            faults.push((slug.to_owned(), step, point));
        }
    }

    /// The injected failure for `slug` at `step` and `point`, taken once.
    #[cfg(feature = "testing")]
    pub(crate) fn check(slug: &str, step: Step, point: Point) -> Result<(), OnboardingError> {
        let Ok(mut faults) = FAULTS.lock() else {
            return Ok(());
        };
        let found = faults
            .iter()
            .position(|(s, st, p)| s == slug && *st == step && *p == point);
        match found {
            Some(index) => {
                faults.remove(index);
                Err(OnboardingError::Step {
                    step: step.as_str(),
                    reason: "an injected failure".to_owned(),
                    kind: edk_core::ErrorKind::Unavailable,
                })
            }
            None => Ok(()),
        }
    }

    /// Without the `testing` feature nothing is injected.
    #[cfg(not(feature = "testing"))]
    #[expect(
        clippy::unnecessary_wraps,
        reason = "the same signature with and without the `testing` feature"
    )]
    pub(crate) const fn check(
        _slug: &str,
        _step: Step,
        _point: Point,
    ) -> Result<(), OnboardingError> {
        Ok(())
    }
}
