//! SD-JWT VC Type Metadata (SD-JWT VC §4, §5): the document a `vct` URL names, its integrity
//! (`vct#integrity`, `extends#integrity`, W3C Subresource Integrity strings), resolution of a
//! type and the types it `extends` through a [`TypeMetadataFetcher`] with a cache, and the
//! check of a verified credential against the claim rules (`mandatory`, `sd`).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::VerifiedSdJwtVc;
use crate::error::{ErrorKind, HasKind};

/// The most types one `extends` chain may hold.
pub const MAX_EXTENDS_DEPTH: usize = 5;

/// The largest Type Metadata document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Why Type Metadata could not be resolved or a credential does not satisfy it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TypeMetadataError {
    /// An integrity string is malformed or names no supported algorithm.
    #[error("the integrity string is malformed or uses no supported algorithm")]
    InvalidIntegrity,
    /// The fetched document does not have the integrity its referrer asked for.
    #[error("the type metadata of {0} does not match its integrity")]
    IntegrityMismatch(String),
    /// The document is not Type Metadata.
    #[error("the type metadata of {vct} is malformed: {reason}")]
    Malformed {
        /// The type.
        vct: String,
        /// What is wrong.
        reason: String,
    },
    /// The document describes another type than the one asked for.
    #[error("the type metadata fetched for {0} describes another vct")]
    VctMismatch(String),
    /// `extends` loops or goes too deep.
    #[error("the extends chain of {0} loops or is longer than {MAX_EXTENDS_DEPTH}")]
    ExtendsChain(String),
    /// An extending type loosens a rule of the type it extends.
    #[error("type {vct} loosens the rules of claim {path} set by the type it extends")]
    Loosened {
        /// The extending type.
        vct: String,
        /// The claim path.
        path: String,
    },
    /// The credential breaks a claim rule.
    #[error("the credential breaks the type's rule for claim {path}: {rule}")]
    ClaimRule {
        /// The claim path.
        path: String,
        /// The rule.
        rule: &'static str,
    },
    /// The document could not be fetched.
    #[error("fetching the type metadata of {vct} failed")]
    Fetch {
        /// The type.
        vct: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl HasKind for TypeMetadataError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Fetch { .. } => ErrorKind::Unavailable,
            _ => ErrorKind::InvalidInput,
        }
    }
}

/// A hash algorithm of Subresource Integrity, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SriAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl SriAlgorithm {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Self::Sha256),
            "sha384" => Some(Self::Sha384),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    fn digest(self, bytes: &[u8]) -> Vec<u8> {
        let algorithm = match self {
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        };
        digest::digest(algorithm, bytes).as_ref().to_vec()
    }
}

/// A Subresource Integrity string (`sha256-<base64>`, several separated by spaces): the
/// strongest algorithm listed decides (W3C SRI §3.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Integrity {
    algorithm: SriAlgorithm,
    digests: Vec<Vec<u8>>,
}

impl Integrity {
    /// Parses an integrity string; unknown algorithms are skipped, as SRI asks.
    ///
    /// # Errors
    /// [`TypeMetadataError::InvalidIntegrity`] when no entry has a supported algorithm and
    /// a base64 digest of its length.
    pub fn parse(text: &str) -> Result<Self, TypeMetadataError> {
        let mut entries: Vec<(SriAlgorithm, Vec<u8>)> = Vec::new();
        for token in text.split_ascii_whitespace() {
            let Some((name, rest)) = token.split_once('-') else {
                continue;
            };
            let Some(algorithm) = SriAlgorithm::from_name(name) else {
                continue;
            };
            let encoded = rest.split_once('?').map_or(rest, |(digest, _)| digest);
            let digest = STANDARD
                .decode(encoded)
                .map_err(|_| TypeMetadataError::InvalidIntegrity)?;
            if digest.len() != algorithm.digest(b"").len() {
                return Err(TypeMetadataError::InvalidIntegrity);
            }
            entries.push((algorithm, digest));
        }
        let algorithm = entries
            .iter()
            .map(|(algorithm, _)| *algorithm)
            .max()
            .ok_or(TypeMetadataError::InvalidIntegrity)?;
        Ok(Self {
            algorithm,
            digests: entries
                .into_iter()
                .filter(|(candidate, _)| *candidate == algorithm)
                .map(|(_, digest)| digest)
                .collect(),
        })
    }

