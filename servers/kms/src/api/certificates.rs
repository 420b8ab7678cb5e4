//! `/certificates` and `/certificate-chains`: X.509 for the tenant's keys.

use std::sync::Arc;
use std::time::Duration;

use edk_kms::cert::{
    CertificateChain, CertificateInfo, CertificateProfile, ChainName, DistinguishedName,
    ExtendedKeyUsage, KeyUsage, StoredCertificate, SubjectAltName,
};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use serde_json::Value;

use edk_server::{AdminBearer, ApiError};

use super::{Deleted, KmsTag, admin_caller, problem, scope};
use crate::Error;
use crate::dto::parse_alias;
use crate::state::KmsState;

/// Certificates and chains.
#[derive(Debug)]
pub struct CertificatesApi {
    state: Arc<KmsState>,
}

impl CertificatesApi {
    /// The API over `state`.
    #[must_use]
    pub const fn new(state: Arc<KmsState>) -> Self {
        Self { state }
    }
}

/// A subject alternative name.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct San {
    /// `dns`, `email`, `ip` or `uri`.
    #[oai(rename = "type")]
    pub kind: String,
    /// The name.
    pub value: String,
}

fn sans(input: &[San]) -> Result<Vec<SubjectAltName>, Error> {
    input
        .iter()
        .map(|san| {
            serde_json::from_value(serde_json::json!({ "type": san.kind, "value": san.value }))
                .map_err(|err| Error::invalid("sans", err.to_string()))
        })
        .collect()
}

/// The kind of certificate: a CA or an end entity, or one of the ISO/IEC 18013-5 profiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum CertKind {
    /// A CA certificate.
    Ca,
    /// An end-entity certificate.
    Leaf,
    /// An ISO/IEC 18013-5 IACA root: a CA without intermediates, `keyCertSign` and `cRLSign`;
    /// the subject must name a country (`C`) and a common name (`CN`).
    Iaca,
    /// An ISO/IEC 18013-5 document signer: `digitalSignature` and the `id-mdl-kp-mdlDS`
    /// extended key usage, valid for at most 457 days; the subject must name a country and a
    /// common name.
    DocumentSigner,
}

/// What to put in an issued certificate.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct Profile {
    /// `ca`, `leaf`, `iaca` or `document_signer`; the ISO profiles fix the key usages and
    /// ignore `path_len`, `key_usages` and `extended_key_usages`.
    pub kind: CertKind,
    /// For CAs: the path length constraint.
    pub path_len: Option<u8>,
    /// The subject (RFC 4514, e.g. `CN=Issuer,O=Example`); for issue-from-csr, absent keeps
    /// the CSR's.
    pub subject: Option<String>,
    /// How long the certificate is valid, in seconds.
    pub validity_secs: u64,
    /// keyUsage names (`digitalSignature`, `keyCertSign`, ...); absent: the kind's default.
    #[oai(default)]
    pub key_usages: Vec<String>,
    /// extendedKeyUsage names (`serverAuth`, ...).
    #[oai(default)]
    pub extended_key_usages: Vec<String>,
    /// Subject alternative names.
    #[oai(default)]
    pub sans: Vec<San>,
}

