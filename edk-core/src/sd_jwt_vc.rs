//! SD-JWT-based Verifiable Credentials (draft-ietf-oauth-sd-jwt-vc-18).
//!
//! An SD-JWT VC is an SD-JWT whose issuer-signed JWT has `typ` `dc+sd-jwt` and carries
//! `vct`, optionally `iss`, `iat`, `nbf`, `exp`, `cnf` and `status` (SD-JWT VC §2.2). Those
//! registered claims must stay in the clear ([`NEVER_DISCLOSABLE`]); issuing refuses to hide
//! them and verifying refuses a credential that hides them.
//!
//! The issuer's key is found by the caller's [`KeyResolver`] (SD-JWT VC §2.5, §3): an
//! [`X5cResolver`](crate::x5c::X5cResolver) for `x5c` chains, a [`JwksResolver`] over
//! [`IssuerMetadata`] the caller fetched from [`IssuerMetadata::well_known_url`] (its `jwks`,
//! or the JWKS the caller fetched from its `jwks_uri`), or a DID resolver that receives the
//! DID URL in `kid`.
//!
//! ```
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use edk_core::jose::{Algorithm, JwksResolver, SigningKey};
//! use edk_core::sd_jwt::{IssueOptions, SdJwt};
//! use edk_core::sd_jwt_vc::{SdJwtVcBuilder, VcVerifyOptions};
//!
//! let issuer = SigningKey::generate(Algorithm::Es256)?;
//! let holder = SigningKey::generate(Algorithm::Es256)?;
//! let credential = SdJwtVcBuilder::new("https://credentials.example/identity")
//!     .issuer("https://issuer.example")
//!     .issued_at(1_700_000_000)
//!     .holder_key(&holder.public_jwk())
//!     .claim("given_name", "Erika")
//!     .claim("birthdate", "1963-08-12")
//!     .selectively_disclose("given_name".parse()?)
//!     .selectively_disclose("birthdate".parse()?)
//!     .issue(&issuer, &IssueOptions::default())
//!     .await?;
//!
//! let resolver = JwksResolver::from_keys([&issuer.public_jwk()]).for_issuer("https://issuer.example");
//! let verified = SdJwt::parse(&credential.to_string(), &Default::default())?
//!     .verify_vc(&resolver, &VcVerifyOptions::default(), 1_700_000_100)
//!     .await?;
//! assert_eq!(verified.vct(), "https://credentials.example/identity");
//! assert_eq!(verified.claims()["given_name"], "Erika");
//! # Ok(()) }
//! ```

pub mod type_metadata;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{ErrorKind, HasKind};
use crate::jose::{Header, JwkSet, JwksResolver, KeyResolver, Signer, Validation};
use crate::jose::{JoseError, Jwk};
use crate::sd_jwt::{
    ClaimPath, IssueOptions, KeyBindingExpectation, SdJwt, SdJwtError, VerifiedSdJwt,
    VerifyOptions, issue,
};

/// The `typ` of an SD-JWT VC (SD-JWT VC §2.2.1), emitted on issuance.
pub const TYP: &str = "dc+sd-jwt";

/// The former `typ`, still accepted on verification during the transition (SD-JWT VC -18 §2.2.1).
pub const LEGACY_TYP: &str = "vc+sd-jwt";

/// Claims that must not be selectively disclosable, nor anything inside them
/// (SD-JWT VC §2.2.2.1).
pub const NEVER_DISCLOSABLE: [&str; 8] = [
    "iss",
    "nbf",
    "exp",
    "cnf",
    "vct",
    "vct#integrity",
    "aka_vcts",
    "status",
];

