//! Per-tenant configuration of the upstream OpenID Provider.

use std::fmt;

use edk_tenancy::config::ConfigKey;
use secrecy::SecretString;
use serde::{Deserialize, Serialize, Serializer};

use super::error::FederationError;
use super::secret::{SealedSecret, UpstreamSecret};

/// The tenant configuration key holding the tenant's upstream OpenID Provider, as
/// `Option<UpstreamOidcConfig>` (absent: no federation). Register it in the deployment's
/// `ConfigSchema`; [`OidcFederation`](super::OidcFederation) reads it from the
/// [`TenantContext`](edk_tenancy::TenantContext).
pub static UPSTREAM_OIDC: ConfigKey<Option<UpstreamOidcConfig>> =
    ConfigKey::new("oauth.upstream_oidc", || None, |_| Ok(()));

/// How the client authenticates at the upstream token endpoint (OIDC Core §9).
#[derive(Clone, Copy, Debug, Default, Deserialize, Eq, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// HTTP Basic with the form-urlencoded client id and secret (RFC 6749 §2.3.1).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

impl ClientAuthMethod {
    /// The metadata name, e.g. `client_secret_basic`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
        }
    }
}

/// How the upstream ID token's claims become the tenant's subject.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimMapping {
    /// The claim whose value is the subject (default `sub`). With `email`, the token must
    /// also say `email_verified: true`.
    pub subject_claim: String,
    /// Claims copied from the ID token into the login result, when present
    /// (default `email`, `email_verified`, `name`).
    pub copy_claims: Vec<String>,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            subject_claim: "sub".to_owned(),
            copy_claims: vec![
                "email".to_owned(),
                "email_verified".to_owned(),
                "name".to_owned(),
            ],
        }
    }
}

/// A tenant's upstream OpenID Provider: the client registered there and how its users map
/// to the tenant's subjects. Held in tenant configuration under [`UPSTREAM_OIDC`]; checked
/// when built or deserialized, so an invalid one cannot exist.
///
/// ```
/// use edk_oauth::federation::{ClientAuthMethod, UpstreamOidcConfig};
///
/// let config: UpstreamOidcConfig = serde_json::from_value(serde_json::json!({
///     "issuer": "https://login.example.com",
///     "client_id": "edk-acme",
///     "client_secret": "s3cret",
///     "client_auth": "client_secret_post",
///     "scopes": ["openid", "email", "profile"],
///     "claims": { "subject_claim": "sub", "copy_claims": ["email", "name"] }
/// }))
/// .unwrap();
/// assert_eq!(config.client_auth(), ClientAuthMethod::ClientSecretPost);
/// // A secret in clear is never serialized back out, nor shown by Debug; a sealed one is
/// // serialized as its ciphertext (see `AuthorizationServer::seal_upstream_secret`).
/// assert!(!config.client_secret().is_sealed());
/// assert!(!serde_json::to_string(&config).unwrap().contains("s3cret"));
/// assert!(!format!("{config:?}").contains("s3cret"));
/// ```
#[derive(Clone, Deserialize)]
#[serde(try_from = "RawUpstreamOidcConfig")]
pub struct UpstreamOidcConfig {
    issuer: String,
    client_id: String,
    client_secret: UpstreamSecret,
    client_auth: ClientAuthMethod,
    scopes: Vec<String>,
    claims: ClaimMapping,
    leeway_seconds: u32,
    login_lifetime_seconds: u32,
    dangerous_allow_http: bool,
}

