//! The context every tenant-scoped operation takes.

use std::sync::Arc;

use edk_core::{TenantId, TenantSlug};

use crate::config::TenantConfig;
use crate::endpoint::{EndpointBinding, RoutedPath};
use crate::tenant::Tenant;

/// Which tenant a unit of work belongs to, the endpoint it came through and the tenant's
/// configuration.
///
/// Only the directory creates one ([`crate::TenantDirectory::resolve`],
/// [`crate::TenantDirectory::context`]), and only for a tenant that is serving; the database
/// router asks for one before it opens a tenant's schema, so no tenant query runs without it.
#[derive(Clone, Debug)]
pub struct TenantContext {
    tenant: Arc<Tenant>,
    binding: Option<Arc<EndpointBinding>>,
    config: Arc<TenantConfig>,
}

impl TenantContext {
    pub(crate) const fn new(
        tenant: Arc<Tenant>,
        binding: Option<Arc<EndpointBinding>>,
        config: Arc<TenantConfig>,
    ) -> Self {
        Self {
            tenant,
            binding,
            config,
        }
    }

    /// The tenant's id.
    #[must_use]
    pub fn id(&self) -> TenantId {
        self.tenant.id
    }

    /// The tenant's slug.
    #[must_use]
    pub fn slug(&self) -> &TenantSlug {
        &self.tenant.slug
    }

    /// The registry record as it was when the context was made.
    #[must_use]
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// The endpoint binding the request came through (or the one asked for); every URL the
    /// service advertises is built from it. `None` for work not tied to an endpoint.
    #[must_use]
    pub fn binding(&self) -> Option<&EndpointBinding> {
        self.binding.as_deref()
    }

    /// The tenant's effective configuration.
    #[must_use]
    pub fn config(&self) -> &TenantConfig {
        &self.config
    }
}

/// A request resolved to its tenant.
#[derive(Clone, Debug)]
pub struct Resolution {
    /// The tenant context, with the matched binding.
    pub context: TenantContext,
    /// What is left of the request path.
    pub path: RoutedPath,
}
