//! Credential offers (OpenID4VCI 1.0 §4): the object, its grants, and the
//! `openid-credential-offer://` URIs that carry it by value or by reference.

use std::collections::BTreeSet;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ConfigError;
use crate::metadata::{check_configuration_id, is_https_or_loopback};

/// The grant type of pre-authorized codes.
pub const PRE_AUTHORIZED_GRANT: &str = "urn:ietf:params:oauth:grant-type:pre-authorized_code";
/// The URI scheme wallets register for offers.
pub const OFFER_SCHEME: &str = "openid-credential-offer://";
/// The longest `tx_code.description` (§4.1.1).
pub const MAX_TX_CODE_DESCRIPTION: usize = 300;

/// Characters kept as they are in a query value (RFC 3986 unreserved).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A credential offer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialOffer {
    /// The credential issuer identifier.
    pub credential_issuer: String,
    /// The offered configurations, by id; non-empty, no duplicates.
    pub credential_configuration_ids: Vec<String>,
    /// How the wallet obtains an access token.
    #[serde(default, skip_serializing_if = "Grants::is_empty")]
    pub grants: Grants,
}

/// The grants of an offer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    /// The authorization code grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_code: Option<AuthorizationCodeGrant>,
    /// The pre-authorized code grant.
    #[serde(
        rename = "urn:ietf:params:oauth:grant-type:pre-authorized_code",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub pre_authorized_code: Option<PreAuthorizedCodeGrant>,
}

impl Grants {
    /// Whether no grant is offered.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.authorization_code.is_none() && self.pre_authorized_code.is_none()
    }
}

/// The `authorization_code` grant of an offer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationCodeGrant {
    /// Ties the authorization request to this offer's session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_state: Option<String>,
    /// Which of the issuer's authorization servers to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_server: Option<String>,
}

/// The pre-authorized code grant of an offer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreAuthorizedCodeGrant {
    /// The code, single use and short-lived.
    #[serde(rename = "pre-authorized_code")]
    pub pre_authorized_code: String,
    /// Present when the token request needs a transaction code sent by another channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_code: Option<TxCode>,
    /// Which of the issuer's authorization servers to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_server: Option<String>,
}

/// What a wallet shows the person when it asks for the transaction code.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxCode {
    /// `numeric` (the default) or `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_mode: Option<InputMode>,
    /// The code's length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u32>,
    /// Where the person finds the code, at most 300 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The characters of a transaction code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputMode {
    /// Digits only.
    #[default]
    Numeric,
    /// Any characters.
    Text,
}

impl CredentialOffer {
    /// Checks the offer: an https issuer identifier, a non-empty list of distinct
    /// configuration ids, and a transaction code description of at most 300 characters.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the offending field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let issuer = url::Url::parse(&self.credential_issuer)
            .map_err(|_| ConfigError::invalid("credential_issuer", "is not a URL"))?;
        if !is_https_or_loopback(&issuer) {
            return Err(ConfigError::invalid(
                "credential_issuer",
                "must be an https URL",
            ));
        }
        if self.credential_configuration_ids.is_empty() {
            return Err(ConfigError::invalid(
                "credential_configuration_ids",
                "must name at least one configuration",
            ));
        }
        let mut seen = BTreeSet::new();
        for id in &self.credential_configuration_ids {
            check_configuration_id(id)?;
            if !seen.insert(id) {
                return Err(ConfigError::invalid(
                    "credential_configuration_ids",
                    format!("`{id}` is listed twice"),
                ));
            }
        }
        if let Some(grant) = &self.grants.pre_authorized_code {
            if grant.pre_authorized_code.is_empty() {
                return Err(ConfigError::invalid(
                    "grants.pre-authorized_code",
                    "must not be empty",
                ));
            }
            if let Some(tx_code) = &grant.tx_code {
                if tx_code
                    .description
                    .as_ref()
                    .is_some_and(|d| d.chars().count() > MAX_TX_CODE_DESCRIPTION)
                {
                    return Err(ConfigError::invalid(
                        "tx_code.description",
                        format!("must be at most {MAX_TX_CODE_DESCRIPTION} characters"),
                    ));
                }
                if tx_code.length == Some(0) {
                    return Err(ConfigError::invalid("tx_code.length", "must be positive"));
                }
            }
        }
        Ok(())
    }

    /// The offer by value: `openid-credential-offer://?credential_offer=<url-encoded JSON>`.
    #[must_use]
    pub fn to_uri(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        format!(
            "{OFFER_SCHEME}?credential_offer={}",
            utf8_percent_encode(&json, QUERY_VALUE)
        )
    }

    /// Parses an offer from its JSON, ignoring unknown members.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when it is not an offer or breaks a rule of [`Self::validate`].
    pub fn from_json(value: Value) -> Result<Self, ConfigError> {
        let offer: Self = serde_json::from_value(value)
            .map_err(|err| ConfigError::invalid("credential_offer", err.to_string()))?;
        offer.validate()?;
        Ok(offer)
    }
}

/// An offer by reference: `openid-credential-offer://?credential_offer_uri=<url-encoded URL>`.
#[must_use]
pub fn uri_by_reference(credential_offer_uri: &str) -> String {
    format!(
        "{OFFER_SCHEME}?credential_offer_uri={}",
        utf8_percent_encode(credential_offer_uri, QUERY_VALUE)
    )
}

/// What an offer URI carries: the offer itself, or where to fetch it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OfferReference {
    /// The offer by value.
    Value(CredentialOffer),
    /// The https URL that serves the offer.
    Uri(String),
}

/// Parses an offer URI of any scheme (`openid-credential-offer://`, `haip-vci://`, or an
/// https wallet endpoint): exactly one of `credential_offer` or `credential_offer_uri`.
///
/// # Errors
/// [`ConfigError::Invalid`] when the URI carries neither or both, or what it carries is not
/// a valid offer or https URL.
pub fn parse_offer_uri(uri: &str) -> Result<OfferReference, ConfigError> {
    let url = url::Url::parse(uri).map_err(|_| ConfigError::invalid("offer", "is not a URI"))?;
    let mut by_value = None;
    let mut by_reference = None;
    for (name, value) in url.query_pairs() {
        let slot = match name.as_ref() {
            "credential_offer" => &mut by_value,
            "credential_offer_uri" => &mut by_reference,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(ConfigError::invalid(
                name.into_owned(),
                "appears more than once",
            ));
        }
    }
    match (by_value, by_reference) {
        (Some(json), None) => {
            let value: Value = serde_json::from_str(&json)
                .map_err(|_| ConfigError::invalid("credential_offer", "is not JSON"))?;
            CredentialOffer::from_json(value).map(OfferReference::Value)
        }
        (None, Some(reference)) => {
            let target = url::Url::parse(&reference)
                .map_err(|_| ConfigError::invalid("credential_offer_uri", "is not a URL"))?;
            if !is_https_or_loopback(&target) {
                return Err(ConfigError::invalid(
                    "credential_offer_uri",
                    "must be an https URL",
                ));
            }
            Ok(OfferReference::Uri(reference))
        }
        _ => Err(ConfigError::invalid(
            "offer",
            "must carry exactly one of credential_offer and credential_offer_uri",
        )),
    }
}