/// The serialized form of [`UpstreamOidcConfig`], checked by conversion.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstreamOidcConfig {
    /// The provider's issuer identifier; its metadata is read from
    /// `<issuer>/.well-known/openid-configuration`.
    issuer: String,
    /// Our client id at the provider.
    client_id: String,
    /// Our client secret at the provider, in clear (as written by hand or before sealing
    /// existed); exactly one of this and `client_secret_sealed`.
    #[serde(default)]
    client_secret: Option<SecretString>,
    /// Our client secret, sealed to the tenant's KMS key (a compact JWE).
    #[serde(default)]
    client_secret_sealed: Option<String>,
    /// `client_secret_basic` (default) or `client_secret_post`.
    #[serde(default)]
    client_auth: ClientAuthMethod,
    /// Scopes to ask for; must contain `openid` (default `openid email profile`).
    #[serde(default = "default_scopes")]
    scopes: Vec<String>,
    /// The claim mapping.
    #[serde(default)]
    claims: ClaimMapping,
    /// Allowed clock skew for `exp`/`iat`, in seconds (default 60, at most 300).
    #[serde(default = "default_leeway")]
    leeway_seconds: u32,
    /// How long a user may take at the provider, in seconds (default 600).
    #[serde(default = "default_login_lifetime")]
    login_lifetime_seconds: u32,
    /// Accept `http` URLs for the issuer and its endpoints: only for tests against a provider
    /// on loopback; logged at WARN on every login. Settable only here, in the serialized
    /// form, so that code cannot switch it on by accident.
    #[serde(default)]
    dangerous_allow_http: bool,
}

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(str::to_owned).to_vec()
}

const fn default_leeway() -> u32 {
    60
}

const fn default_login_lifetime() -> u32 {
    600
}

impl TryFrom<RawUpstreamOidcConfig> for UpstreamOidcConfig {
    type Error = FederationError;

    fn try_from(raw: RawUpstreamOidcConfig) -> Result<Self, FederationError> {
        let secret = match (raw.client_secret, raw.client_secret_sealed) {
            (Some(secret), None) => UpstreamSecret::Plain(secret),
            (None, Some(sealed)) => UpstreamSecret::Sealed(SealedSecret::parse(&sealed)?),
            _ => {
                return Err(config_error(
                    "client_secret",
                    "give exactly one of `client_secret` and `client_secret_sealed`",
                ));
            }
        };
        Self::build(
            &raw.issuer,
            &raw.client_id,
            secret,
            raw.dangerous_allow_http,
        )?
        .with_client_auth(raw.client_auth)
        .with_scopes(raw.scopes)?
        .with_claim_mapping(raw.claims)?
        .with_leeway_seconds(raw.leeway_seconds)?
        .with_login_lifetime_seconds(raw.login_lifetime_seconds)
    }
}

impl UpstreamOidcConfig {
    /// A configuration for the provider `issuer` with our client `client_id`/`client_secret`;
    /// `client_secret_basic`, scopes `openid email profile`, subject from `sub`, 60 s leeway,
    /// 10 minutes to log in. The redirect URI registered at the provider must be the AS's
    /// callback endpoint, [`AuthnRequest::callback_url`](crate::AuthnRequest::callback_url).
    ///
    /// # Errors
    /// [`FederationError::Config`] when the issuer is not an absolute `https` URL without
    /// query or fragment, or the client id is empty.
    pub fn new(
        issuer: &str,
        client_id: &str,
        client_secret: SecretString,
    ) -> Result<Self, FederationError> {
        Self::build(
            issuer,
            client_id,
            UpstreamSecret::Plain(client_secret),
            false,
        )
    }

    fn build(
        issuer: &str,
        client_id: &str,
        client_secret: UpstreamSecret,
        dangerous_allow_http: bool,
    ) -> Result<Self, FederationError> {
        if parse_url("issuer", issuer)?.query().is_some() {
            return Err(config_error("issuer", "must not have a query"));
        }
        if client_id.is_empty() || client_id.len() > 255 {
            return Err(config_error("client_id", "must be 1 to 255 characters"));
        }
        let config = Self {
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            client_secret,
            client_auth: ClientAuthMethod::default(),
            scopes: default_scopes(),
            claims: ClaimMapping::default(),
            leeway_seconds: default_leeway(),
            login_lifetime_seconds: default_login_lifetime(),
            dangerous_allow_http,
        };
        config.check_schemes()?;
        Ok(config)
    }

    /// The configuration with another client authentication method.
    #[must_use]
    pub const fn with_client_auth(mut self, method: ClientAuthMethod) -> Self {
        self.client_auth = method;
        self
    }

    /// The configuration asking for `scopes`.
    ///
    /// # Errors
    /// [`FederationError::Config`] when `openid` is missing or a scope is not a scope token.
    pub fn with_scopes(mut self, scopes: Vec<String>) -> Result<Self, FederationError> {
        if !scopes.iter().any(|scope| scope == "openid") {
            return Err(config_error("scopes", "must contain `openid`"));
        }
        let token = |scope: &String| {
            !scope.is_empty()
                && scope
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
        };
        if !scopes.iter().all(token) {
            return Err(config_error(
                "scopes",
                "a scope is not a scope token (RFC 6749 §3.3)",
            ));
        }
        self.scopes = scopes;
        Ok(self)
    }

