//! What the handlers share: the provider registry, the [`Kms`] and the tenant directory.

use std::fmt;
use std::sync::Arc;

use edk_kms::audit::AuditTrail;
use edk_kms::cert::Certificates;
use edk_kms::provider::{KeyRequirement, select_provider};
use edk_kms::registry::ProviderSet;
use edk_kms::{Caller, KeyProvider, Kms, LocalKms, ProviderId};
use edk_server::{AdminPrincipal, ApiError, problem_for};
use edk_tenancy::TenantDirectory;

use crate::Error;
use crate::resolver::ResolverRegistry;

/// The key providers: those of the configuration file (checked once when built: at least
/// one, no duplicate ids; the first is the default for `/keys` without a provider), then
/// those registered at run time, followed live.
#[derive(Clone, Debug)]
pub struct ProviderRegistry {
    providers: ProviderSet,
}

impl ProviderRegistry {
    /// A fixed registry of `providers`, in order of preference.
    ///
    /// # Errors
    /// [`Error::NoProviders`] for an empty list, [`Error::DuplicateProvider`] for a repeated id.
    pub fn new(providers: Vec<Arc<dyn KeyProvider>>) -> Result<Self, Error> {
        Self::live(ProviderSet::new(providers))
    }

    /// A registry that follows `providers` (a [`LocalKms`]'s live set).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn live(providers: ProviderSet) -> Result<Self, Error> {
        let all = providers.snapshot();
        if all.is_empty() {
            return Err(Error::NoProviders);
        }
        for (index, provider) in all.iter().enumerate() {
            if all[..index]
                .iter()
                .any(|earlier| earlier.id() == provider.id())
            {
                return Err(Error::DuplicateProvider {
                    provider: provider.id().clone(),
                });
            }
        }
        Ok(Self { providers })
    }

    /// Every provider now, in order of preference.
    #[must_use]
    pub fn all(&self) -> Arc<Vec<Arc<dyn KeyProvider>>> {
        self.providers.snapshot()
    }

    /// The provider with `id`.
    ///
    /// # Errors
    /// [`Error::UnknownProvider`].
    pub fn get(&self, id: &ProviderId) -> Result<Arc<dyn KeyProvider>, Error> {
        self.providers
            .get(id)
            .ok_or_else(|| Error::UnknownProvider {
                provider: id.clone(),
            })
    }

    /// The providers that meet `requirement`, in order of preference.
    #[must_use]
    pub fn matching(&self, requirement: &KeyRequirement) -> Vec<Arc<dyn KeyProvider>> {
        self.all()
            .iter()
            .filter(|provider| provider.capabilities().supports(requirement))
            .cloned()
            .collect()
    }

    /// The best provider for `requirement` ([`select_provider`]).
    ///
    /// # Errors
    /// [`Error::NoMatchingProvider`].
    pub fn best(&self, requirement: &KeyRequirement) -> Result<Arc<dyn KeyProvider>, Error> {
        select_provider(&self.all(), requirement)
            .cloned()
            .ok_or(Error::NoMatchingProvider)
    }
}

/// The state behind every KMS route.
#[derive(Clone)]
pub struct KmsState {
    providers: ProviderRegistry,
    kms: Arc<dyn Kms>,
    directory: Arc<dyn TenantDirectory>,
    resolvers: ResolverRegistry,
    certificates: Certificates,
    audit: Option<Arc<dyn AuditTrail>>,
    local: Option<LocalKms>,
}

impl KmsState {
    /// The state over `providers` (those `kms` uses), `kms` and the tenant `directory` that
    /// turns a token's tenant into a [`edk_tenancy::TenantContext`], with `certificates`
    /// over the same KMS and the [standard resolvers](ResolverRegistry::standard).
    #[must_use]
    pub fn new(
        providers: ProviderRegistry,
        kms: Arc<dyn Kms>,
        directory: Arc<dyn TenantDirectory>,
        certificates: Certificates,
    ) -> Self {
        let resolvers = ResolverRegistry::standard(Arc::clone(&kms));
        Self {
            providers,
            kms,
            directory,
            resolvers,
            certificates,
            audit: None,
            local: None,
        }
    }

    /// Serves provider registration and alias bindings through `kms` (the same KMS, in
    /// process).
    #[must_use]
    pub fn with_local(mut self, kms: LocalKms) -> Self {
        self.local = Some(kms);
        self
    }

    /// The in-process KMS, when the server has one.
    #[must_use]
    pub const fn local(&self) -> Option<&LocalKms> {
        self.local.as_ref()
    }

    /// Serves `/audit` from `audit` (the KMS's own log, e.g. the [`edk_kms::LocalKms`]).
    #[must_use]
    pub fn with_audit(mut self, audit: Arc<dyn AuditTrail>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// The audit trail, when the server has one.
    #[must_use]
    pub const fn audit(&self) -> Option<&Arc<dyn AuditTrail>> {
        self.audit.as_ref()
    }

    /// The certificate service.
    #[must_use]
    pub const fn certificates(&self) -> &Certificates {
        &self.certificates
    }

    /// Replaces the resolvers (to add a DID resolver, say).
    #[must_use]
    pub fn with_resolvers(mut self, resolvers: ResolverRegistry) -> Self {
        self.resolvers = resolvers;
        self
    }

    /// The public key resolvers.
    #[must_use]
    pub const fn resolvers(&self) -> &ResolverRegistry {
        &self.resolvers
    }

    /// The providers.
    #[must_use]
    pub const fn providers(&self) -> &ProviderRegistry {
        &self.providers
    }

    /// The KMS.
    #[must_use]
    pub fn kms(&self) -> &dyn Kms {
        self.kms.as_ref()
    }

    /// The caller a verified token names: its tenant (from the token only) and its subject
    /// (or issuer) as the audit actor.
    ///
    /// # Errors
    /// A 404 problem when the token's tenant does not exist or does not serve.
    pub(crate) async fn caller(&self, principal: &AdminPrincipal) -> Result<Caller, ApiError> {
        let tenant = self
            .directory
            .context(principal.tenant)
            .await
            .map_err(|err| problem_for(&err))?;
        let actor = principal
            .subject
            .clone()
            .unwrap_or_else(|| principal.issuer.clone());
        Ok(Caller::new(tenant, actor))
    }
}

impl fmt::Debug for KmsState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsState")
            .field("providers", &self.providers)
            .field("kms", &self.kms)
            .finish_non_exhaustive()
    }
}
