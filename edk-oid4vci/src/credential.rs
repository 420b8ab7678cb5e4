//! Building and signing credentials of each format: SD-JWT VCs (`dc+sd-jwt`, Appendix A.3),
//! W3C VCs as JWTs (`jwt_vc_json`, Appendix A.1.1) and ISO mdocs (`mso_mdoc`, Appendix A.2).

use edk_core::jose::{Header, Signer, jws};
use edk_core::sd_jwt::{ClaimPath, IssueOptions};
use edk_core::sd_jwt_vc::{NEVER_DISCLOSABLE, SdJwtVcBuilder};
use serde_json::{Map, Value, json};

use crate::config::{CredentialConfiguration, FormatProfile, IssuanceSettings, KeyIdentification};
use crate::error::IssueError;
use crate::proof::ProvenKey;

/// The `@context` of W3C VC Data Model 1.1 credentials.
pub const VC_CONTEXT_V1: &str = "https://www.w3.org/2018/credentials/v1";

/// Everything one credential is made of.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CredentialInput<'a> {
    /// The configuration the credential follows.
    pub configuration: &'a CredentialConfiguration,
    /// How the issuer signs it.
    pub settings: &'a IssuanceSettings,
    /// The credential issuer identifier (`iss` unless the key is named by a DID).
    pub credential_issuer: &'a str,
    /// The subject's claims.
    pub claims: &'a Map<String, Value>,
    /// The holder's key, when the credential is bound to one.
    pub holder: Option<&'a ProvenKey>,
    /// The `status` claim (a status list reference), if any: a top-level claim of the
    /// JWT in every format (Status List §6.1).
    pub status: Option<Value>,
    /// The certificate chain of the signing key (DER, leaf first): the `x5c` of
    /// [`KeyIdentification::X5c`], the `x5chain` of an mdoc (its document signer).
    pub certificate_chain: Option<Vec<Vec<u8>>>,
    /// The issuance time, seconds since the epoch.
    pub now: i64,
}

impl<'a> CredentialInput<'a> {
    /// The input for a credential of `configuration` with `claims`, issued by
    /// `credential_issuer` at `now`, unbound and without status.
    #[must_use]
    pub const fn new(
        configuration: &'a CredentialConfiguration,
        settings: &'a IssuanceSettings,
        credential_issuer: &'a str,
        claims: &'a Map<String, Value>,
        now: i64,
    ) -> Self {
        Self {
            configuration,
            settings,
            credential_issuer,
            claims,
            holder: None,
            status: None,
            certificate_chain: None,
            now,
        }
    }

    /// The input bound to `holder`.
    #[must_use]
    pub const fn bound_to(mut self, holder: &'a ProvenKey) -> Self {
        self.holder = Some(holder);
        self
    }

    /// The input with a `status` claim.
    #[must_use]
    pub fn with_status(mut self, status: Value) -> Self {
        self.status = Some(status);
        self
    }

    /// The input with the signing key's certificate chain (DER, leaf first).
    #[must_use]
    pub fn with_certificate_chain(mut self, chain: Vec<Vec<u8>>) -> Self {
        self.certificate_chain = Some(chain);
        self
    }

    /// The chain as an `x5c` header value.
    fn x5c(&self) -> Result<Vec<String>, IssueError> {
        use base64::Engine as _;
        let chain = self.certificate_chain.as_ref().ok_or_else(|| {
            IssueError::Claims("the signing key has no certificate chain".to_owned())
        })?;
        Ok(chain
            .iter()
            .map(|der| base64::engine::general_purpose::STANDARD.encode(der))
            .collect())
    }

    /// `iss`: the DID when the key is a DID's verification method, else the issuer id.
    fn issuer(&self) -> String {
        match &self.settings.key_identification {
            KeyIdentification::Did { kid } => kid
                .split_once('#')
                .map_or_else(|| kid.clone(), |(did, _)| did.to_owned()),
            _ => self.credential_issuer.to_owned(),
        }
    }

    pub(crate) fn expiry(&self) -> Option<i64> {
        self.settings.lifetime_secs.map(|secs| {
            self.now
                .saturating_add(i64::try_from(secs).unwrap_or(i64::MAX))
        })
    }
}

