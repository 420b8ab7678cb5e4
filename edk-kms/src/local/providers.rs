//! Run-time provider registrations and tenants' alias bindings on a [`LocalKms`].

use std::sync::Arc;

use edk_core::{ErrorChain, TenantId};
use edk_tenancy::{Event, TenantDirectory as _, TenantStatus};

use super::LocalKms;
use crate::Error;
use crate::kms::{Caller, KeyAlias};
use crate::provider::{KeyUsage, ProviderId};
use crate::registry::{
    AliasBinding, PROVIDER_CHANGED_TOPIC, ProviderFactory, ProviderRegistration, RegistrationStore,
    check_secret_refs,
};

/// The registration store and the factory of a KMS that registers providers at run time.
#[derive(Debug)]
pub(super) struct Registry {
    pub(super) store: RegistrationStore,
    pub(super) factory: Arc<dyn ProviderFactory>,
}

impl LocalKms {
    fn registry(&self) -> Result<&Registry, Error> {
        self.inner
            .registry
            .as_ref()
            .ok_or(Error::RegistrationDisabled)
    }

    fn now_secs(&self) -> i64 {
        self.inner.now().timestamp()
    }

    /// The providers registered at run time, oldest first.
    ///
    /// # Errors
    /// [`Error::RegistrationDisabled`] without a provider factory, [`Error::Store`].
    pub async fn registrations(&self) -> Result<Vec<ProviderRegistration>, Error> {
        self.registry()?.store.list().await
    }

    /// The run-time registration of `id`.
    ///
    /// # Errors
    /// [`Error::ProviderNotRegistered`], [`Error::RegistrationDisabled`], [`Error::Store`].
    pub async fn registration(&self, id: &ProviderId) -> Result<ProviderRegistration, Error> {
        self.registry()?
            .store
            .get(id)
            .await?
            .ok_or_else(|| Error::ProviderNotRegistered {
                provider: id.clone(),
            })
    }

    /// Registers a provider, or replaces the registration with its id: checks that every
    /// secret is a reference, builds the provider (resolving the references), stores the
    /// registration in the platform database and makes the provider usable here and, through
    /// the [`PROVIDER_CHANGED_TOPIC`] event, on every replica. Returns the stored
    /// registration and whether it is new. Nothing changes when it fails.
    ///
    /// # Errors
    /// [`Error::ConfiguredProvider`] for an id of the configuration file,
    /// [`Error::InvalidRegistration`] naming the field, the factory's errors,
    /// [`Error::RegistrationDisabled`], [`Error::Store`].
    pub async fn register_provider(
        &self,
        registration: ProviderRegistration,
    ) -> Result<(ProviderRegistration, bool), Error> {
        let registry = self.registry()?;
        if self.inner.providers.is_configured(&registration.id) {
            return Err(Error::ConfiguredProvider {
                provider: registration.id,
            });
        }
        check_secret_refs(&registration.config)?;
        let provider = registry.factory.build(&registration).await?;
        if provider.id() != &registration.id {
            return Err(Error::InvalidRegistration {
                field: "id".to_owned(),
                reason: "differs from the provider's id".to_owned(),
            });
        }
        let created = registry.store.get(&registration.id).await?.is_none();
        registry
            .store
            .upsert(&registration, self.now_secs())
            .await?;
        self.inner.providers.install(provider);
        tracing::info!(provider = %registration.id, kind = %registration.kind, created, "key provider registered");
        self.announce(&registration.id).await;
        Ok((self.registration(&registration.id).await?, created))
    }

    /// Removes the run-time provider `id`, here and on every replica; refused while key
    /// aliases of any tenant or alias bindings use it. A tenant that does not serve (suspended
    /// or provisioning), whose keys cannot be read, counts as using it.
    ///
    /// # Errors
    /// [`Error::ConfiguredProvider`], [`Error::ProviderNotRegistered`],
    /// [`Error::ProviderInUse`], [`Error::RegistrationDisabled`], [`Error::Store`].
    pub async fn remove_provider(&self, id: &ProviderId) -> Result<(), Error> {
        let registry = self.registry()?;
        if self.inner.providers.is_configured(id) {
            return Err(Error::ConfiguredProvider {
                provider: id.clone(),
            });
        }
        self.registration(id).await?;
        let bindings = registry.store.bound_to(id).await?;
        let keys = self.aliases_using(id).await?;
        if keys > 0 || bindings > 0 {
            return Err(Error::ProviderInUse {
                provider: id.clone(),
                keys,
                bindings: u64::try_from(bindings).unwrap_or(u64::MAX),
            });
        }
        registry.store.delete(id).await?;
        self.inner.providers.remove(id);
        tracing::info!(provider = %id, "key provider removed");
        self.announce(id).await;
        Ok(())
    }

    async fn aliases_using(&self, id: &ProviderId) -> Result<u64, Error> {
        let mut count = 0_u64;
        for tenant in self.inner.tenancy.tenants().await? {
            if tenant.status == TenantStatus::Deleted {
                continue;
            }
            let Ok(context) = self.inner.tenancy.context(tenant.id).await else {
                count += 1;
                continue;
            };
            let aliases = self.inner.store.aliases(&context).await?;
            let using = aliases.iter().filter(|alias| {
                alias.provider.as_ref() == Some(id)
                    || alias.versions.iter().any(|version| {
                        version
                            .handle
                            .as_ref()
                            .is_some_and(|handle| handle.provider() == id)
                    })
            });
            count += u64::try_from(using.count()).unwrap_or(u64::MAX);
        }
        Ok(count)
    }

