//! Issuing: an [`IssuerSigned`] from claims, the holder's device key and the document signer.

use std::collections::{BTreeMap, BTreeSet};

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use ciborium::Value;
use coset::CoseKey;
use edk_core::jose::{Jwk, Signer};

use crate::cbor::{encode, full_date, json_to_cbor, tag24};
use crate::cose::{cose_key_from_jwk, sign1, x5chain_header};
use crate::error::{Error, malformed};
use crate::model::{
    DIGEST_ALGORITHM, IssuerSigned, IssuerSignedItem, IssuerSignedItemBytes, MSO_VERSION,
    MobileSecurityObject, StatusListReference, ValidityInfo,
};

/// The length of each item's salt (`random`), in bytes.
pub const SALT_LEN: usize = 32;

/// Elements whose JSON strings are written as `full-date` (tag 1004) unless the builder is
/// told otherwise: the dates of the ISO/IEC 18013-5 mDL (`birth_date`, `issue_date`,
/// `expiry_date`) and of the EU PID (`birth_date`, `issuance_date`, `expiry_date`).
pub const DEFAULT_FULL_DATE_ELEMENTS: [&str; 4] =
    ["birth_date", "issue_date", "expiry_date", "issuance_date"];

/// Builds and signs an [`IssuerSigned`].
///
/// Claims come by name space, from JSON ([`IssuerSignedBuilder::claims`], mapped by
/// [`json_to_cbor`](crate::cbor::json_to_cbor), with the strings of date elements as
/// `full-date`) or as CBOR values ([`IssuerSignedBuilder::element`]). Each item gets a
/// random salt of [`SALT_LEN`] bytes and a random digest ID, both from the operating
/// system's CSPRNG.
#[derive(Clone, Debug)]
pub struct IssuerSignedBuilder {
    doc_type: String,
    device_key: CoseKey,
    validity: ValidityInfo,
    name_spaces: BTreeMap<String, Vec<(String, Value)>>,
    full_date_elements: BTreeSet<String>,
    status: Option<StatusListReference>,
}

impl IssuerSignedBuilder {
    /// A builder for a document of `doc_type` bound to `device_key` (the holder's proof key),
    /// valid as `validity` says.
    ///
    /// # Errors
    /// [`Error::InvalidDeviceKey`] when the key is not EC P-256/P-384 or Ed25519, and
    /// [`Error::Malformed`] when `validUntil` precedes `validFrom`.
    pub fn new(
        doc_type: impl Into<String>,
        device_key: &Jwk,
        validity: ValidityInfo,
    ) -> Result<Self, Error> {
        if validity.valid_until < validity.valid_from {
            return Err(malformed("validityInfo", "validUntil precedes validFrom"));
        }
        let device_key = cose_key_from_jwk(device_key)?;
        Ok(Self {
            doc_type: doc_type.into(),
            device_key,
            validity,
            name_spaces: BTreeMap::new(),
            full_date_elements: DEFAULT_FULL_DATE_ELEMENTS
                .iter()
                .map(|&name| name.to_owned())
                .collect(),
            status: None,
        })
    }

    /// Replaces the elements whose JSON strings are written as `full-date` (tag 1004).
    #[must_use]
    pub fn full_date_elements<I, S>(mut self, elements: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.full_date_elements = elements.into_iter().map(Into::into).collect();
        self
    }

    /// Gives the document a `status` in the MSO: entry `idx` of the Status List Token at
    /// `uri`.
    #[must_use]
    pub fn status_list(mut self, idx: u64, uri: impl Into<String>) -> Self {
        self.status = Some(StatusListReference {
            idx,
            uri: uri.into(),
        });
        self
    }

