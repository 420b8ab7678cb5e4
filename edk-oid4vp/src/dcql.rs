//! The Digital Credentials Query Language (OpenID4VP 1.0 §6): a typed [`DcqlQuery`], read
//! from JSON with [`DcqlQuery::from_json`] and checked against the specification's rules with
//! [`DcqlQuery::validate`].

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

use crate::error::DcqlError;
use crate::path::ClaimPath;

/// A Credential Format Identifier (OpenID4VP 1.0 Appendix B).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CredentialFormat {
    /// `dc+sd-jwt`: IETF SD-JWT VC.
    SdJwtVc,
    /// `mso_mdoc`: ISO/IEC 18013-5 mdoc.
    MsoMdoc,
    /// `jwt_vc_json`: W3C Verifiable Credential secured as a JWT.
    JwtVcJson,
    /// `ldp_vc`: W3C Verifiable Credential secured with Data Integrity.
    LdpVc,
    /// Any other identifier: its `meta` is kept as given and not interpreted.
    Other(String),
}

impl CredentialFormat {
    /// The identifier as it appears in `format`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::SdJwtVc => "dc+sd-jwt",
            Self::MsoMdoc => "mso_mdoc",
            Self::JwtVcJson => "jwt_vc_json",
            Self::LdpVc => "ldp_vc",
            Self::Other(other) => other,
        }
    }

    /// The format named by `identifier`; unknown identifiers become [`Self::Other`].
    #[must_use]
    pub fn parse(identifier: &str) -> Self {
        match identifier {
            "dc+sd-jwt" => Self::SdJwtVc,
            "mso_mdoc" => Self::MsoMdoc,
            "jwt_vc_json" => Self::JwtVcJson,
            "ldp_vc" => Self::LdpVc,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for CredentialFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `meta` object of a credential query, typed by the query's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialMeta {
    /// `dc+sd-jwt`: the allowed `vct` values (Appendix B.3.5).
    SdJwtVc {
        /// `vct_values`: non-empty.
        vct_values: Vec<String>,
    },
    /// `mso_mdoc`: the doctype (Appendix B.2.3).
    MsoMdoc {
        /// `doctype_value`.
        doctype_value: String,
    },
    /// `jwt_vc_json` and `ldp_vc`: alternatives of type sets (Appendix B.1.1); a credential
    /// matches when its types include every type of one alternative.
    W3c {
        /// `type_values`: non-empty, each alternative non-empty.
        type_values: Vec<Vec<String>>,
    },
    /// The `meta` of a format this crate does not interpret, as given.
    Opaque(Map<String, Value>),
}

impl CredentialMeta {
    /// The `meta` object as JSON.
    #[must_use]
    pub fn to_json(&self) -> Value {
        match self {
            Self::SdJwtVc { vct_values } => json!({ "vct_values": vct_values }),
            Self::MsoMdoc { doctype_value } => json!({ "doctype_value": doctype_value }),
            Self::W3c { type_values } => json!({ "type_values": type_values }),
            Self::Opaque(meta) => Value::Object(meta.clone()),
        }
    }
}

/// The type of a trusted authorities query (§6.1.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TrustedAuthorityType {
    /// `aki`: the base64url KeyIdentifier of an AuthorityKeyIdentifier in the issuer's chain.
    Aki,
    /// `etsi_tl`: the identifier of an ETSI TS 119 612 trusted list.
    EtsiTl,
    /// `openid_federation`: an OpenID Federation entity identifier, usually a trust anchor.
    OpenidFederation,
    /// A type this crate does not know; it matches only an authority of the same type.
    Other(String),
}

impl TrustedAuthorityType {
    /// The type as it appears in `type`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Aki => "aki",
            Self::EtsiTl => "etsi_tl",
            Self::OpenidFederation => "openid_federation",
            Self::Other(other) => other,
        }
    }

    /// The type named by `identifier`.
    #[must_use]
    pub fn parse(identifier: &str) -> Self {
        match identifier {
            "aki" => Self::Aki,
            "etsi_tl" => Self::EtsiTl,
            "openid_federation" => Self::OpenidFederation,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// A trusted authorities query (§6.1.1): a credential matches when its issuer is identified by
/// one of `values` of type `kind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedAuthoritiesQuery {
    /// `type`.
    pub kind: TrustedAuthorityType,
    /// `values`: non-empty.
    pub values: Vec<String>,
}

/// A claims query (§6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimsQuery {
    /// `id`: required when the credential query has `claim_sets`.
    pub id: Option<String>,
    /// `path`: where the claim is in the credential.
    pub path: ClaimPath,
    /// `values`: the accepted values (strings, integers, booleans), compared by type and value.
    pub values: Option<Vec<Value>>,
    /// `intent_to_retain` (`mso_mdoc` only): the verifier means to keep the element.
    pub intent_to_retain: Option<bool>,
}

