//! Test support: an [`Authenticator`] that approves one configured subject.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::DateTime;
use edk_core::Clock;
use edk_tenancy::TenantContext;

use crate::authn::{
    AuthenticatedSubject, Authenticator, AuthnCallback, AuthnOutcome, AuthnRequest, AuthnStart,
};
use crate::error::AuthnError;

/// Authenticates every authorization request as one pre-approved subject, at once (no
/// redirect). A real implementation of the trait for tests and demos; never for production.
#[derive(Debug)]
pub struct PreApprovedAuthenticator {
    subject: String,
    clock: Arc<dyn Clock>,
}

impl PreApprovedAuthenticator {
    /// Approves every request as `subject`, authenticated at the clock's time.
    #[must_use]
    pub fn new(subject: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self {
            subject: subject.into(),
            clock,
        }
    }
}

#[async_trait]
impl Authenticator for PreApprovedAuthenticator {
    async fn start(
        &self,
        _tenant: &TenantContext,
        _request: &AuthnRequest,
    ) -> Result<AuthnStart, AuthnError> {
        let at = DateTime::from_timestamp(self.clock.unix_seconds(), 0).unwrap_or_default();
        let mut subject = AuthenticatedSubject::new(self.subject.clone(), at);
        subject.amr = vec!["test".to_owned()];
        Ok(AuthnStart::Authenticated(subject))
    }

    async fn finish(
        &self,
        _tenant: &TenantContext,
        _callback: &AuthnCallback,
    ) -> Result<AuthnOutcome, AuthnError> {
        Err(AuthnError::InvalidCallback {
            reason: "this authenticator never redirects".to_owned(),
        })
    }
}