    /// The configuration with another claim mapping.
    ///
    /// # Errors
    /// [`FederationError::Config`] when the subject claim is empty.
    pub fn with_claim_mapping(mut self, claims: ClaimMapping) -> Result<Self, FederationError> {
        if claims.subject_claim.is_empty() {
            return Err(config_error("claims.subject_claim", "must not be empty"));
        }
        self.claims = claims;
        Ok(self)
    }

    /// The configuration with another clock-skew allowance.
    ///
    /// # Errors
    /// [`FederationError::Config`] above 300 seconds.
    pub fn with_leeway_seconds(mut self, seconds: u32) -> Result<Self, FederationError> {
        if seconds > 300 {
            return Err(config_error("leeway_seconds", "must be at most 300"));
        }
        self.leeway_seconds = seconds;
        Ok(self)
    }

    /// The configuration with another time limit for the user at the provider.
    ///
    /// # Errors
    /// [`FederationError::Config`] outside 30..=3600 seconds.
    pub fn with_login_lifetime_seconds(mut self, seconds: u32) -> Result<Self, FederationError> {
        if !(30..=3600).contains(&seconds) {
            return Err(config_error("login_lifetime_seconds", "must be 30 to 3600"));
        }
        self.login_lifetime_seconds = seconds;
        Ok(self)
    }

    /// The provider's issuer identifier, exactly as configured: ID tokens and the provider's
    /// metadata must name it byte for byte (OpenID Connect Discovery §4.3).
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Our client id at the provider.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Our client secret at the provider: in clear or sealed to the tenant's KMS key.
    #[must_use]
    pub const fn client_secret(&self) -> &UpstreamSecret {
        &self.client_secret
    }

    /// The configuration with another client secret.
    #[must_use]
    pub fn with_secret(mut self, secret: UpstreamSecret) -> Self {
        self.client_secret = secret;
        self
    }

    /// The client authentication method.
    #[must_use]
    pub const fn client_auth(&self) -> ClientAuthMethod {
        self.client_auth
    }

    /// The scopes asked for.
    #[must_use]
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The claim mapping.
    #[must_use]
    pub const fn claims(&self) -> &ClaimMapping {
        &self.claims
    }

    /// The clock-skew allowance in seconds.
    #[must_use]
    pub const fn leeway_seconds(&self) -> u32 {
        self.leeway_seconds
    }

    /// How long a login may take, in seconds.
    #[must_use]
    pub const fn login_lifetime_seconds(&self) -> u32 {
        self.login_lifetime_seconds
    }

    /// Whether `http` URLs are accepted.
    #[must_use]
    pub const fn allows_http(&self) -> bool {
        self.dangerous_allow_http
    }

    /// Checks that `url` (from configuration or provider metadata) has an allowed scheme.
    pub(crate) fn url_allowed(&self, url: &url::Url) -> bool {
        url.scheme() == "https" || (self.dangerous_allow_http && url.scheme() == "http")
    }

    fn check_schemes(&self) -> Result<(), FederationError> {
        if !self.url_allowed(&parse_url("issuer", &self.issuer)?) {
            return Err(config_error("issuer", "must be an https URL"));
        }
        Ok(())
    }
}

impl fmt::Debug for UpstreamOidcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamOidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("client_auth", &self.client_auth)
            .field("scopes", &self.scopes)
            .field("claims", &self.claims)
            .field("leeway_seconds", &self.leeway_seconds)
            .field("login_lifetime_seconds", &self.login_lifetime_seconds)
            .field("dangerous_allow_http", &self.dangerous_allow_http)
            .finish()
    }
}

/// The serialized form: every setting, the secret only as its sealed ciphertext.
#[derive(Serialize)]
struct SerializedUpstreamOidcConfig<'a> {
    issuer: &'a str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret_sealed: Option<&'a str>,
    client_auth: ClientAuthMethod,
    scopes: &'a [String],
    claims: &'a ClaimMapping,
    leeway_seconds: u32,
    login_lifetime_seconds: u32,
    dangerous_allow_http: bool,
}