impl ClaimsQuery {
    /// A claims query of `path` only.
    #[must_use]
    pub fn new(path: ClaimPath) -> Self {
        Self {
            id: None,
            path,
            values: None,
            intent_to_retain: None,
        }
    }

    fn to_json(&self) -> Value {
        let mut object = Map::new();
        if let Some(id) = &self.id {
            object.insert("id".to_owned(), json!(id));
        }
        object.insert("path".to_owned(), self.path.to_json());
        if let Some(values) = &self.values {
            object.insert("values".to_owned(), Value::Array(values.clone()));
        }
        if let Some(intent) = self.intent_to_retain {
            object.insert("intent_to_retain".to_owned(), json!(intent));
        }
        Value::Object(object)
    }
}

/// A credential query (§6.1): one credential the verifier asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialQuery {
    /// `id`: names the answer in the `vp_token`.
    pub id: String,
    /// `format`.
    pub format: CredentialFormat,
    /// `meta`, typed by the format.
    pub meta: CredentialMeta,
    /// `multiple` (default `false`): more than one credential may answer.
    pub multiple: bool,
    /// `trusted_authorities`: non-empty when present.
    pub trusted_authorities: Option<Vec<TrustedAuthoritiesQuery>>,
    /// `require_cryptographic_holder_binding` (default `true`).
    pub require_cryptographic_holder_binding: bool,
    /// `claims`: non-empty when present.
    pub claims: Option<Vec<ClaimsQuery>>,
    /// `claim_sets`: alternatives of claim ids, most preferred first.
    pub claim_sets: Option<Vec<Vec<String>>>,
}

impl CredentialQuery {
    /// A query for one credential of `format` with `meta`, with the defaults of the
    /// specification and no claims.
    #[must_use]
    pub fn new(id: impl Into<String>, format: CredentialFormat, meta: CredentialMeta) -> Self {
        Self {
            id: id.into(),
            format,
            meta,
            multiple: false,
            trusted_authorities: None,
            require_cryptographic_holder_binding: true,
            claims: None,
            claim_sets: None,
        }
    }

    /// A `dc+sd-jwt` query for any of `vct_values`.
    #[must_use]
    pub fn sd_jwt_vc<I, S>(id: impl Into<String>, vct_values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(
            id,
            CredentialFormat::SdJwtVc,
            CredentialMeta::SdJwtVc {
                vct_values: vct_values.into_iter().map(Into::into).collect(),
            },
        )
    }

    /// An `mso_mdoc` query for `doctype`.
    #[must_use]
    pub fn mso_mdoc(id: impl Into<String>, doctype: impl Into<String>) -> Self {
        Self::new(
            id,
            CredentialFormat::MsoMdoc,
            CredentialMeta::MsoMdoc {
                doctype_value: doctype.into(),
            },
        )
    }

    /// The same query asking also for `claim`.
    #[must_use]
    pub fn with_claim(mut self, claim: ClaimsQuery) -> Self {
        self.claims.get_or_insert_with(Vec::new).push(claim);
        self
    }

    /// The claims query with `id`, if any.
    #[must_use]
    pub fn claim(&self, id: &str) -> Option<&ClaimsQuery> {
        self.claims
            .iter()
            .flatten()
            .find(|claim| claim.id.as_deref() == Some(id))
    }

    fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("id".to_owned(), json!(self.id));
        object.insert("format".to_owned(), json!(self.format.as_str()));
        object.insert("meta".to_owned(), self.meta.to_json());
        if self.multiple {
            object.insert("multiple".to_owned(), json!(true));
        }
        if let Some(authorities) = &self.trusted_authorities {
            let authorities: Vec<Value> = authorities
                .iter()
                .map(|authority| json!({ "type": authority.kind.as_str(), "values": authority.values }))
                .collect();
            object.insert("trusted_authorities".to_owned(), Value::Array(authorities));
        }
        if !self.require_cryptographic_holder_binding {
            object.insert(
                "require_cryptographic_holder_binding".to_owned(),
                json!(false),
            );
        }
        if let Some(claims) = &self.claims {
            object.insert(
                "claims".to_owned(),
                Value::Array(claims.iter().map(ClaimsQuery::to_json).collect()),
            );
        }
        if let Some(claim_sets) = &self.claim_sets {
            object.insert("claim_sets".to_owned(), json!(claim_sets));
        }
        Value::Object(object)
    }

    fn validate(&self) -> Result<(), DcqlError> {
        check_id(&self.id)?;
        let credential = || self.id.clone();
        self.validate_meta()?;
        if let Some(authorities) = &self.trusted_authorities {
            if authorities.is_empty() {
                return Err(DcqlError::EmptyTrustedAuthorities(credential()));
            }
            if let Some(empty) = authorities.iter().find(|a| a.values.is_empty()) {
                return Err(DcqlError::EmptyTrustedAuthorityValues {
                    credential: credential(),
                    kind: empty.kind.as_str().to_owned(),
                });
            }
        }
        let Some(claims) = &self.claims else {
            return match self.claim_sets {
                Some(_) => Err(DcqlError::ClaimSetsWithoutClaims(credential())),
                None => Ok(()),
            };
        };
        if claims.is_empty() {
            return Err(DcqlError::EmptyClaims(credential()));
        }
        let mut ids = BTreeSet::new();
        let mut paths = BTreeSet::new();
        for claim in claims {
            if let Some(id) = &claim.id {
                check_id(id)?;
                if !ids.insert(id.as_str()) {
                    return Err(DcqlError::DuplicateClaimId {
                        credential: credential(),
                        claim: id.clone(),
                    });
                }
            }
            if !paths.insert(&claim.path) {
                return Err(DcqlError::DuplicateClaimPath {
                    credential: credential(),
                    path: claim.path.clone(),
                });
            }
            if self.format == CredentialFormat::MsoMdoc && claim.path.as_mdoc().is_none() {
                return Err(DcqlError::MdocPath {
                    credential: credential(),
                    path: claim.path.clone(),
                });
            }
            if let Some(values) = &claim.values {
                if values.is_empty() {
                    return Err(DcqlError::EmptyValues(credential()));
                }
                if let Some(value) = values.iter().find(|value| !is_matchable(value)) {
                    return Err(DcqlError::InvalidValue {
                        credential: credential(),
                        value: value.clone(),
                    });
                }
            }
        }
        if let Some(claim_sets) = &self.claim_sets {
            if claim_sets.is_empty() || claim_sets.iter().any(Vec::is_empty) {
                return Err(DcqlError::EmptyClaimSet(credential()));
            }
            if claims.iter().any(|claim| claim.id.is_none()) {
                return Err(DcqlError::ClaimWithoutId(credential()));
            }
            if let Some(unknown) = claim_sets
                .iter()
                .flatten()
                .find(|id| !ids.contains(id.as_str()))
            {
                return Err(DcqlError::UnknownClaimId {
                    credential: credential(),
                    claim: unknown.clone(),
                });
            }
        }
        Ok(())
    }

    fn validate_meta(&self) -> Result<(), DcqlError> {
        let invalid = |field, reason| DcqlError::InvalidMeta {
            credential: self.id.clone(),
            field,
            reason,
        };
        let missing = |field| DcqlError::MissingMeta {
            credential: self.id.clone(),
            format: self.format.as_str().to_owned(),
            field,
        };
        match (&self.format, &self.meta) {
            (CredentialFormat::SdJwtVc, CredentialMeta::SdJwtVc { vct_values }) => {
                if vct_values.is_empty() {
                    return Err(invalid("meta.vct_values", "must be a non-empty array"));
                }
                Ok(())
            }
            (CredentialFormat::MsoMdoc, CredentialMeta::MsoMdoc { .. }) => Ok(()),
            (
                CredentialFormat::JwtVcJson | CredentialFormat::LdpVc,
                CredentialMeta::W3c { type_values },
            ) => {
                if type_values.is_empty() || type_values.iter().any(Vec::is_empty) {
                    return Err(invalid(
                        "meta.type_values",
                        "must be a non-empty array of non-empty arrays",
                    ));
                }
                Ok(())
            }
            (CredentialFormat::Other(_), CredentialMeta::Opaque(_)) => Ok(()),
            (CredentialFormat::SdJwtVc, _) => Err(missing("meta.vct_values")),
            (CredentialFormat::MsoMdoc, _) => Err(missing("meta.doctype_value")),
            (CredentialFormat::JwtVcJson | CredentialFormat::LdpVc, _) => {
                Err(missing("meta.type_values"))
            }
            (CredentialFormat::Other(_), _) => Err(invalid(
                "meta",
                "of a format this crate does not know must be kept opaque",
            )),
        }
    }
}

