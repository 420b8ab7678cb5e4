//! What a code, pre-authorized code or refresh token stands for.

use edk_core::ClientId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::authn::AuthenticatedSubject;
use crate::error::{Error, OAuthErrorCode};

/// The authorization a code, pre-authorized code or refresh token carries, stored with it as
/// JSON and copied into the tokens it yields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Grant {
    /// The end user (or, for `client_credentials`, the client itself).
    pub subject: String,
    /// The client the grant was issued to; `None` for a pre-authorized code, which any
    /// (anonymous) wallet may redeem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientId>,
    /// Granted scopes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Granted `authorization_details` (RFC 9396), each of type `openid_credential`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<Value>,
    /// When the end user authenticated (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The authentication context class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// The authentication methods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// Claims about the end user to hand on (for the issuer).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub claims: serde_json::Map<String, Value>,
    /// The audience of access tokens (RFC 8707 `resource`); `None` uses the AS default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The DPoP key thumbprint the grant is bound to (`dpop_jkt`, or the key of the first DPoP
    /// proof for a public client's refresh token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
    /// The RFC 7638 thumbprint of the client instance key (`cnf.jwk` of the client
    /// attestation) the grant's refresh tokens are bound to, when the client authenticated
    /// with a client attestation (attestation-based client authentication §10.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_instance_jkt: Option<String>,
    /// The `issuer_state` of the authorization request (OID4VCI 1.0 §5.1.3), which tied it
    /// to a credential offer; access tokens carry it as the claim `issuer_state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_state: Option<String>,
}

impl Grant {
    /// A grant for `subject` with nothing else.
    #[must_use]
    pub fn new(subject: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            client_id: None,
            scopes: Vec::new(),
            authorization_details: None,
            auth_time: None,
            acr: None,
            amr: Vec::new(),
            claims: serde_json::Map::new(),
            resource: None,
            dpop_jkt: None,
            client_instance_jkt: None,
            issuer_state: None,
        }
    }

    /// A grant for an authenticated end user.
    #[must_use]
    pub fn for_subject(subject: &AuthenticatedSubject) -> Self {
        let mut grant = Self::new(subject.subject.clone());
        grant.auth_time = Some(subject.auth_time.timestamp());
        grant.acr.clone_from(&subject.acr);
        grant.amr.clone_from(&subject.amr);
        grant.claims.clone_from(&subject.claims);
        grant
    }
}

/// A pending authorization code: the grant plus what the token request must match.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CodeGrant {
    /// The grant.
    pub grant: Grant,
    /// The `redirect_uri` of the authorization request, compared exactly at the token endpoint.
    pub redirect_uri: String,
    /// The PKCE S256 `code_challenge`.
    pub code_challenge: String,
    /// The OIDC `nonce`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// The granted `authorization_details` narrowed to those a token request asks for (RFC 9396
/// §6.1, OID4VCI 1.0 §6.1): every granted entry of each requested `type` and
/// `credential_configuration_id`, as granted (with its `credential_identifiers`); a requested
/// `locations` must be a subset of the granted entry's and then replaces it. Nothing requested
/// keeps the grant as it is.
///
/// # Errors
/// `invalid_authorization_details` when a requested entry was not granted.
pub(crate) fn narrow_details(
    requested: Option<&Value>,
    granted: Option<&Value>,
) -> Result<Option<Value>, Error> {
    let Some(requested) = requested else {
        return Ok(granted.cloned());
    };
    let granted: &[Value] = granted.and_then(Value::as_array).map_or(&[], Vec::as_slice);
    let mut narrowed: Vec<Value> = Vec::new();
    for entry in requested.as_array().map_or(&[][..], Vec::as_slice) {
        let configuration = entry.get("credential_configuration_id");
        let matching: Vec<&Value> = granted
            .iter()
            .filter(|g| {
                g.get("type") == entry.get("type")
                    && g.get("credential_configuration_id") == configuration
            })
            .collect();
        if matching.is_empty() {
            return Err(not_granted());
        }
        for granted_entry in matching {
            let mut out = granted_entry.clone();
            if let Some(locations) = entry.get("locations") {
                let allowed = granted_entry.get("locations").and_then(Value::as_array);
                let within = locations.as_array().is_some_and(|asked| {
                    asked
                        .iter()
                        .all(|l| allowed.is_some_and(|allowed| allowed.contains(l)))
                });
                if !within {
                    return Err(not_granted());
                }
                if let Some(object) = out.as_object_mut() {
                    object.insert("locations".to_owned(), locations.clone());
                }
            }
            if !narrowed.contains(&out) {
                narrowed.push(out);
            }
        }
    }
    Ok(Some(Value::Array(narrowed)))
}

/// The error for a token request whose `authorization_details` ask for more than its grant
/// holds.
pub(crate) fn not_granted() -> Error {
    Error::oauth(
        OAuthErrorCode::InvalidAuthorizationDetails,
        "`authorization_details` asks for credentials or locations that were not granted",
    )
}