/// Why an SD-JWT VC operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SdJwtVcError {
    /// A registered claim is given twice: once through the builder and once among the claims.
    #[error("claim `{0}` is set twice")]
    DuplicateClaim(String),
    /// A registered claim has the wrong type (`vct`, `iss` not strings; `status` not an
    /// object; `aka_vcts` not an array of strings).
    #[error("claim `{0}` has the wrong type")]
    InvalidClaim(&'static str),
    /// The credential has no `vct` (SD-JWT VC §2.2.2.1).
    #[error("the credential has no `vct`")]
    MissingVct,
    /// A claim that must stay in the clear is, or would be, selectively disclosable
    /// (SD-JWT VC §2.2.2.1).
    #[error("claim `{0}` must not be selectively disclosable")]
    NotSelectivelyDisclosable(String),
    /// The underlying SD-JWT failed.
    #[error("SD-JWT processing failed")]
    SdJwt(#[source] SdJwtError),
    /// The credential's `vct` (and `aka_vcts`) is not one the verifier accepts.
    #[error("the credential type is not an accepted one")]
    VctMismatch,
}

impl HasKind for SdJwtVcError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::DuplicateClaim(_)
            | Self::InvalidClaim(_)
            | Self::MissingVct
            | Self::NotSelectivelyDisclosable(_) => ErrorKind::InvalidInput,
            Self::VctMismatch => ErrorKind::Forbidden,
            Self::SdJwt(err) => err.kind(),
        }
    }
}

impl From<SdJwtError> for SdJwtVcError {
    fn from(err: SdJwtError) -> Self {
        Self::SdJwt(err)
    }
}

/// Builds and issues an SD-JWT VC (SD-JWT VC §2).
#[derive(Clone, Debug)]
#[must_use]
pub struct SdJwtVcBuilder {
    vct: String,
    registered: Map<String, Value>,
    claims: Map<String, Value>,
    disclose: Vec<ClaimPath>,
    x5c: Option<Vec<String>>,
    kid: Option<String>,
}

impl SdJwtVcBuilder {
    /// A credential of type `vct`.
    pub fn new(vct: impl Into<String>) -> Self {
        Self {
            vct: vct.into(),
            registered: Map::new(),
            claims: Map::new(),
            disclose: Vec::new(),
            x5c: None,
            kid: None,
        }
    }