    /// Adds the members of a JSON object as elements of `namespace`.
    ///
    /// # Errors
    /// [`Error::InvalidClaim`] when a date element's string is not a `full-date`
    /// (`YYYY-MM-DD`), or an element is given twice.
    pub fn claims(
        mut self,
        namespace: &str,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, Error> {
        for (element, value) in claims {
            let value = match value {
                serde_json::Value::String(text) if self.full_date_elements.contains(element) => {
                    full_date(text).ok_or_else(|| Error::InvalidClaim {
                        namespace: namespace.to_owned(),
                        element: element.clone(),
                        reason: "a date element must be a full-date (YYYY-MM-DD)",
                    })?
                }
                other => json_to_cbor(other),
            };
            self = self.element(namespace, element, value)?;
        }
        Ok(self)
    }

    /// Adds one element with a CBOR value.
    ///
    /// # Errors
    /// [`Error::InvalidClaim`] when the element is already in the name space.
    pub fn element(mut self, namespace: &str, element: &str, value: Value) -> Result<Self, Error> {
        let items = self.name_spaces.entry(namespace.to_owned()).or_default();
        if items.iter().any(|(name, _)| name == element) {
            return Err(Error::InvalidClaim {
                namespace: namespace.to_owned(),
                element: element.to_owned(),
                reason: "the element is given twice",
            });
        }
        items.push((element.to_owned(), value));
        Ok(self)
    }

    /// Signs the document with `signer`, the document signer whose certificate heads
    /// `certificate_chain` (DER, leaf first, without the IACA root), carried as `x5chain`.
    ///
    /// # Errors
    /// [`Error::Malformed`] for an empty chain, [`Error::Unsupported`] when the signer's
    /// algorithm is not ES256, ES384 or EdDSA, and [`Error::Sign`] when signing fails.
    pub async fn sign(
        self,
        signer: &dyn Signer,
        certificate_chain: &[Vec<u8>],
    ) -> Result<IssuerSigned, Error> {
        if certificate_chain.is_empty() {
            return Err(malformed(
                "certificate chain",
                "no document signer certificate",
            ));
        }
        let rng = SystemRandom::new();
        let mut name_spaces = BTreeMap::new();
        let mut value_digests = BTreeMap::new();
        for (namespace, elements) in self.name_spaces {
            let ids = digest_ids(&rng, elements.len())?;
            let mut items = Vec::with_capacity(elements.len());
            let mut digests = BTreeMap::new();
            for ((element_identifier, element_value), digest_id) in elements.into_iter().zip(ids) {
                let mut random = vec![0; SALT_LEN];
                rng.fill(&mut random).map_err(|_| rng_failed())?;
                let item = IssuerSignedItemBytes::new(IssuerSignedItem {
                    digest_id,
                    random,
                    element_identifier,
                    element_value,
                });
                digests.insert(digest_id, item.digest());
                items.push(item);
            }
            value_digests.insert(namespace.clone(), digests);
            name_spaces.insert(namespace, items);
        }
        let mso = MobileSecurityObject {
            version: MSO_VERSION.to_owned(),
            digest_algorithm: DIGEST_ALGORITHM.to_owned(),
            value_digests,
            device_key: self.device_key,
            doc_type: self.doc_type,
            validity_info: self.validity,
            status: self.status,
        };
        let payload = encode(&tag24(encode(&mso.to_value()?)));
        let issuer_auth = sign1(signer, payload, false, x5chain_header(certificate_chain)).await?;
        Ok(IssuerSigned {
            name_spaces,
            issuer_auth,
        })
    }
}

/// `count` distinct random digest IDs below 2^31 (safe as numbers in every CBOR library).
fn digest_ids(rng: &SystemRandom, count: usize) -> Result<Vec<u64>, Error> {
    let mut ids = BTreeSet::new();
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let mut bytes = [0; 4];
        rng.fill(&mut bytes).map_err(|_| rng_failed())?;
        let id = u64::from(u32::from_be_bytes(bytes) >> 1);
        if ids.insert(id) {
            out.push(id);
        }
    }
    Ok(out)
}

fn rng_failed() -> Error {
    Error::Sign(edk_core::jose::SignError::new(
        edk_core::ErrorKind::Internal,
        "the system random number generator failed",
    ))
}
