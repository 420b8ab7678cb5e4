//! HMAC-signed webhooks: when a session made with a `webhook_url` settles (`verified`,
//! `failed` or `expired`), its pending delivery is recorded in the settling transaction,
//! attempted at once, and retried by [`crate::jobs::WebhookJob`] with exponential backoff
//! until a 2xx answer or the last attempt. Each attempt is claimed with a conditional update
//! and a lease, so two replicas never send the same attempt concurrently.
//!
//! The tenant's HMAC key is stored only sealed: a compact JWE (`ECDH-ES`, `A256GCM`) to its
//! KMS key `verifier.webhook-secret-sealing` (created on first use).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use edk_kms::Kms;
use edk_tenancy::TenantContext;
use url::Url;

use crate::config::VerifierSettings;
use crate::store::{Delivery, SqlStore};
use crate::verifier::{Error, alias, caller};

/// The purpose of the tenant key that seals webhook secrets
/// (`verifier.webhook-secret-sealing`).
pub const SEALING_PURPOSE: &str = "webhook-secret-sealing";

/// The fewest bytes a webhook secret has.
pub const MIN_SECRET_BYTES: usize = 32;

/// The most bytes a webhook secret has.
const MAX_SECRET_BYTES: usize = 256;

/// base64url without padding, ignoring the unused bits of the last character.
const LENIENT_BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// How many due deliveries one job run attempts per tenant.
const BATCH: i64 = 100;

/// The longest wait between two attempts, in seconds.
const MAX_BACKOFF_SECS: i64 = 3600;

/// The event id of session `session_id` settling as `status`: the same at every attempt.
#[must_use]
pub fn event_id(session_id: &str, status: &str) -> String {
    format!("{session_id}.{status}")
}

/// The `EDK-Webhook-Signature` value: `v1=` and the base64url HMAC-SHA256 with `secret`
/// over `<id>.<timestamp>.<body>`.
#[must_use]
pub fn signature(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut context = hmac::Context::with_key(&key);
    context.update(id.as_bytes());
    context.update(b".");
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    format!("v1={}", URL_SAFE_NO_PAD.encode(context.sign().as_ref()))
}

/// The wait after failed attempt number `attempts` (from 1): `base` doubled at each
/// further failure, at most an hour.
fn backoff_secs(base: i64, attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    base.saturating_mul(1_i64 << doublings)
        .min(MAX_BACKOFF_SECS)
}

/// The webhook sender over the store and the tenants' KMS.
#[derive(Clone)]
pub struct Webhooks {
    store: SqlStore,
    kms: Arc<dyn Kms>,
    client: reqwest::Client,
    allow_http: bool,
    lease_secs: i64,
    retry_base_secs: i64,
    max_attempts: i64,
}