    /// Sets `iss`.
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.registered
            .insert("iss".to_owned(), Value::String(iss.into()));
        self
    }

    /// Sets `iat` (seconds since the epoch).
    pub fn issued_at(mut self, iat: i64) -> Self {
        self.registered.insert("iat".to_owned(), Value::from(iat));
        self
    }

    /// Sets `nbf`.
    pub fn not_before(mut self, nbf: i64) -> Self {
        self.registered.insert("nbf".to_owned(), Value::from(nbf));
        self
    }

    /// Sets `exp`.
    pub fn expires_at(mut self, exp: i64) -> Self {
        self.registered.insert("exp".to_owned(), Value::from(exp));
        self
    }

    /// Binds the credential to the holder's key: `cnf.jwk` (RFC 7800) gets its public part.
    pub fn holder_key(mut self, jwk: &Jwk) -> Self {
        let mut cnf = Map::new();
        cnf.insert(
            "jwk".to_owned(),
            serde_json::to_value(jwk.to_public()).unwrap_or(Value::Null),
        );
        self.registered.insert("cnf".to_owned(), Value::Object(cnf));
        self
    }

    /// Sets `vct#integrity`: the Subresource Integrity string of the type's Type Metadata
    /// document ([`type_metadata::Integrity::sha256_of`]).
    pub fn vct_integrity(mut self, integrity: impl Into<String>) -> Self {
        self.registered
            .insert("vct#integrity".to_owned(), Value::String(integrity.into()));
        self
    }

    /// Sets `status`, e.g. `{"status_list": {"idx": 0, "uri": "https://…"}}`.
    pub fn status(mut self, status: Value) -> Self {
        self.registered.insert("status".to_owned(), status);
        self
    }

    /// Adds a claim, in the clear unless a path selects it.
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// Adds claims, in the clear unless a path selects them.
    pub fn claims(mut self, claims: Map<String, Value>) -> Self {
        self.claims.extend(claims);
        self
    }

    /// Makes the claim at `path` selectively disclosable.
    pub fn selectively_disclose(mut self, path: ClaimPath) -> Self {
        self.disclose.push(path);
        self
    }

    /// Puts an `x5c` chain (standard base64 DER, leaf first) in the header.
    pub fn x5c(mut self, chain: Vec<String>) -> Self {
        self.x5c = Some(chain);
        self
    }

    /// Puts `kid` in the header (by default the signer's key id), e.g. a DID URL.
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Signs the credential with `signer`: header `typ` `dc+sd-jwt`.
    ///
    /// # Errors
    /// [`SdJwtVcError::NotSelectivelyDisclosable`] when a path selects a claim of
    /// [`NEVER_DISCLOSABLE`], [`SdJwtVcError::DuplicateClaim`] when a claim repeats a
    /// registered one, and the errors of [`issue`].
    pub async fn issue(
        self,
        signer: &(dyn Signer + '_),
        options: &IssueOptions,
    ) -> Result<SdJwt, SdJwtVcError> {
        if let Some(path) = self.disclose.iter().find(|path| {
            path.segments()
                .first()
                .is_some_and(|name| NEVER_DISCLOSABLE.contains(&name.as_str()))
        }) {
            return Err(SdJwtVcError::NotSelectivelyDisclosable(path.to_string()));
        }
        let mut claims = self.registered;
        claims.insert("vct".to_owned(), Value::String(self.vct));
        for (name, value) in self.claims {
            if claims.contains_key(&name) {
                return Err(SdJwtVcError::DuplicateClaim(name));
            }
            claims.insert(name, value);
        }
        let mut header = Header::new(signer.algorithm()).with_typ(TYP);
        header.kid = self.kid;
        header.x5c = self.x5c;
        Ok(issue(header, claims, &self.disclose, options, signer).await?)
    }
}

/// How an SD-JWT VC is verified: the SD-JWT checks of [`VerifyOptions`] with `typ`
/// `dc+sd-jwt` (or the legacy `vc+sd-jwt`), plus the credential's own rules.
#[derive(Clone, Debug)]
pub struct VcVerifyOptions {
    inner: VerifyOptions,
    vcts: Vec<String>,
}

impl Default for VcVerifyOptions {
    /// Both `typ` values, any `vct`, no key binding, time claims checked when present.
    fn default() -> Self {
        Self {
            inner: VerifyOptions::default().with_types([TYP, LEGACY_TYP]),
            vcts: Vec::new(),
        }
    }
}

impl VcVerifyOptions {
    /// The options requiring a Key Binding JWT for `aud` and `nonce` (SD-JWT VC §2.4).
    #[must_use]
    pub fn with_key_binding(mut self, aud: impl Into<String>, nonce: impl Into<String>) -> Self {
        self.inner = self.inner.with_key_binding(aud, nonce);
        self
    }

    /// The options with another key binding expectation (or none).
    #[must_use]
    pub fn with_key_binding_expectation(mut self, kb: Option<KeyBindingExpectation>) -> Self {
        self.inner = self.inner.with_key_binding_expectation(kb);
        self
    }

    /// The options accepting a credential whose `vct`, or one of its `aka_vcts`, is `vct`
    /// (may be given several times).
    #[must_use]
    pub fn accepting_vct(mut self, vct: impl Into<String>) -> Self {
        self.vcts.push(vct.into());
        self
    }

    /// The options checking the processed claims with `validation` (e.g. requiring `exp` or
    /// a given `iss`).
    #[must_use]
    pub fn with_validation(mut self, validation: Validation) -> Self {
        self.inner = self.inner.with_validation(validation);
        self
    }

