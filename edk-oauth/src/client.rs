//! Registered clients and how they authenticate.

use edk_core::ClientId;
use edk_core::jose::JwkSet;
use serde::{Deserialize, Serialize};

/// How a client authenticates at the token, PAR, introspection and revocation endpoints
/// (RFC 7591 `token_endpoint_auth_method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// `client_secret_basic`: HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// `attest_jwt_client_auth` (attestation-based client authentication): a client
    /// attestation signed by a client attester the tenant trusts, and its proof of
    /// possession, in the `OAuth-Client-Attestation` and `OAuth-Client-Attestation-PoP`
    /// headers (see [`crate::client_attestation`]).
    AttestJwtClientAuth,
    /// `none`: a public client (PKCE is mandatory for its codes).
    None,
    /// `private_key_jwt` (RFC 7523): a JWT signed by one of the client's registered keys.
    PrivateKeyJwt,
}

impl ClientAuthMethod {
    /// The registered name, e.g. `client_secret_basic`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::AttestJwtClientAuth => "attest_jwt_client_auth",
            Self::None => "none",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }

    /// Whether the method uses a shared secret.
    #[must_use]
    pub const fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }
}

/// A grant type a client may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum GrantType {
    /// `authorization_code`.
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    /// `client_credentials`.
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    /// `urn:ietf:params:oauth:grant-type:pre-authorized_code` (OID4VCI).
    #[serde(rename = "urn:ietf:params:oauth:grant-type:pre-authorized_code")]
    PreAuthorizedCode,
    /// `refresh_token`.
    #[serde(rename = "refresh_token")]
    RefreshToken,
}

impl GrantType {
    /// Every grant type, in metadata order.
    pub const ALL: [Self; 4] = [
        Self::AuthorizationCode,
        Self::PreAuthorizedCode,
        Self::RefreshToken,
        Self::ClientCredentials,
    ];

    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::ClientCredentials => "client_credentials",
            Self::PreAuthorizedCode => "urn:ietf:params:oauth:grant-type:pre-authorized_code",
            Self::RefreshToken => "refresh_token",
        }
    }

    /// The grant type named `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == name)
    }
}

/// A client's registration, as the admin API sets it (secrets are not part of it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ClientMetadata {
    /// A display name.
    #[serde(default)]
    pub client_name: String,
    /// How the client authenticates.
    pub token_endpoint_auth_method: ClientAuthMethod,
    /// The grant types the client may use.
    pub grant_types: Vec<GrantType>,
    /// Registered redirect URIs, matched exactly.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The scopes the client may ask for; an empty list allows none.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The client's public keys for `private_key_jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<JwkSet>,
    /// Authorization requests must come through PAR (RFC 9126
    /// `require_pushed_authorization_requests`).
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// Token requests must carry a DPoP proof (RFC 9449 `dpop_bound_access_tokens`).
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
    /// The resources (RFC 8707 identifiers, compared exactly with a token's `aud`) this
    /// client serves as a resource server: when it introspects an access token for one of
    /// them, the response carries the grant's end-user `claims`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims_resources: Vec<String>,
    /// The resources (RFC 8707 `resource`, absolute `https` URIs compared exactly) this
    /// client may ask to be the audience of its access tokens; a request for any other is
    /// `invalid_target`. An empty list allows none (tokens are then for the AS's issuer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Claims put, as registered, into every access token issued to this client, for
    /// resource servers that trust the registration (for example `tenant`, naming the tenant
    /// the client administers). Claims the server sets itself (`iss`, `sub`, `aud`, `exp`,
    /// `iat`, `nbf`, `jti`, `client_id`, `scope`, `cnf`, `authorization_details`,
    /// `issuer_state`, `auth_time`, `acr`, `amr`) cannot be registered; at most
    /// [`MAX_TOKEN_CLAIMS_BYTES`](crate::claims::MAX_TOKEN_CLAIMS_BYTES) of JSON. Nothing in a
    /// token request changes them.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub token_claims: serde_json::Map<String, serde_json::Value>,
    /// Audiences added to the `aud` of every access token issued to this client, after the
    /// requested resource or the issuer (for example `edk-admin`, the audience EDK servers
    /// expect of admin tokens). Each a non-empty string of at most 2048 bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_audiences: Vec<String>,
}

impl ClientMetadata {
    /// A client authenticating with `method`, allowed `grant_types`.
    #[must_use]
    pub fn new(method: ClientAuthMethod, grant_types: Vec<GrantType>) -> Self {
        Self {
            client_name: String::new(),
            token_endpoint_auth_method: method,
            grant_types,
            redirect_uris: Vec::new(),
            scopes: Vec::new(),
            jwks: None,
            require_pushed_authorization_requests: false,
            dpop_bound_access_tokens: false,
            claims_resources: Vec::new(),
            resources: Vec::new(),
            token_claims: serde_json::Map::new(),
            token_audiences: Vec::new(),
        }
    }
}

/// A registered client as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Client {
    /// The client id.
    pub client_id: ClientId,
    /// The registration.
    pub metadata: ClientMetadata,
    /// When it was registered (Unix seconds).
    pub created_at: i64,
    /// When it last changed (Unix seconds).
    pub updated_at: i64,
}
