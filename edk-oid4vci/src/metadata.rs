//! Credential Issuer Metadata (OpenID4VCI 1.0 §12.2): the document wallets fetch from
//! `/.well-known/openid-credential-issuer`, and its signed form.

use std::collections::BTreeMap;

use edk_core::jose::{Header, JoseError, Signer, jws};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{CredentialConfiguration, Logo};
use crate::error::ConfigError;

/// The well-known suffix of Credential Issuer Metadata.
pub const WELL_KNOWN_SUFFIX: &str = "/.well-known/openid-credential-issuer";
/// The `typ` of signed metadata (§12.2.3).
pub const SIGNED_METADATA_TYP: &str = "openidvci-issuer-metadata+jwt";

/// A display entry of the issuer (§12.2.4 `display`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerDisplay {
    /// The issuer's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The language of this entry (BCP 47).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// The issuer's logo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<Logo>,
}

/// `credential_request_encryption`: the keys wallets encrypt credential requests to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestEncryption {
    /// The issuer's public encryption keys, each with `kid` and `alg`.
    pub jwks: edk_core::jose::JwkSet,
    /// Content encryption algorithms accepted.
    pub enc_values_supported: Vec<String>,
    /// Compression algorithms accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zip_values_supported: Vec<String>,
    /// Whether every request must be encrypted.
    pub encryption_required: bool,
}

/// `credential_response_encryption`: how the issuer can encrypt responses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseEncryption {
    /// Key management algorithms supported.
    pub alg_values_supported: Vec<String>,
    /// Content encryption algorithms supported.
    pub enc_values_supported: Vec<String>,
    /// Compression algorithms supported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zip_values_supported: Vec<String>,
    /// Whether every response must be encrypted.
    pub encryption_required: bool,
}

/// `batch_credential_issuance`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchIssuance {
    /// The most proofs (and so credentials) one request may carry; at least 2.
    pub batch_size: u32,
}

/// Credential Issuer Metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IssuerMetadata {
    /// The credential issuer identifier.
    pub credential_issuer: String,
    /// The authorization servers' issuer identifiers (absent: the issuer is its own AS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_servers: Vec<String>,
    /// The credential endpoint.
    pub credential_endpoint: String,
    /// The nonce endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce_endpoint: Option<String>,
    /// The deferred credential endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred_credential_endpoint: Option<String>,
    /// The notification endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_endpoint: Option<String>,
    /// Request encryption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_request_encryption: Option<RequestEncryption>,
    /// Response encryption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_response_encryption: Option<ResponseEncryption>,
    /// Batch issuance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_credential_issuance: Option<BatchIssuance>,
    /// Display entries of the issuer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub display: Vec<IssuerDisplay>,
    /// The credentials offered, by configuration id.
    pub credential_configurations_supported: BTreeMap<String, CredentialConfiguration>,
}