    /// The options with other SD-JWT settings; the accepted `typ` values stay the SD-JWT VC ones.
    #[must_use]
    pub fn with_sd_jwt_options(mut self, options: VerifyOptions) -> Self {
        self.inner = options.with_types([TYP, LEGACY_TYP]);
        self
    }
}

/// A verified SD-JWT VC.
#[derive(Clone, Debug)]
pub struct VerifiedSdJwtVc {
    inner: VerifiedSdJwt,
}

impl VerifiedSdJwtVc {
    /// `vct`.
    #[must_use]
    pub fn vct(&self) -> &str {
        self.inner
            .claims()
            .get("vct")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// `iss`, when present.
    #[must_use]
    pub fn issuer(&self) -> Option<&str> {
        self.inner.claims().get("iss").and_then(Value::as_str)
    }

    /// `vct#integrity`, when present: the integrity of the type's Type Metadata, for
    /// [`type_metadata::TypeMetadataResolver::resolve`].
    #[must_use]
    pub fn vct_integrity(&self) -> Option<&str> {
        self.inner
            .claims()
            .get("vct#integrity")
            .and_then(Value::as_str)
    }

    /// `status`, when present: the caller checks it against its Status List (SD-JWT VC §2.4).
    #[must_use]
    pub fn status(&self) -> Option<&Map<String, Value>> {
        self.inner.claims().get("status").and_then(Value::as_object)
    }

    /// The processed claims.
    #[must_use]
    pub const fn claims(&self) -> &Map<String, Value> {
        self.inner.claims()
    }

    /// The verified SD-JWT underneath (header, disclosed paths, keys, KB-JWT claims).
    #[must_use]
    pub const fn sd_jwt(&self) -> &VerifiedSdJwt {
        &self.inner
    }

    /// The verified SD-JWT underneath, by value.
    #[must_use]
    pub fn into_sd_jwt(self) -> VerifiedSdJwt {
        self.inner
    }
}

impl SdJwt {
    /// Verifies this SD-JWT as an SD-JWT VC (SD-JWT VC §2.4): RFC 9901 verification with
    /// `typ` `dc+sd-jwt` or `vc+sd-jwt`, then `vct` present, the registered claims of
    /// [`NEVER_DISCLOSABLE`] not disclosed, and the claim types.
    ///
    /// # Errors
    /// [`SdJwtVcError::SdJwt`] for every SD-JWT failure (including the `typ`),
    /// [`SdJwtVcError::MissingVct`], [`SdJwtVcError::NotSelectivelyDisclosable`],
    /// [`SdJwtVcError::InvalidClaim`] and [`SdJwtVcError::VctMismatch`].
    pub async fn verify_vc(
        &self,
        resolver: &(dyn KeyResolver + '_),
        options: &VcVerifyOptions,
        now: i64,
    ) -> Result<VerifiedSdJwtVc, SdJwtVcError> {
        let inner = self.verify(resolver, &options.inner, now).await?;
        if let Some(path) = inner.disclosed().iter().find(|path| {
            path.segments()
                .first()
                .is_some_and(|name| NEVER_DISCLOSABLE.contains(&name.as_str()))
        }) {
            return Err(SdJwtVcError::NotSelectivelyDisclosable(
                path.segments().first().cloned().unwrap_or_default(),
            ));
        }
        let claims = inner.claims();
        let vct = match claims.get("vct") {
            Some(Value::String(vct)) => vct,
            Some(_) => return Err(SdJwtVcError::InvalidClaim("vct")),
            None => return Err(SdJwtVcError::MissingVct),
        };
        if claims.get("iss").is_some_and(|iss| !iss.is_string()) {
            return Err(SdJwtVcError::InvalidClaim("iss"));
        }
        if claims
            .get("status")
            .is_some_and(|status| !status.is_object())
        {
            return Err(SdJwtVcError::InvalidClaim("status"));
        }
        let aka: Vec<&str> = match claims.get("aka_vcts") {
            None => Vec::new(),
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(Value::as_str)
                .collect::<Option<_>>()
                .ok_or(SdJwtVcError::InvalidClaim("aka_vcts"))?,
            Some(_) => return Err(SdJwtVcError::InvalidClaim("aka_vcts")),
        };
        if !options.vcts.is_empty()
            && !options
                .vcts
                .iter()
                .any(|want| want == vct || aka.contains(&want.as_str()))
        {
            return Err(SdJwtVcError::VctMismatch);
        }
        Ok(VerifiedSdJwtVc { inner })
    }
}

/// JWT VC Issuer Metadata (SD-JWT VC §3.2), as the caller fetched it: the issuer and exactly
/// one of `jwks` (the keys inline) or `jwks_uri` (where the caller fetches them). Other members
/// are ignored.
///
/// ```
/// use edk_core::sd_jwt_vc::IssuerMetadata;
///
/// let metadata: IssuerMetadata = serde_json::from_str(
///     r#"{"issuer": "https://example.com", "jwks_uri": "https://example.com/jwks.json"}"#,
/// )?;
/// assert_eq!(metadata.jwks_uri.as_deref(), Some("https://example.com/jwks.json"));
/// assert!(metadata.resolver().is_none()); // fetch the JWKS, then `resolver_with`
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "RawIssuerMetadata")]
#[non_exhaustive]
pub struct IssuerMetadata {
    /// `issuer`: must equal the credential's `iss` exactly.
    pub issuer: String,
    /// `jwks`: the issuer's keys, when given inline.
    pub jwks: Option<JwkSet>,
    /// `jwks_uri`: an `https` URL of the issuer's JWKS, for the caller to fetch.
    pub jwks_uri: Option<String>,
}

