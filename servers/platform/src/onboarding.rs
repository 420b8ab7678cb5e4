//! Tenant onboarding: recorded, idempotent steps that take a tenant from its registry row to
//! a serving tenant with its keys and endpoints.
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
use edk_kms::provider::KeySpec;
use edk_kms::{Caller, KeyAlias, Kms, NewKey};
use edk_oauth::AuthorizationServer;
use edk_tenancy::config::ConfigKey;
use edk_tenancy::{
    EndpointBinding, EndpointScheme, ServiceType, Tenancy, TenantDirectory as _, WellKnownLayout,
};

/// The tenant property holding the onboarding record.
pub static ONBOARDING: ConfigKey<Option<Onboarding>> =
    ConfigKey::new("platform.onboarding", || None, |_| Ok(()));

/// The steps, in order.
pub const STEPS: [Step; 4] = [
    Step::Registry,
    Step::KmsAliases,
    Step::Bindings,
    Step::AuthorizationServer,
];

/// The keys every tenant gets at onboarding: (service, purpose, algorithm).
pub const DEFAULT_KEYS: [(&str, &str, Algorithm); 2] = [
    ("issuer", "credential-signing", Algorithm::Es256),
    ("verifier", "request-object-signing", Algorithm::Es256),
];

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
}

impl Onboarder {
    /// Onboards tenants of `tenancy` with keys in `kms`, their authorization server served by
    /// `oauth`; `reserved` (the operator realm) is never onboarded.
    #[must_use]
    pub fn new(
        tenancy: Tenancy,
        kms: Arc<dyn Kms>,
        oauth: Arc<AuthorizationServer>,
        clock: Arc<dyn Clock>,
        reserved: TenantId,
    ) -> Self {
        Self {
            tenancy,
            kms,
            oauth,
            clock,
            reserved,
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
                _ => {
                    return Err(OnboardingError::Exists {
                        slug: slug.to_string(),
                    });
                }
            },
            None => Onboarding::new(request.clone()),
        };
        let tenant = match existing {
            Some(tenant) => tenant,
            None => self
                .tenancy
                .provision(slug, request.display_name.trim())
                .await
                .map_err(|err| self.step_failed(Step::Registry, &err))?,
        };
        record.mark(Step::Registry, "done", None, self.clock.as_ref());
        self.save(tenant.id, &record).await?;
        for step in STEPS.into_iter().skip(1) {
            if record.done(step) {
                continue;
            }
            match self.run(step, tenant.id, &request).await {
                Ok(()) => record.mark(step, "done", None, self.clock.as_ref()),
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
        }
    }
}