impl fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhooks")
            .field("allow_http", &self.allow_http)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl Webhooks {
    /// The sender over `store`, sealing secrets with `kms`, with the webhook `settings`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS back end could be set up).
    pub fn new(
        store: SqlStore,
        kms: Arc<dyn Kms>,
        settings: &VerifierSettings,
    ) -> Result<Self, reqwest::Error> {
        let timeout = Duration::from_secs(settings.webhook_timeout_secs.max(1));
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            store,
            kms,
            client,
            allow_http: settings.dangerous_allow_http_webhooks,
            lease_secs: i64::try_from(timeout.as_secs())
                .unwrap_or(i64::MAX)
                .saturating_add(30),
            retry_base_secs: settings.webhook_retry_base_secs.max(0),
            max_attempts: settings.webhook_max_attempts.max(1),
        })
    }

    /// `url` if it is usable as a webhook URL: absolute `https` (or `http` when
    /// `dangerous_allow_http_webhooks` is on), with a host, no fragment and no credentials,
    /// at most 2048 characters.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `webhook_url`.
    pub fn check_url(&self, url: &str) -> Result<String, Error> {
        let invalid = || {
            Error::InvalidInput(
                "webhook_url is an absolute https URL without a fragment or credentials, at \
                 most 2048 characters"
                    .to_owned(),
            )
        };
        let parsed = Url::parse(url).map_err(|_| invalid())?;
        let scheme_ok =
            parsed.scheme() == "https" || (self.allow_http && parsed.scheme() == "http");
        if url.len() > 2048
            || !scheme_ok
            || parsed.host().is_none()
            || parsed.fragment().is_some()
            || !parsed.username().is_empty()
            || parsed.password().is_some()
        {
            return Err(invalid());
        }
        Ok(parsed.to_string())
    }

    /// Sets the tenant's HMAC key to `secret` (base64url, at least 32 bytes), or to a new
    /// random 32-byte key when `secret` is `None`, which is returned (once).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a malformed secret; [`Error::Kms`] or [`Error::Store`].
    pub async fn put_secret(
        &self,
        tenant: &TenantContext,
        secret: Option<&str>,
        now: i64,
    ) -> Result<Option<String>, Error> {
        let (text, generated) = match secret {
            Some(text) => {
                let bytes = LENIENT_BASE64URL.decode(text).ok();
                if !bytes.is_some_and(|bytes| {
                    (MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len())
                }) {
                    return Err(Error::InvalidInput(format!(
                        "secret is {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, base64url"
                    )));
                }
                (text.to_owned(), false)
            }
            None => {
                let mut bytes = [0_u8; MIN_SECRET_BYTES];
                SystemRandom::new().fill(&mut bytes).map_err(|_| {
                    Error::Conflict("no randomness for a webhook secret".to_owned())
                })?;
                (URL_SAFE_NO_PAD.encode(bytes), true)
            }
        };
        let caller = caller(tenant);
        let alias = alias(SEALING_PURPOSE)?;
        let sealed = self
            .kms
            .seal(&caller, &alias, text.as_bytes())
            .await
            .map_err(Error::Kms)?;
        self.store.put_webhook_secret(tenant, &sealed, now).await?;
        Ok(generated.then_some(text))
    }

    /// Whether the tenant has a webhook secret.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn has_secret(&self, tenant: &TenantContext) -> Result<bool, Error> {
        Ok(self.store.webhook_secret(tenant).await?.is_some())
    }

    /// The tenant's HMAC key, unsealed by its KMS key.
    async fn key(&self, tenant: &TenantContext) -> Result<Option<Vec<u8>>, Error> {
        let Some(sealed) = self.store.webhook_secret(tenant).await? else {
            return Ok(None);
        };
        let text = self
            .kms
            .decrypt(&caller(tenant), &alias(SEALING_PURPOSE)?, &sealed)
            .await
            .map_err(Error::Kms)?;
        LENIENT_BASE64URL
            .decode(text.as_slice())
            .map(Some)
            .map_err(|_| Error::Conflict("the sealed webhook secret is malformed".to_owned()))
    }

    /// Attempts delivery `event_id` once if it is due at `now` and no replica holds it;
    /// whether it was delivered.
    ///
    /// # Errors
    /// [`Error::Store`] or [`Error::Kms`]; a failed attempt is recorded, not an error.
    pub async fn deliver(
        &self,
        tenant: &TenantContext,
        event_id: &str,
        now: i64,
    ) -> Result<bool, Error> {
        let lease_until = now.saturating_add(self.lease_secs);
        let Some(delivery) = self
            .store
            .claim_delivery(tenant, event_id, now, lease_until)
            .await?
        else {
            return Ok(false);
        };
        let delivered = match self.key(tenant).await {
            Ok(Some(key)) => self.send(&key, &delivery, now).await,
            Ok(None) => false,
            Err(err) => {
                tracing::warn!(event_id, error = %err, "the webhook secret could not be read");
                false
            }
        };
        let retry_at = (!delivered)
            .then(|| now.saturating_add(backoff_secs(self.retry_base_secs, delivery.attempts)));
        self.store
            .finish_delivery(tenant, event_id, now, retry_at, self.max_attempts)
            .await?;
        Ok(delivered)
    }

    /// Attempts the tenant's deliveries due at `now`; how many were delivered.
    ///
    /// # Errors
    /// [`Error::Store`] or [`Error::Kms`].
    pub async fn deliver_due(&self, tenant: &TenantContext, now: i64) -> Result<u64, Error> {
        let mut delivered = 0;
        for event_id in self.store.due_deliveries(tenant, now, BATCH).await? {
            if self.deliver(tenant, &event_id, now).await? {
                delivered += 1;
            }
        }
        Ok(delivered)
    }

    /// One signed POST; whether it was answered with a 2xx.
    async fn send(&self, key: &[u8], delivery: &Delivery, now: i64) -> bool {
        let body = serde_json::json!({
            "session_id": delivery.session_id,
            "correlation_id": delivery.correlation_id,
            "status": delivery.status,
            "event_id": delivery.event_id,
        })
        .to_string();
        let result = self
            .client
            .post(&delivery.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("EDK-Webhook-Id", &delivery.event_id)
            .header("EDK-Webhook-Timestamp", now.to_string())
            .header(
                "EDK-Webhook-Signature",
                signature(key, &delivery.event_id, now, body.as_bytes()),
            )
            .body(body)
            .send()
            .await;
        match result {
            Ok(response) if response.status().is_success() => true,
            Ok(response) => {
                tracing::debug!(
                    event_id = delivery.event_id,
                    attempt = delivery.attempts,
                    status = response.status().as_u16(),
                    "a webhook attempt was refused"
                );
                false
            }
            Err(_) => {
                tracing::debug!(
                    event_id = delivery.event_id,
                    attempt = delivery.attempts,
                    "a webhook attempt failed"
                );
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_an_independent_hmac_sha256() {
        // Computed with Python's hmac module, as the README's check does.
        let secret: Vec<u8> = (0..32).collect();
        assert_eq!(
            signature(&secret, "evt", 1_700_000_000, br#"{"status":"verified"}"#),
            "v1=OLqTLfLx0PDI7J2FkLG7c6uqoXpq9HdK7J8aRGI--D8"
        );
        assert_ne!(
            signature(&secret, "evt", 1_700_000_001, br#"{"status":"verified"}"#),
            "v1=OLqTLfLx0PDI7J2FkLG7c6uqoXpq9HdK7J8aRGI--D8"
        );
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let waits: Vec<i64> = (1..=10).map(|attempt| backoff_secs(10, attempt)).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600]);
        assert_eq!(backoff_secs(10, 1000), 3600);
        assert_eq!(backoff_secs(0, 3), 0);
    }
}