impl Profile {
    fn to_profile(&self) -> Result<CertificateProfile, Error> {
        let validity = Duration::from_secs(self.validity_secs);
        let subject = self
            .subject
            .as_deref()
            .map(|subject| {
                DistinguishedName::parse(subject)
                    .map_err(|err| Error::invalid("profile.subject", err.to_string()))
            })
            .transpose()?;
        let iso = |subject: Option<DistinguishedName>| {
            subject.ok_or_else(|| {
                Error::invalid(
                    "profile.subject",
                    "an IACA or document signer certificate needs a subject",
                )
            })
        };
        let mut profile = match self.kind {
            CertKind::Ca => CertificateProfile::ca(validity, self.path_len),
            CertKind::Leaf => CertificateProfile::leaf(validity),
            CertKind::Iaca => return Ok(CertificateProfile::iaca(iso(subject)?, validity)),
            CertKind::DocumentSigner => {
                return Ok(CertificateProfile::document_signer(iso(subject)?, validity));
            }
        };
        if let Some(subject) = subject {
            profile = profile.with_subject(subject);
        }
        let usages: Vec<KeyUsage> = self
            .key_usages
            .iter()
            .map(|name| {
                serde_json::from_value(Value::String(name.clone()))
                    .map_err(|_| Error::invalid("profile.key_usages", format!("unknown `{name}`")))
            })
            .collect::<Result<_, _>>()?;
        let extended: Vec<ExtendedKeyUsage> = self
            .extended_key_usages
            .iter()
            .map(|name| {
                serde_json::from_value(Value::String(name.clone())).map_err(|_| {
                    Error::invalid("profile.extended_key_usages", format!("unknown `{name}`"))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(profile
            .with_key_usages(usages)
            .with_extended_key_usages(extended)
            .with_sans(sans(&self.sans)?))
    }
}

/// Make a CSR for a key.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct CsrRequest {
    /// The alias of the key.
    pub key: String,
    /// The subject (RFC 4514).
    pub subject: String,
    /// Subject alternative names.
    #[oai(default)]
    pub sans: Vec<San>,
}

/// A PKCS#10 CSR.
#[derive(Clone, Debug, Object)]
pub struct CsrBody {
    /// The CSR, PEM.
    pub csr: String,
}

/// Issue a certificate for a key with a CA key.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct IssueRequest {
    /// The alias of the CA key (which has a certificate).
    pub ca_key: String,
    /// The alias of the key to certify; the certificate is stored under it.
    pub subject_key: String,
    /// What to put in the certificate.
    pub profile: Profile,
}

/// Issue a certificate for a CSR with a CA key.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct IssueFromCsrRequest {
    /// The alias of the CA key.
    pub ca_key: String,
    /// The CSR, PEM.
    pub csr: String,
    /// What to put in the certificate.
    pub profile: Profile,
}

/// Register a certificate chain (leaf first, PEM) for a key.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct RegisterCertificateRequest {
    /// The alias of the key the leaf certifies.
    pub alias: String,
    /// The chain, PEM, leaf first.
    pub chain_pem: String,
}

/// A certificate chain (leaf first) for an alias.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct ChainPem {
    /// The chain, PEM, leaf first.
    pub chain_pem: String,
}

/// A certificate; `alias` and `kid` are absent, never `null`, when unknown.
#[derive(Clone, Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CertificateBody {
    /// The alias it is stored under, if stored.
    pub alias: Option<String>,
    /// The kid of the certified key version, if known.
    pub kid: Option<String>,
    /// The serial number (hex).
    pub serial: String,
    /// The subject (RFC 4514).
    pub subject: String,
    /// The issuer (RFC 4514).
    pub issuer: String,
    /// Valid from (RFC 3339).
    pub not_before: String,
    /// Valid until (RFC 3339).
    pub not_after: String,
    /// The chain as `x5c` (standard base64 DER, leaf first).
    pub x5c: Vec<String>,
}

impl CertificateBody {
    fn from_info(info: &CertificateInfo, alias: Option<String>, kid: Option<String>) -> Self {
        Self {
            alias,
            kid,
            serial: info.serial.clone(),
            subject: info.subject.clone(),
            issuer: info.issuer.clone(),
            not_before: info.not_before.to_rfc3339(),
            not_after: info.not_after.to_rfc3339(),
            x5c: info.x5c(),
        }
    }
}

impl From<&StoredCertificate> for CertificateBody {
    fn from(stored: &StoredCertificate) -> Self {
        Self::from_info(
            &stored.certificate,
            Some(stored.alias.to_string()),
            stored.kid.as_ref().map(|kid| kid.as_str().to_owned()),
        )
    }
}

/// Certificates.
#[derive(Clone, Debug, Object)]
pub struct CertificateList {
    /// The tenant's certificates.
    pub certificates: Vec<CertificateBody>,
}

/// Store a named chain.
#[derive(Clone, Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct PutChainRequest {
    /// The chain, PEM.
    pub chain_pem: String,
    /// Whether its certificates are trust anchors for validation.
    #[oai(default)]
    pub trust_anchor: bool,
}

/// A named chain.
#[derive(Clone, Debug, Object)]
pub struct ChainBody {
    /// The name.
    pub name: String,
    /// Whether its certificates are trust anchors.
    pub trust_anchor: bool,
    /// The certificates (standard base64 DER).
    pub x5c: Vec<String>,
}

impl From<&CertificateChain> for ChainBody {
    fn from(chain: &CertificateChain) -> Self {
        use base64::Engine;
        Self {
            name: chain.name.as_str().to_owned(),
            trust_anchor: chain.trust_anchor,
            x5c: chain
                .certificates
                .iter()
                .map(|der| base64::engine::general_purpose::STANDARD.encode(der))
                .collect(),
        }
    }
}