    /// The SHA-256 integrity string of `bytes`, as an issuer writes it.
    #[must_use]
    pub fn sha256_of(bytes: &[u8]) -> String {
        format!(
            "sha256-{}",
            STANDARD.encode(SriAlgorithm::Sha256.digest(bytes))
        )
    }

    /// Whether `bytes` match.
    #[must_use]
    pub fn matches(&self, bytes: &[u8]) -> bool {
        let actual = self.algorithm.digest(bytes);
        self.digests.contains(&actual)
    }
}

/// How a claim may be disclosed (`sd`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Disclosure {
    /// Always selectively disclosable.
    Always,
    /// Either way (the default).
    #[default]
    Allowed,
    /// Never selectively disclosable.
    Never,
}

/// The metadata of one claim (SD-JWT VC §4.4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaimMetadata {
    /// The claims path pointer: strings select members, non-negative integers array
    /// elements, `null` every element.
    pub path: Vec<Value>,
    /// Display information per locale.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub display: Vec<Value>,
    /// Whether every credential of the type carries the claim.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mandatory: bool,
    /// How the claim may be disclosed.
    #[serde(default)]
    pub sd: Disclosure,
    /// Its id in SVG templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub svg_id: Option<String>,
}

/// A Type Metadata document (SD-JWT VC §4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TypeMetadata {
    /// The type it describes.
    pub vct: String,
    /// A human-readable name, for developers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A human-readable description, for developers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The type this one extends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    /// The integrity of the extended type's document.
    #[serde(
        default,
        rename = "extends#integrity",
        skip_serializing_if = "Option::is_none"
    )]
    pub extends_integrity: Option<String>,
    /// Display information per locale.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub display: Vec<Value>,
    /// Claim metadata.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<ClaimMetadata>,
    /// Members of later versions or extensions, kept as they are.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl TypeMetadata {
    /// Parses and checks a document: `vct` present, each claim path non-empty and made of
    /// strings, non-negative integers and `null`, `display` entries objects with a `locale`.
    ///
    /// # Errors
    /// [`TypeMetadataError::Malformed`].
    pub fn from_json(value: Value) -> Result<Self, TypeMetadataError> {
        let vct = value
            .get("vct")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let malformed = |reason: String| TypeMetadataError::Malformed {
            vct: vct.clone(),
            reason,
        };
        let metadata: Self =
            serde_json::from_value(value).map_err(|err| malformed(err.to_string()))?;
        if metadata.vct.is_empty() {
            return Err(malformed("vct is missing".to_owned()));
        }
        for (i, claim) in metadata.claims.iter().enumerate() {
            let valid = !claim.path.is_empty()
                && claim
                    .path
                    .iter()
                    .all(|segment| segment.is_string() || segment.is_u64() || segment.is_null());
            if !valid {
                return Err(malformed(format!(
                    "claims[{i}].path is not a claims path pointer"
                )));
            }
        }
        let displays = metadata.display.iter().chain(
            metadata
                .claims
                .iter()
                .flat_map(|claim| claim.display.iter()),
        );
        for display in displays {
            if !display.get("locale").is_some_and(Value::is_string) {
                return Err(malformed("a display entry has no locale".to_owned()));
            }
        }
        Ok(metadata)
    }

    fn rule(&self, path: &[Value]) -> Option<&ClaimMetadata> {
        self.claims.iter().find(|claim| claim.path == path)
    }
}

/// Fetches the Type Metadata document of a `vct` (an HTTPS URL, a registry lookup, …): the
/// raw bytes, which the integrity covers.
#[async_trait]
pub trait TypeMetadataFetcher: fmt::Debug + Send + Sync {
    /// The document of `vct`.
    async fn fetch(&self, vct: &str) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>>;
}