#[derive(Deserialize)]
struct RawIssuerMetadata {
    issuer: String,
    #[serde(default)]
    jwks: Option<JwkSet>,
    #[serde(default)]
    jwks_uri: Option<String>,
}

impl TryFrom<RawIssuerMetadata> for IssuerMetadata {
    type Error = &'static str;

    fn try_from(raw: RawIssuerMetadata) -> Result<Self, Self::Error> {
        match (&raw.jwks, &raw.jwks_uri) {
            (Some(_), Some(_)) => return Err("`jwks` and `jwks_uri` are both present"),
            (None, None) => return Err("neither `jwks` nor `jwks_uri` is present"),
            (None, Some(uri)) => {
                let url = url::Url::parse(uri).map_err(|_| "`jwks_uri` is not a URL")?;
                if url.scheme() != "https" {
                    return Err("`jwks_uri` is not an https URL");
                }
            }
            (Some(_), None) => {}
        }
        Ok(Self {
            issuer: raw.issuer,
            jwks: raw.jwks,
            jwks_uri: raw.jwks_uri,
        })
    }
}

impl IssuerMetadata {
    /// The metadata location for issuer `iss` (SD-JWT VC §3.1): the well-known segment goes
    /// between the host and the path, after removing a trailing `/`:
    /// `https://example.com/tenant/1234` →
    /// `https://example.com/.well-known/jwt-vc-issuer/tenant/1234`.
    ///
    /// # Errors
    /// [`JoseError::Malformed`] when `iss` is not an `https` URL without query or fragment.
    pub fn well_known_url(iss: &str) -> Result<String, JoseError> {
        let malformed = |reason| JoseError::Malformed {
            what: "issuer identifier",
            reason,
        };
        let url = url::Url::parse(iss).map_err(|_| malformed("not a URL"))?;
        if url.scheme() != "https" {
            return Err(malformed("not an https URL"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(malformed("has a query or fragment"));
        }
        let host = url.host_str().ok_or_else(|| malformed("has no host"))?;
        let port = url
            .port()
            .map(|port| format!(":{port}"))
            .unwrap_or_default();
        let path = url.path().trim_end_matches('/');
        Ok(format!(
            "https://{host}{port}/.well-known/jwt-vc-issuer{path}"
        ))
    }

    /// A resolver over the metadata's inline keys that only answers for tokens whose `iss`
    /// is this metadata's `issuer`; `None` when the keys are at `jwks_uri` (see
    /// [`IssuerMetadata::resolver_with`]).
    #[must_use]
    pub fn resolver(&self) -> Option<JwksResolver> {
        self.jwks.as_ref().map(|jwks| self.resolver_with(jwks))
    }

    /// A resolver over `jwks`, the JWKS the caller fetched from `jwks_uri`, that only answers
    /// for tokens whose `iss` is this metadata's `issuer`.
    #[must_use]
    pub fn resolver_with(&self, jwks: &JwkSet) -> JwksResolver {
        JwksResolver::new(jwks).for_issuer(self.issuer.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_url_inserts_between_host_and_path() {
        assert_eq!(
            IssuerMetadata::well_known_url("https://example.com/tenant/1234").unwrap(),
            "https://example.com/.well-known/jwt-vc-issuer/tenant/1234"
        );
        assert_eq!(
            IssuerMetadata::well_known_url("https://example.com/").unwrap(),
            "https://example.com/.well-known/jwt-vc-issuer"
        );
        assert_eq!(
            IssuerMetadata::well_known_url("https://example.com:8443/a/").unwrap(),
            "https://example.com:8443/.well-known/jwt-vc-issuer/a"
        );
        assert!(IssuerMetadata::well_known_url("http://example.com").is_err());
        assert!(IssuerMetadata::well_known_url("https://example.com/?q=1").is_err());
    }

    #[test]
    fn issuer_metadata_has_jwks_or_jwks_uri() {
        let by_uri: IssuerMetadata = serde_json::from_value(serde_json::json!({
            "issuer": "https://example.com/tenant/1234",
            "jwks_uri": "https://jwt-vc-issuer.example.org/my_public_keys.jwks",
            "other": true,
        }))
        .unwrap();
        assert_eq!(
            by_uri.jwks_uri.as_deref(),
            Some("https://jwt-vc-issuer.example.org/my_public_keys.jwks")
        );
        assert!(by_uri.jwks.is_none());
        assert!(by_uri.resolver().is_none());
        for (bad, reason) in [
            (
                serde_json::json!({"issuer": "https://e", "jwks": {"keys": []}, "jwks_uri": "https://e/k"}),
                "`jwks` and `jwks_uri` are both present",
            ),
            (
                serde_json::json!({"issuer": "https://e"}),
                "neither `jwks` nor `jwks_uri` is present",
            ),
            (
                serde_json::json!({"issuer": "https://e", "jwks_uri": "http://e/k"}),
                "`jwks_uri` is not an https URL",
            ),
        ] {
            let err = serde_json::from_value::<IssuerMetadata>(bad).unwrap_err();
            assert_eq!(err.to_string(), reason);
        }
    }

    #[test]
    fn registered_claims_cannot_be_hidden_or_repeated() {
        let key = crate::jose::SigningKey::generate(crate::jose::Algorithm::Es256).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for name in ["iss", "cnf.jwk", "status", "vct", "exp"] {
            let result = runtime.block_on(
                SdJwtVcBuilder::new("urn:t")
                    .issuer("https://i")
                    .selectively_disclose(name.parse().unwrap())
                    .issue(&key, &IssueOptions::default()),
            );
            assert!(
                matches!(result, Err(SdJwtVcError::NotSelectivelyDisclosable(_))),
                "{name}"
            );
        }
        let result = runtime.block_on(
            SdJwtVcBuilder::new("urn:t")
                .claim("vct", "urn:other")
                .issue(&key, &IssueOptions::default()),
        );
        assert!(matches!(result, Err(SdJwtVcError::DuplicateClaim(_))));
    }
}