/// Issues one credential of the configuration's format, signed by `signer`: the compact
/// SD-JWT for SD-JWT VCs, the compact JWT for `jwt_vc_json`.
///
/// # Errors
/// [`IssueError::Claims`] when a claim clashes with a registered claim or a disclosable path
/// names no claim; [`IssueError::SdJwtVc`] or [`IssueError::Sign`] when signing fails;
/// [`IssueError::Claims`] when the configuration requires key binding and no key is given.
pub async fn issue_credential(
    input: &CredentialInput<'_>,
    signer: &(dyn Signer + '_),
) -> Result<String, IssueError> {
    if input.configuration.requires_key_binding() && input.holder.is_none() {
        return Err(IssueError::Claims(
            "the configuration binds credentials to a holder key and none was proven".to_owned(),
        ));
    }
    match &input.configuration.profile {
        FormatProfile::DcSdJwt { vct } | FormatProfile::VcSdJwt { vct } => {
            issue_sd_jwt_vc(input, vct, signer).await
        }
        FormatProfile::JwtVcJson {
            credential_definition,
        } => issue_jwt_vc_json(input, &credential_definition.types, signer).await,
        FormatProfile::MsoMdoc { doctype } => issue_mdoc(input, doctype, signer).await,
    }
}

/// The lifetime of an mdoc whose settings give none: the MSO's `validUntil` is required.
pub const DEFAULT_MDOC_LIFETIME_SECS: u64 = 365 * 86_400;

/// An mdoc: the claims are a JSON object of name spaces, each an object of data elements;
/// the holder's proven key becomes the MSO's device key; the result is the base64url
/// `IssuerSigned` (Appendix A.2.4).
async fn issue_mdoc(
    input: &CredentialInput<'_>,
    doctype: &str,
    signer: &(dyn Signer + '_),
) -> Result<String, IssueError> {
    use std::time::{Duration, UNIX_EPOCH};

    let holder = input.holder.ok_or_else(|| {
        IssueError::Claims("an mdoc is bound to a device key and none was proven".to_owned())
    })?;
    let chain = input.certificate_chain.as_deref().ok_or_else(|| {
        IssueError::Claims("the signing key has no document signer certificate".to_owned())
    })?;
    let at = |secs: i64| UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    let signed = at(input.now);
    let lifetime = input
        .settings
        .lifetime_secs
        .unwrap_or(DEFAULT_MDOC_LIFETIME_SECS);
    let validity = edk_mdoc::ValidityInfo {
        signed,
        valid_from: signed,
        valid_until: signed + Duration::from_secs(lifetime),
        expected_update: None,
    };
    let mut builder =
        edk_mdoc::IssuerSignedBuilder::new(doctype, &holder.jwk, validity).map_err(|err| {
            IssueError::Claims(format!(
                "the holder key cannot be an mdoc device key: {err}"
            ))
        })?;
    if input.claims.is_empty() {
        return Err(IssueError::Claims(
            "an mdoc needs at least one name space".to_owned(),
        ));
    }
    for (namespace, elements) in input.claims {
        let Value::Object(elements) = elements else {
            return Err(IssueError::Claims(format!(
                "mdoc claims are objects of name spaces; `{namespace}` is not an object"
            )));
        };
        builder = builder
            .claims(namespace, elements)
            .map_err(|err| IssueError::Claims(err.to_string()))?;
    }
    if let Some(status) = &input.status {
        let list = status.get("status_list");
        let idx = list
            .and_then(|list| list.get("idx"))
            .and_then(Value::as_u64);
        let uri = list
            .and_then(|list| list.get("uri"))
            .and_then(Value::as_str);
        let (Some(idx), Some(uri)) = (idx, uri) else {
            return Err(IssueError::Claims(
                "the status is not a status_list reference".to_owned(),
            ));
        };
        builder = builder.status_list(idx, uri);
    }
    let issuer_signed = builder
        .sign(signer, chain)
        .await
        .map_err(IssueError::Mdoc)?;
    issuer_signed.to_base64url().map_err(IssueError::Mdoc)
}

async fn issue_sd_jwt_vc(
    input: &CredentialInput<'_>,
    vct: &str,
    signer: &(dyn Signer + '_),
) -> Result<String, IssueError> {
    let mut builder = SdJwtVcBuilder::new(vct)
        .issuer(input.issuer())
        .issued_at(input.now)
        .claims(input.claims.clone());
    if let Some(exp) = input.expiry() {
        builder = builder.expires_at(exp);
    }
    if let Some(holder) = input.holder {
        builder = builder.holder_key(&holder.jwk);
    }
    if let Some(status) = &input.status {
        builder = builder.status(status.clone());
    }
    if let Some(document) = &input.settings.type_metadata {
        builder = builder.vct_integrity(edk_core::sd_jwt_vc::type_metadata::Integrity::sha256_of(
            document.to_string().as_bytes(),
        ));
    }
    builder = match &input.settings.key_identification {
        KeyIdentification::Did { kid } => builder.kid(kid.clone()),
        KeyIdentification::X5c => builder.x5c(input.x5c()?),
        KeyIdentification::IssuerMetadata => builder,
    };
    match &input.settings.selectively_disclosable {
        None => {
            for name in input.claims.keys() {
                if !NEVER_DISCLOSABLE.contains(&name.as_str()) {
                    builder = builder.selectively_disclose(ClaimPath::new([name.as_str()]));
                }
            }
        }
        Some(paths) => {
            for path in paths {
                let path: ClaimPath = path
                    .parse()
                    .map_err(|_| IssueError::Claims(format!("`{path}` is not a claim path")))?;
                builder = builder.selectively_disclose(path);
            }
        }
    }
    let sd_jwt = builder
        .issue(signer, &IssueOptions::default())
        .await
        .map_err(|err| match err {
            edk_core::sd_jwt_vc::SdJwtVcError::DuplicateClaim(name) => {
                IssueError::Claims(format!("claim `{name}` clashes with a registered claim"))
            }
            edk_core::sd_jwt_vc::SdJwtVcError::NotSelectivelyDisclosable(path) => {
                IssueError::Claims(format!("claim `{path}` cannot be selectively disclosable"))
            }
            edk_core::sd_jwt_vc::SdJwtVcError::SdJwt(
                edk_core::sd_jwt::SdJwtError::PathNotFound(path),
            ) => IssueError::Claims(format!("no claim `{path}` to make disclosable")),
            other => IssueError::SdJwtVc(other),
        })?;
    Ok(sd_jwt.to_string())
}

async fn issue_jwt_vc_json(
    input: &CredentialInput<'_>,
    types: &[String],
    signer: &(dyn Signer + '_),
) -> Result<String, IssueError> {
    let issuer = input.issuer();
    let mut subject = input.claims.clone();
    let holder_did = input
        .holder
        .and_then(|holder| holder.did_url.as_ref())
        .map(|url| url.did().to_string());
    if let Some(did) = &holder_did {
        if subject.contains_key("id") {
            return Err(IssueError::Claims(
                "claim `id` is the holder's DID and cannot be given".to_owned(),
            ));
        }
        subject.insert("id".to_owned(), Value::String(did.clone()));
    }
    let vc = json!({
        "@context": [VC_CONTEXT_V1],
        "type": types,
        "credentialSubject": subject,
    });
    let mut claims = Map::new();
    claims.insert("iss".to_owned(), Value::String(issuer));
    claims.insert("iat".to_owned(), Value::from(input.now));
    claims.insert("nbf".to_owned(), Value::from(input.now));
    if let Some(exp) = input.expiry() {
        claims.insert("exp".to_owned(), Value::from(exp));
    }
    claims.insert(
        "jti".to_owned(),
        Value::String(format!("urn:uuid:{}", uuid::Uuid::new_v4())),
    );
    if let Some(did) = holder_did {
        claims.insert("sub".to_owned(), Value::String(did));
    } else if let Some(holder) = input.holder {
        claims.insert("cnf".to_owned(), json!({ "jwk": holder.jwk.to_public() }));
    }
    if let Some(status) = &input.status {
        claims.insert("status".to_owned(), status.clone());
    }
    claims.insert("vc".to_owned(), vc);
    let mut header = Header::new(signer.algorithm()).with_typ("JWT");
    match &input.settings.key_identification {
        KeyIdentification::Did { kid } => header = header.with_kid(kid.clone()),
        KeyIdentification::X5c => {
            header = header.with_x5c(input.x5c()?);
        }
        KeyIdentification::IssuerMetadata => {}
    }
    let payload = serde_json::to_vec(&Value::Object(claims))
        .map_err(|err| IssueError::Claims(err.to_string()))?;
    jws::sign(header, &payload, signer)
        .await
        .map_err(IssueError::Sign)
}