/// A type with the types it extends, the type itself first.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedType {
    chain: Vec<TypeMetadata>,
}

impl ResolvedType {
    /// The type's document.
    #[must_use]
    pub fn metadata(&self) -> &TypeMetadata {
        &self.chain[0]
    }

    /// The type and the types it extends, the type itself first.
    #[must_use]
    pub fn chain(&self) -> &[TypeMetadata] {
        &self.chain
    }

    /// Checks that each type only tightens the rules of the types it extends: `sd` may
    /// change only from `allowed`, `mandatory` only to true.
    fn check_extensions(&self) -> Result<(), TypeMetadataError> {
        for pair in self.chain.windows(2) {
            let (child, parent) = (&pair[0], &pair[1]);
            for rule in &child.claims {
                let Some(inherited) = parent.rule(&rule.path) else {
                    continue;
                };
                let loosened = (inherited.sd != Disclosure::Allowed && rule.sd != inherited.sd)
                    || (inherited.mandatory && !rule.mandatory);
                if loosened {
                    return Err(TypeMetadataError::Loosened {
                        vct: child.vct.clone(),
                        path: pointer_text(&rule.path),
                    });
                }
            }
        }
        Ok(())
    }

    /// Checks a verified credential of this type against the claim rules, the extended
    /// types' first and the type's own last: a claim with `sd: always` must have come from
    /// a disclosure, one with `sd: never` must have been in the clear, and a mandatory claim
    /// that can never be hidden (`sd: never`) must be there. An undisclosed claim that may be
    /// selectively disclosed is not missing.
    ///
    /// # Errors
    /// [`TypeMetadataError::VctMismatch`] for a credential of another type,
    /// [`TypeMetadataError::ClaimRule`] for the first rule broken.
    pub fn check(&self, credential: &VerifiedSdJwtVc) -> Result<(), TypeMetadataError> {
        if credential.vct() != self.metadata().vct {
            return Err(TypeMetadataError::VctMismatch(self.metadata().vct.clone()));
        }
        let disclosed: HashSet<Vec<String>> = credential
            .sd_jwt()
            .disclosed()
            .iter()
            .map(|path| path.segments().to_vec())
            .collect();
        for metadata in self.chain.iter().rev() {
            for rule in &metadata.claims {
                let found = select(credential.claims(), &rule.path);
                let broken = |rule_text| TypeMetadataError::ClaimRule {
                    path: pointer_text(&rule.path),
                    rule: rule_text,
                };
                if rule.mandatory && rule.sd == Disclosure::Never && found.is_empty() {
                    return Err(broken(
                        "mandatory and never selectively disclosable, but missing",
                    ));
                }
                for path in &found {
                    let was_disclosed = disclosed.contains(path);
                    match rule.sd {
                        Disclosure::Always if !was_disclosed => {
                            return Err(broken("always selectively disclosable, but in the clear"));
                        }
                        Disclosure::Never if was_disclosed => {
                            return Err(broken("never selectively disclosable, but disclosed"));
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }
}

/// The concrete paths (member names and decimal indices) `pointer` selects in `claims`.
fn select(claims: &Map<String, Value>, pointer: &[Value]) -> Vec<Vec<String>> {
    let mut selected = vec![(Vec::new(), Value::Object(claims.clone()))];
    for segment in pointer {
        let mut next = Vec::new();
        for (path, value) in selected {
            match (segment, &value) {
                (Value::String(name), Value::Object(members)) => {
                    if let Some(member) = members.get(name) {
                        let mut path = path.clone();
                        path.push(name.clone());
                        next.push((path, member.clone()));
                    }
                }
                (Value::Number(index), Value::Array(items)) => {
                    let item = index
                        .as_u64()
                        .and_then(|index| usize::try_from(index).ok())
                        .and_then(|index| items.get(index).map(|item| (index, item)));
                    if let Some((index, item)) = item {
                        let mut path = path.clone();
                        path.push(index.to_string());
                        next.push((path, item.clone()));
                    }
                }
                (Value::Null, Value::Array(items)) => {
                    for (index, item) in items.iter().enumerate() {
                        let mut path = path.clone();
                        path.push(index.to_string());
                        next.push((path, item.clone()));
                    }
                }
                _ => {}
            }
        }
        selected = next;
    }
    selected.into_iter().map(|(path, _)| path).collect()
}

fn pointer_text(pointer: &[Value]) -> String {
    Value::Array(pointer.to_vec()).to_string()
}

/// Resolved documents by `vct` and integrity.
type DocumentCache = HashMap<(String, Option<String>), Arc<TypeMetadata>>;

/// Resolves types through a [`TypeMetadataFetcher`], keeping each resolved document by its
/// `vct` and integrity so that a type is fetched once.
pub struct TypeMetadataResolver {
    fetcher: Arc<dyn TypeMetadataFetcher>,
    cache: Mutex<DocumentCache>,
    capacity: usize,
}

impl fmt::Debug for TypeMetadataResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypeMetadataResolver")
            .field("fetcher", &self.fetcher)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl TypeMetadataResolver {
    /// A resolver over `fetcher` keeping up to 1,024 documents.
    #[must_use]
    pub fn new(fetcher: Arc<dyn TypeMetadataFetcher>) -> Self {
        Self {
            fetcher,
            cache: Mutex::new(HashMap::new()),
            capacity: 1024,
        }
    }

    /// Resolves `vct` (with the credential's `vct#integrity`, if any) and every type it
    /// extends, checking each document's integrity, its `vct`, and that extending types only
    /// tighten the rules.
    ///
    /// # Errors
    /// The [`TypeMetadataError`] of the first problem met.
    pub async fn resolve(
        &self,
        vct: &str,
        integrity: Option<&str>,
    ) -> Result<ResolvedType, TypeMetadataError> {
        let mut chain = Vec::new();
        let mut seen = HashSet::new();
        let mut next = Some((vct.to_owned(), integrity.map(str::to_owned)));
        while let Some((vct, integrity)) = next.take() {
            if !seen.insert(vct.clone()) || chain.len() == MAX_EXTENDS_DEPTH {
                return Err(TypeMetadataError::ExtendsChain(vct));
            }
            let metadata = self.document(&vct, integrity.as_deref()).await?;
            next = metadata
                .extends
                .clone()
                .map(|extends| (extends, metadata.extends_integrity.clone()));
            chain.push(metadata.as_ref().clone());
        }
        let resolved = ResolvedType { chain };
        resolved.check_extensions()?;
        Ok(resolved)
    }

    async fn document(
        &self,
        vct: &str,
        integrity: Option<&str>,
    ) -> Result<Arc<TypeMetadata>, TypeMetadataError> {
        let key = (vct.to_owned(), integrity.map(str::to_owned));
        if let Some(found) = self.lock().get(&key) {
            return Ok(Arc::clone(found));
        }
        let expected = integrity.map(Integrity::parse).transpose()?;
        let bytes = self
            .fetcher
            .fetch(vct)
            .await
            .map_err(|source| TypeMetadataError::Fetch {
                vct: vct.to_owned(),
                source,
            })?;
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(TypeMetadataError::Malformed {
                vct: vct.to_owned(),
                reason: "the document is too large".to_owned(),
            });
        }
        if let Some(expected) = &expected
            && !expected.matches(&bytes)
        {
            return Err(TypeMetadataError::IntegrityMismatch(vct.to_owned()));
        }
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|err| TypeMetadataError::Malformed {
                vct: vct.to_owned(),
                reason: err.to_string(),
            })?;
        let metadata = TypeMetadata::from_json(value)?;
        if metadata.vct != vct {
            return Err(TypeMetadataError::VctMismatch(vct.to_owned()));
        }
        let metadata = Arc::new(metadata);
        let mut cache = self.lock();
        if cache.len() >= self.capacity {
            cache.clear();
        }
        cache.insert(key, Arc::clone(&metadata));
        Ok(metadata)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DocumentCache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
