//! The authorization server's settings.

use serde::Deserialize;

/// How an [`AuthorizationServer`](crate::AuthorizationServer) behaves. Every field has a
/// default; times are seconds.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AsConfig {
    /// Access token lifetime.
    pub access_token_ttl: i64,
    /// Refresh token lifetime (each rotation starts a new one).
    pub refresh_token_ttl: i64,
    /// Authorization code lifetime.
    pub code_ttl: i64,
    /// Pushed authorization request (`request_uri`) lifetime.
    pub par_ttl: i64,
    /// How long an end user has to authenticate.
    pub authn_ttl: i64,
    /// Default pre-authorized code lifetime.
    pub pre_authorized_code_ttl: i64,
    /// Wrong `tx_code` attempts after which a pre-authorized code is revoked.
    pub tx_code_max_attempts: u32,
    /// Whether every DPoP proof must carry a server nonce (RFC 9449 §8).
    pub dpop_nonce_required: bool,
    /// DPoP nonce lifetime.
    pub dpop_nonce_ttl: i64,
    /// How far a DPoP proof's or client assertion's `iat` may lie from now.
    pub proof_max_age: i64,
    /// The longest lifetime (`exp` from now) of a client assertion (authlib and others sign
    /// for an hour); its `jti` is remembered until `exp`.
    pub client_assertion_max_lifetime: i64,
    /// Whether PAR is required for every client (else per client).
    pub require_pushed_authorization_requests: bool,
    /// Whether the OpenID configuration is served and `openid` scope is understood.
    pub openid: bool,
    /// Scopes advertised in the metadata.
    pub scopes_supported: Vec<String>,
    /// Whether pre-authorized codes may be redeemed without client authentication (OID4VCI
    /// `pre-authorized_grant_anonymous_access_supported`).
    pub pre_authorized_anonymous_access: bool,
    /// How long a client's registration (metadata and secret hash) read from the database is
    /// reused for client authentication; 0 reads it on every request. A change made on this
    /// replica takes effect at once; other replicas see it within this time.
    pub client_cache_ttl: i64,
    /// How many client-secret checks (argon2id) one tenant may have running or waiting at
    /// once; one more is refused at once with `temporarily_unavailable` (503), so that a
    /// tenant flooding secret checks cannot hold up the others. The process runs at most
    /// [`HASHING_THREADS`](crate::hashing::HASHING_THREADS) at once. At least 1.
    pub secret_hashing_per_tenant: usize,
    /// Lifetime of a client attestation challenge from the challenge endpoint
    /// ([`AuthorizationServer::attestation_challenge`](crate::AuthorizationServer::attestation_challenge)).
    pub attestation_challenge_ttl: i64,
    /// Names of end-user claims of the grant (see [`crate::claims`]) copied into access
    /// tokens. Empty by default: the claims stay with the grant and reach only resource
    /// servers of the tenant that ask for them. A name the token already carries (`sub`,
    /// `aud`, `scope`, ...) is never overwritten.
    pub access_token_claims: Vec<String>,
}

impl Default for AsConfig {
    fn default() -> Self {
        Self {
            access_token_ttl: 300,
            refresh_token_ttl: 30 * 86_400,
            code_ttl: 60,
            par_ttl: 60,
            authn_ttl: 600,
            pre_authorized_code_ttl: 300,
            tx_code_max_attempts: 5,
            dpop_nonce_required: true,
            dpop_nonce_ttl: 300,
            proof_max_age: 300,
            client_assertion_max_lifetime: 3600,
            require_pushed_authorization_requests: false,
            openid: false,
            scopes_supported: Vec::new(),
            pre_authorized_anonymous_access: true,
            client_cache_ttl: 5,
            secret_hashing_per_tenant: 2,
            attestation_challenge_ttl: 300,
            access_token_claims: Vec::new(),
        }
    }
}