/// Named chains.
#[derive(Clone, Debug, Object)]
pub struct ChainList {
    /// The tenant's chains.
    pub chains: Vec<ChainBody>,
}

fn parse_chain_name(name: &str) -> Result<ChainName, ApiError> {
    ChainName::new(name).map_err(|err| problem(Error::invalid("name", err.to_string())))
}

#[OpenApi(prefix_path = "/api/kms/v1", tag = "KmsTag::Certificates")]
impl CertificatesApi {
    /// Makes a PKCS#10 CSR signed by a key. Scope `kms:use`.
    #[oai(
        path = "/certificates/csr",
        method = "post",
        operation_id = "createCsr"
    )]
    async fn csr(
        &self,
        auth: AdminBearer,
        body: Json<CsrRequest>,
    ) -> Result<Json<CsrBody>, ApiError> {
        auth.0.require_scope(scope::USE)?;
        let alias = parse_alias("key", &body.key).map_err(problem)?;
        let subject = DistinguishedName::parse(&body.subject).map_err(problem)?;
        let sans = sans(&body.sans).map_err(problem)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let csr = self
            .state
            .certificates()
            .csr(&caller, &alias, &subject, &sans)
            .await
            .map_err(problem)?;
        Ok(Json(CsrBody { csr }))
    }

    /// Issues a certificate for a key with a CA key and stores it under the key's alias.
    /// Scope `kms:write`.
    #[oai(
        path = "/certificates/issue",
        method = "post",
        operation_id = "issueCertificate"
    )]
    async fn issue(
        &self,
        auth: AdminBearer,
        body: Json<IssueRequest>,
    ) -> Result<Json<CertificateBody>, ApiError> {
        auth.0.require_scope(scope::WRITE)?;
        let ca = parse_alias("ca_key", &body.ca_key).map_err(problem)?;
        let subject = parse_alias("subject_key", &body.subject_key).map_err(problem)?;
        let profile = body.profile.to_profile().map_err(problem)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let stored = self
            .state
            .certificates()
            .issue(&caller, &ca, &subject, &profile)
            .await
            .map_err(problem)?;
        Ok(Json(CertificateBody::from(&stored)))
    }

    /// Issues a certificate for a CSR with a CA key (not stored). Scope `kms:write`.
    #[oai(
        path = "/certificates/issue-from-csr",
        method = "post",
        operation_id = "issueCertificateFromCsr"
    )]
    async fn issue_from_csr(
        &self,
        auth: AdminBearer,
        body: Json<IssueFromCsrRequest>,
    ) -> Result<Json<CertificateBody>, ApiError> {
        auth.0.require_scope(scope::WRITE)?;
        let ca = parse_alias("ca_key", &body.ca_key).map_err(problem)?;
        let profile = body.profile.to_profile().map_err(problem)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let info = self
            .state
            .certificates()
            .issue_from_csr(&caller, &ca, &body.csr, &profile)
            .await
            .map_err(problem)?;
        Ok(Json(CertificateBody::from_info(&info, None, None)))
    }

    /// Registers an externally issued chain for a key (the leaf must certify the key).
    /// Scope `kms:write`.
    #[oai(
        path = "/certificates/register",
        method = "post",
        operation_id = "registerCertificate"
    )]
    async fn register(
        &self,
        auth: AdminBearer,
        body: Json<RegisterCertificateRequest>,
    ) -> Result<Json<CertificateBody>, ApiError> {
        self.put(&auth, &body.alias, &body.chain_pem).await
    }

    /// The tenant's certificates. Scope `kms:read`.
    #[oai(
        path = "/certificates",
        method = "get",
        operation_id = "listCertificates"
    )]
    async fn list(&self, auth: AdminBearer) -> Result<Json<CertificateList>, ApiError> {
        auth.0.require_scope(scope::READ)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let stored = self
            .state
            .certificates()
            .certificates(&caller)
            .await
            .map_err(problem)?;
        Ok(Json(CertificateList {
            certificates: stored.iter().map(CertificateBody::from).collect(),
        }))
    }

    /// The certificate of an alias. Scope `kms:read`.
    #[oai(
        path = "/certificates/:alias",
        method = "get",
        operation_id = "getCertificate"
    )]
    async fn get(
        &self,
        auth: AdminBearer,
        /// The key alias.
        alias: Path<String>,
    ) -> Result<Json<CertificateBody>, ApiError> {
        auth.0.require_scope(scope::READ)?;
        let alias = parse_alias("alias", &alias.0).map_err(problem)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let stored = self
            .state
            .certificates()
            .certificate(&caller, &alias)
            .await
            .map_err(problem)?;
        Ok(Json(CertificateBody::from(&stored)))
    }

    /// Registers a chain for an alias (as `/certificates/register`). Scope `kms:write`.
    #[oai(
        path = "/certificates/:alias",
        method = "post",
        operation_id = "putCertificate"
    )]
    async fn post(
        &self,
        auth: AdminBearer,
        /// The key alias.
        alias: Path<String>,
        body: Json<ChainPem>,
    ) -> Result<Json<CertificateBody>, ApiError> {
        self.put(&auth, &alias.0, &body.chain_pem).await
    }

    /// Deletes the certificate of an alias. Scope `kms:write`.
    #[oai(
        path = "/certificates/:alias",
        method = "delete",
        operation_id = "deleteCertificate"
    )]
    async fn delete(
        &self,
        auth: AdminBearer,
        /// The key alias.
        alias: Path<String>,
    ) -> Result<Deleted, ApiError> {
        auth.0.require_scope(scope::WRITE)?;
        let alias = parse_alias("alias", &alias.0).map_err(problem)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        self.state
            .certificates()
            .delete_certificate(&caller, &alias)
            .await
            .map_err(problem)?;
        Ok(Deleted::Deleted)
    }

    /// The tenant's named chains. Scope `kms:read`.
    #[oai(
        path = "/certificate-chains",
        method = "get",
        operation_id = "listCertificateChains"
    )]
    async fn chains(&self, auth: AdminBearer) -> Result<Json<ChainList>, ApiError> {
        auth.0.require_scope(scope::READ)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let chains = self
            .state
            .certificates()
            .chains(&caller)
            .await
            .map_err(problem)?;
        Ok(Json(ChainList {
            chains: chains.iter().map(ChainBody::from).collect(),
        }))
    }

    /// One named chain. Scope `kms:read`.
    #[oai(
        path = "/certificate-chains/:alias",
        method = "get",
        operation_id = "getCertificateChain"
    )]
    async fn chain(
        &self,
        auth: AdminBearer,
        /// The chain's name.
        alias: Path<String>,
    ) -> Result<Json<ChainBody>, ApiError> {
        auth.0.require_scope(scope::READ)?;
        let name = parse_chain_name(&alias.0)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let chain = self
            .state
            .certificates()
            .chain(&caller, &name)
            .await
            .map_err(problem)?;
        Ok(Json(ChainBody::from(&chain)))
    }

    /// Stores (or replaces) a named chain. Scope `kms:write`.
    #[oai(
        path = "/certificate-chains/:alias",
        method = "post",
        operation_id = "putCertificateChain"
    )]
    async fn put_chain(
        &self,
        auth: AdminBearer,
        /// The chain's name.
        alias: Path<String>,
        body: Json<PutChainRequest>,
    ) -> Result<Json<ChainBody>, ApiError> {
        auth.0.require_scope(scope::WRITE)?;
        let name = parse_chain_name(&alias.0)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let chain = self
            .state
            .certificates()
            .put_chain(&caller, &name, &body.chain_pem, body.trust_anchor)
            .await
            .map_err(problem)?;
        Ok(Json(ChainBody::from(&chain)))
    }

    /// Deletes a named chain. Scope `kms:write`.
    #[oai(
        path = "/certificate-chains/:alias",
        method = "delete",
        operation_id = "deleteCertificateChain"
    )]
    async fn delete_chain(
        &self,
        auth: AdminBearer,
        /// The chain's name.
        alias: Path<String>,
    ) -> Result<Deleted, ApiError> {
        auth.0.require_scope(scope::WRITE)?;
        let name = parse_chain_name(&alias.0)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        self.state
            .certificates()
            .delete_chain(&caller, &name)
            .await
            .map_err(problem)?;
        Ok(Deleted::Deleted)
    }
}

impl CertificatesApi {
    async fn put(
        &self,
        auth: &AdminBearer,
        alias: &str,
        chain_pem: &str,
    ) -> Result<Json<CertificateBody>, ApiError> {
        auth.0.require_scope(scope::WRITE)?;
        let alias = parse_alias("alias", alias).map_err(problem)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let stored = self
            .state
            .certificates()
            .register(&caller, &alias, chain_pem)
            .await
            .map_err(problem)?;
        Ok(Json(CertificateBody::from(&stored)))
    }
}