impl IssuerMetadata {
    /// Checks the rules of §12.2.4 that the types do not: https endpoints on the issuer's
    /// identifier, a batch size of at least 2, request encryption keys with `kid` and `alg`,
    /// and every configuration valid.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the offending field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_identifier(&self.credential_issuer)?;
        for (field, url) in [
            ("credential_endpoint", Some(&self.credential_endpoint)),
            ("nonce_endpoint", self.nonce_endpoint.as_ref()),
            (
                "deferred_credential_endpoint",
                self.deferred_credential_endpoint.as_ref(),
            ),
            ("notification_endpoint", self.notification_endpoint.as_ref()),
        ] {
            if let Some(url) = url {
                check_endpoint(field, url)?;
            }
        }
        for (i, server) in self.authorization_servers.iter().enumerate() {
            check_endpoint(&format!("authorization_servers[{i}]"), server)?;
        }
        if let Some(batch) = self.batch_credential_issuance
            && batch.batch_size < 2
        {
            return Err(ConfigError::invalid(
                "batch_credential_issuance.batch_size",
                "must be at least 2",
            ));
        }
        if let Some(encryption) = &self.credential_request_encryption {
            if encryption.jwks.keys.is_empty() {
                return Err(ConfigError::invalid(
                    "credential_request_encryption.jwks",
                    "must hold at least one key",
                ));
            }
            if encryption
                .jwks
                .keys
                .iter()
                .any(|key| key.kid.is_none() || key.alg.is_none())
            {
                return Err(ConfigError::invalid(
                    "credential_request_encryption.jwks",
                    "every key needs a kid and an alg",
                ));
            }
            if encryption.enc_values_supported.is_empty() {
                return Err(ConfigError::invalid(
                    "credential_request_encryption.enc_values_supported",
                    "must list at least one algorithm",
                ));
            }
        }
        if self.credential_configurations_supported.is_empty() {
            return Err(ConfigError::invalid(
                "credential_configurations_supported",
                "must offer at least one credential",
            ));
        }
        for (id, config) in &self.credential_configurations_supported {
            check_configuration_id(id)?;
            config.validate().map_err(|err| match err {
                ConfigError::Invalid { field, reason } => ConfigError::invalid(
                    format!("credential_configurations_supported.{id}.{field}"),
                    reason,
                ),
            })?;
        }
        Ok(())
    }

    /// The metadata as JSON.
    #[must_use]
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The signed metadata (§12.2.3): a JWT of type `openidvci-issuer-metadata+jwt` whose
    /// claims are the metadata plus `sub` (the issuer identifier) and `iat`, signed by
    /// `signer` and naming its key by `x5c` when a chain is given.
    ///
    /// # Errors
    /// The signer's errors.
    pub async fn sign(
        &self,
        signer: &(dyn Signer + '_),
        x5c: Option<Vec<String>>,
        now: i64,
    ) -> Result<String, JoseError> {
        let mut claims = match self.to_json() {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        claims.insert(
            "sub".to_owned(),
            Value::String(self.credential_issuer.clone()),
        );
        claims.insert("iat".to_owned(), Value::from(now));
        let mut header = Header::new(signer.algorithm()).with_typ(SIGNED_METADATA_TYP);
        if let Some(chain) = x5c {
            header = header.with_x5c(chain);
        }
        let payload = serde_json::to_vec(&Value::Object(claims)).map_err(|_| JoseError::Crypto)?;
        jws::sign(header, &payload, signer).await
    }
}

/// The metadata URL of `credential_issuer`: the well-known suffix inserted between the host
/// and the path (§12.2.2), e.g. `https://example.com/tenant` →
/// `https://example.com/.well-known/openid-credential-issuer/tenant`.
///
/// # Errors
/// [`ConfigError::Invalid`] when the identifier is not an https URL without query or fragment.
pub fn well_known_url(credential_issuer: &str) -> Result<String, ConfigError> {
    let url = check_identifier(credential_issuer)?;
    let path = url.path().trim_end_matches('/');
    let mut origin = url.origin().ascii_serialization();
    origin.push_str(WELL_KNOWN_SUFFIX);
    origin.push_str(path);
    Ok(origin)
}

/// Checks a credential issuer identifier: a case-sensitive https URL with no query or
/// fragment (http is accepted for loopback hosts, for local development).
fn check_identifier(value: &str) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(value)
        .map_err(|_| ConfigError::invalid("credential_issuer", "is not a URL"))?;
    if !is_https_or_loopback(&url) {
        return Err(ConfigError::invalid(
            "credential_issuer",
            "must be an https URL",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::invalid(
            "credential_issuer",
            "must not have a query or fragment",
        ));
    }
    Ok(url)
}

fn check_endpoint(field: &str, value: &str) -> Result<(), ConfigError> {
    let url = url::Url::parse(value).map_err(|_| ConfigError::invalid(field, "is not a URL"))?;
    if !is_https_or_loopback(&url) {
        return Err(ConfigError::invalid(field, "must be an https URL"));
    }
    Ok(())
}

/// https, or http on a loopback host.
pub(crate) fn is_https_or_loopback(url: &url::Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Domain(host)) => host == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

/// Checks a configuration id: 1 to 128 characters, printable ASCII without spaces.
///
/// # Errors
/// [`ConfigError::Invalid`] when it is not.
pub fn check_configuration_id(id: &str) -> Result<(), ConfigError> {
    let ok = !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            "credential_configuration_id",
            "must be 1 to 128 printable ASCII characters without spaces",
        ))
    }
}