/// A credential set query (§6.2): alternatives of credential query ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSetQuery {
    /// `options`: each a set of credential query ids that together satisfy the set.
    pub options: Vec<Vec<String>>,
    /// `required` (default `true`).
    pub required: bool,
}

/// A DCQL query (§6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcqlQuery {
    /// `credentials`: non-empty.
    pub credentials: Vec<CredentialQuery>,
    /// `credential_sets`: non-empty when present.
    pub credential_sets: Option<Vec<CredentialSetQuery>>,
}

impl DcqlQuery {
    /// Reads and validates a query from its JSON. Unknown members are ignored, as the
    /// specification requires.
    ///
    /// # Errors
    ///
    /// [`DcqlError::Malformed`] when the JSON has not the shape of a query, otherwise the
    /// [`DcqlError`] of the first rule the query breaks.
    pub fn from_json(value: &Value) -> Result<Self, DcqlError> {
        let raw = RawQuery::deserialize(value).map_err(|e| DcqlError::Malformed(e.to_string()))?;
        let query = raw.into_query()?;
        query.validate()?;
        Ok(query)
    }

    /// Reads and validates a query from JSON text.
    ///
    /// # Errors
    ///
    /// As [`Self::from_json`].
    pub fn from_json_str(text: &str) -> Result<Self, DcqlError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| DcqlError::Malformed(e.to_string()))?;
        Self::from_json(&value)
    }

    /// The query as JSON, defaults left out.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert(
            "credentials".to_owned(),
            Value::Array(
                self.credentials
                    .iter()
                    .map(CredentialQuery::to_json)
                    .collect(),
            ),
        );
        if let Some(sets) = &self.credential_sets {
            let sets: Vec<Value> = sets
                .iter()
                .map(|set| {
                    let mut object = Map::new();
                    object.insert("options".to_owned(), json!(set.options));
                    if !set.required {
                        object.insert("required".to_owned(), json!(false));
                    }
                    Value::Object(object)
                })
                .collect();
            object.insert("credential_sets".to_owned(), Value::Array(sets));
        }
        Value::Object(object)
    }

    /// Checks the rules of §6 on a query built in code (queries read by [`Self::from_json`]
    /// are already checked).
    ///
    /// # Errors
    ///
    /// The [`DcqlError`] of the first rule the query breaks.
    pub fn validate(&self) -> Result<(), DcqlError> {
        if self.credentials.is_empty() {
            return Err(DcqlError::NoCredentials);
        }
        let mut ids = BTreeSet::new();
        for credential in &self.credentials {
            credential.validate()?;
            if !ids.insert(credential.id.as_str()) {
                return Err(DcqlError::DuplicateCredentialId(credential.id.clone()));
            }
        }
        if let Some(sets) = &self.credential_sets {
            if sets.is_empty() {
                return Err(DcqlError::EmptyCredentialSets);
            }
            for (index, set) in sets.iter().enumerate() {
                if set.options.is_empty() || set.options.iter().any(Vec::is_empty) {
                    return Err(DcqlError::EmptyOptions(index));
                }
                if let Some(unknown) = set
                    .options
                    .iter()
                    .flatten()
                    .find(|id| !ids.contains(id.as_str()))
                {
                    return Err(DcqlError::UnknownCredentialId {
                        set: index,
                        id: unknown.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The credential query with `id`, if any.
    #[must_use]
    pub fn credential(&self, id: &str) -> Option<&CredentialQuery> {
        self.credentials
            .iter()
            .find(|credential| credential.id == id)
    }
}

impl Serialize for DcqlQuery {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for DcqlQuery {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_json(&value).map_err(serde::de::Error::custom)
    }
}

/// Whether `id` is a non-empty string of ASCII letters, digits, `_` and `-`.
#[must_use]
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn check_id(id: &str) -> Result<(), DcqlError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(DcqlError::InvalidId(id.to_owned()))
    }
}

/// Whether `value` may appear in `values`: a string, an integer or a boolean.
fn is_matchable(value: &Value) -> bool {
    match value {
        Value::String(_) | Value::Bool(_) => true,
        Value::Number(number) => number.is_i64() || number.is_u64(),
        _ => false,
    }
}

/// The JSON shape of a query before its format-specific parts are typed.
#[derive(Deserialize)]
struct RawQuery {
    credentials: Vec<RawCredential>,
    credential_sets: Option<Vec<RawCredentialSet>>,
}

#[derive(Deserialize)]
struct RawCredential {
    id: String,
    format: String,
    multiple: Option<bool>,
    meta: Option<Map<String, Value>>,
    trusted_authorities: Option<Vec<RawAuthority>>,
    require_cryptographic_holder_binding: Option<bool>,
    claims: Option<Vec<RawClaim>>,
    claim_sets: Option<Vec<Vec<String>>>,
}

#[derive(Deserialize)]
struct RawAuthority {
    #[serde(rename = "type")]
    kind: String,
    values: Vec<String>,
}

#[derive(Deserialize)]
struct RawClaim {
    id: Option<String>,
    path: Value,
    values: Option<Vec<Value>>,
    intent_to_retain: Option<bool>,
}

#[derive(Deserialize)]
struct RawCredentialSet {
    options: Vec<Vec<String>>,
    required: Option<bool>,
}

impl RawQuery {
    fn into_query(self) -> Result<DcqlQuery, DcqlError> {
        Ok(DcqlQuery {
            credentials: self
                .credentials
                .into_iter()
                .map(RawCredential::into_query)
                .collect::<Result<_, _>>()?,
            credential_sets: self.credential_sets.map(|sets| {
                sets.into_iter()
                    .map(|set| CredentialSetQuery {
                        options: set.options,
                        required: set.required.unwrap_or(true),
                    })
                    .collect()
            }),
        })
    }
}

impl RawCredential {
    fn into_query(self) -> Result<CredentialQuery, DcqlError> {
        let format = CredentialFormat::parse(&self.format);
        let Some(meta) = self.meta else {
            return Err(DcqlError::MissingMeta {
                credential: self.id,
                format: self.format,
                field: "meta",
            });
        };
        let meta = typed_meta(&self.id, &format, meta)?;
        let claims = match self.claims {
            None => None,
            Some(claims) => Some(
                claims
                    .into_iter()
                    .map(|claim| {
                        let path = ClaimPath::from_json(&claim.path).map_err(|reason| {
                            DcqlError::InvalidPath {
                                credential: self.id.clone(),
                                reason,
                            }
                        })?;
                        Ok(ClaimsQuery {
                            id: claim.id,
                            path,
                            values: claim.values,
                            intent_to_retain: claim.intent_to_retain,
                        })
                    })
                    .collect::<Result<_, DcqlError>>()?,
            ),
        };
        Ok(CredentialQuery {
            id: self.id,
            format,
            meta,
            multiple: self.multiple.unwrap_or(false),
            trusted_authorities: self.trusted_authorities.map(|authorities| {
                authorities
                    .into_iter()
                    .map(|authority| TrustedAuthoritiesQuery {
                        kind: TrustedAuthorityType::parse(&authority.kind),
                        values: authority.values,
                    })
                    .collect()
            }),
            require_cryptographic_holder_binding: self
                .require_cryptographic_holder_binding
                .unwrap_or(true),
            claims,
            claim_sets: self.claim_sets,
        })
    }
}

fn typed_meta(
    id: &str,
    format: &CredentialFormat,
    meta: Map<String, Value>,
) -> Result<CredentialMeta, DcqlError> {
    let missing = |field| DcqlError::MissingMeta {
        credential: id.to_owned(),
        format: format.as_str().to_owned(),
        field,
    };
    let invalid = |field, reason| DcqlError::InvalidMeta {
        credential: id.to_owned(),
        field,
        reason,
    };
    match format {
        CredentialFormat::SdJwtVc => {
            let value = meta
                .get("vct_values")
                .ok_or_else(|| missing("meta.vct_values"))?;
            let vct_values = strings(value)
                .ok_or_else(|| invalid("meta.vct_values", "must be an array of strings"))?;
            Ok(CredentialMeta::SdJwtVc { vct_values })
        }
        CredentialFormat::MsoMdoc => {
            let value = meta
                .get("doctype_value")
                .ok_or_else(|| missing("meta.doctype_value"))?;
            let doctype_value = value
                .as_str()
                .ok_or_else(|| invalid("meta.doctype_value", "must be a string"))?;
            Ok(CredentialMeta::MsoMdoc {
                doctype_value: doctype_value.to_owned(),
            })
        }
        CredentialFormat::JwtVcJson | CredentialFormat::LdpVc => {
            let value = meta
                .get("type_values")
                .ok_or_else(|| missing("meta.type_values"))?;
            let type_values = value
                .as_array()
                .and_then(|alternatives| alternatives.iter().map(strings).collect())
                .ok_or_else(|| {
                    invalid("meta.type_values", "must be an array of arrays of strings")
                })?;
            Ok(CredentialMeta::W3c { type_values })
        }
        CredentialFormat::Other(_) => Ok(CredentialMeta::Opaque(meta)),
    }
}

fn strings(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(str::to_owned))
        .collect()
}