    async fn announce(&self, id: &ProviderId) {
        let event = Event::Custom {
            topic: PROVIDER_CHANGED_TOPIC.to_owned(),
            payload: serde_json::json!({ "id": id.as_str() }),
        };
        if let Err(err) = self.inner.tenancy.events().publish(event).await {
            tracing::warn!(error = %ErrorChain(&err), "announcing a provider change failed");
        }
    }

    /// Builds and installs every stored registration: call it once before serving (the
    /// background task reloads on change events). One that cannot be built is logged and
    /// left out.
    pub async fn load_registered_providers(&self) {
        let Some(registry) = &self.inner.registry else {
            return;
        };
        match registry.store.list().await {
            Ok(registrations) => {
                for registration in registrations {
                    self.install(registry, &registration).await;
                }
            }
            Err(err) => {
                tracing::warn!(error = %ErrorChain(&err), "reading provider registrations failed");
            }
        }
    }

    /// Follows another replica's change of the registration `id`.
    pub(super) async fn reload_provider(&self, id: &str) {
        let Some(registry) = &self.inner.registry else {
            return;
        };
        let Ok(id) = ProviderId::new(id) else {
            return;
        };
        if self.inner.providers.is_configured(&id) {
            return;
        }
        match registry.store.get(&id).await {
            Ok(Some(registration)) => self.install(registry, &registration).await,
            Ok(None) => self.inner.providers.remove(&id),
            Err(err) => {
                tracing::warn!(provider = %id, error = %ErrorChain(&err), "reading a provider registration failed");
            }
        }
    }

    async fn install(&self, registry: &Registry, registration: &ProviderRegistration) {
        if self.inner.providers.is_configured(&registration.id) {
            return;
        }
        match registry.factory.build(registration).await {
            Ok(provider) if provider.id() == &registration.id => {
                self.inner.providers.install(provider);
            }
            Ok(_) => {
                tracing::warn!(provider = %registration.id, "a registered provider built with another id");
            }
            Err(err) => {
                tracing::warn!(provider = %registration.id, error = %ErrorChain(&err), "a registered provider cannot be built");
            }
        }
    }

    /// The caller's tenant's alias bindings.
    ///
    /// # Errors
    /// [`Error::RegistrationDisabled`], [`Error::Store`].
    pub async fn bindings(&self, caller: &Caller) -> Result<Vec<AliasBinding>, Error> {
        self.registry()?.store.bindings(caller.tenant().id()).await
    }

    /// Binds an alias of the caller's tenant to a provider, so that new keys of the alias are
    /// created there (unless a request names another provider). The provider must create
    /// keys signing with the binding's algorithm.
    ///
    /// # Errors
    /// [`Error::ReservedAlias`], [`Error::UnknownProvider`], [`Error::UnsupportedUsage`],
    /// [`Error::UnsupportedOperation`] for a provider that does not create keys,
    /// [`Error::RegistrationDisabled`], [`Error::Store`].
    pub async fn bind_alias(
        &self,
        caller: &Caller,
        binding: AliasBinding,
    ) -> Result<AliasBinding, Error> {
        let registry = self.registry()?;
        caller.check_reserved(&binding.alias)?;
        let provider = self.inner.provider(&binding.provider)?;
        let usage = KeyUsage::Sign(binding.algorithm);
        if !provider.capabilities().supports_usage(usage) {
            return Err(Error::UnsupportedUsage {
                provider: binding.provider,
                usage,
            });
        }
        if !provider.capabilities().key_creation() {
            return Err(Error::UnsupportedOperation {
                provider: binding.provider,
                operation: "key creation",
            });
        }
        registry
            .store
            .bind(caller.tenant().id(), &binding, self.now_secs())
            .await?;
        Ok(binding)
    }

    /// Removes the binding of an alias of the caller's tenant.
    ///
    /// # Errors
    /// [`Error::AliasNotFound`] when the alias has no binding, [`Error::ReservedAlias`],
    /// [`Error::RegistrationDisabled`], [`Error::Store`].
    pub async fn unbind_alias(&self, caller: &Caller, alias: &KeyAlias) -> Result<(), Error> {
        let registry = self.registry()?;
        caller.check_reserved(alias)?;
        if registry.store.unbind(caller.tenant().id(), alias).await? {
            Ok(())
        } else {
            Err(Error::AliasNotFound {
                alias: alias.clone(),
            })
        }
    }

    /// Drops a purged tenant's bindings.
    pub(super) async fn forget_tenant(&self, tenant: TenantId) {
        if let Some(registry) = &self.inner.registry
            && let Err(err) = registry.store.unbind_tenant(tenant).await
        {
            tracing::warn!(%tenant, error = %ErrorChain(&err), "dropping a purged tenant's alias bindings failed");
        }
    }
}