impl Serialize for UpstreamOidcConfig {
    /// A secret in clear is left out; a sealed one is written as `client_secret_sealed`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SerializedUpstreamOidcConfig {
            issuer: &self.issuer,
            client_id: &self.client_id,
            client_secret_sealed: match &self.client_secret {
                UpstreamSecret::Sealed(sealed) => Some(sealed.as_str()),
                UpstreamSecret::Plain(_) => None,
            },
            client_auth: self.client_auth,
            scopes: &self.scopes,
            claims: &self.claims,
            leeway_seconds: self.leeway_seconds,
            login_lifetime_seconds: self.login_lifetime_seconds,
            dangerous_allow_http: self.dangerous_allow_http,
        }
        .serialize(serializer)
    }
}

fn parse_url(field: &'static str, value: &str) -> Result<url::Url, FederationError> {
    let url = url::Url::parse(value).map_err(|_| config_error(field, "not an absolute URL"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err(config_error(field, "must be an https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(config_error(
            field,
            "must not have credentials or a fragment",
        ));
    }
    Ok(url)
}

const fn config_error(field: &'static str, reason: &'static str) -> FederationError {
    FederationError::Config { field, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> SecretString {
        SecretString::from("s3cret")
    }

    #[test]
    fn http_issuer_needs_the_dangerous_switch() {
        let err = UpstreamOidcConfig::new("http://127.0.0.1:1", "rp", secret()).unwrap_err();
        assert!(matches!(
            err,
            FederationError::Config {
                field: "issuer",
                ..
            }
        ));
        let json = serde_json::json!({
            "issuer": "http://127.0.0.1:1", "client_id": "rp", "client_secret": "x",
            "dangerous_allow_http": true
        });
        let config: UpstreamOidcConfig = serde_json::from_value(json).unwrap();
        assert!(config.allows_http());
        assert_eq!(config.issuer(), "http://127.0.0.1:1");
    }

    #[test]
    fn scopes_must_contain_openid() {
        let config = UpstreamOidcConfig::new("https://op.test", "rp", secret()).unwrap();
        let err = config.with_scopes(vec!["email".to_owned()]).unwrap_err();
        assert!(matches!(
            err,
            FederationError::Config {
                field: "scopes",
                ..
            }
        ));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let json = serde_json::json!({
            "issuer": "https://op.test", "client_id": "rp", "client_secret": "x",
            "client_secrt": "typo"
        });
        let err = serde_json::from_value::<UpstreamOidcConfig>(json).unwrap_err();
        assert!(err.to_string().contains("client_secrt"), "{err}");
    }

    #[test]
    fn the_secret_is_neither_serialized_nor_debug_printed() {
        let config = UpstreamOidcConfig::new("https://op.test", "rp", secret()).unwrap();
        assert!(!serde_json::to_string(&config).unwrap().contains("s3cret"));
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn a_sealed_secret_round_trips_and_exactly_one_secret_is_given() {
        let json = serde_json::json!({
            "issuer": "https://op.test", "client_id": "rp",
            "client_secret_sealed": "eyJh.."
        });
        assert!(serde_json::from_value::<UpstreamOidcConfig>(json).is_err());
        let json = serde_json::json!({
            "issuer": "https://op.test", "client_id": "rp",
            "client_secret_sealed": "eyJhbGciOiJFQ0RILUVTIn0..aXY.Y3Q.dGFn"
        });
        let config: UpstreamOidcConfig = serde_json::from_value(json.clone()).unwrap();
        assert!(config.client_secret().is_sealed());
        let written = serde_json::to_value(&config).unwrap();
        assert_eq!(
            written["client_secret_sealed"],
            json["client_secret_sealed"]
        );
        assert!(!format!("{config:?}").contains("aXY"));
        for both_or_none in [
            serde_json::json!({ "issuer": "https://op.test", "client_id": "rp" }),
            serde_json::json!({
                "issuer": "https://op.test", "client_id": "rp", "client_secret": "x",
                "client_secret_sealed": "eyJhbGciOiJFQ0RILUVTIn0..aXY.Y3Q.dGFn"
            }),
        ] {
            let err = serde_json::from_value::<UpstreamOidcConfig>(both_or_none).unwrap_err();
            assert!(err.to_string().contains("exactly one"), "{err}");
        }
    }
}
