//! The data structures of ISO/IEC 18013-5 §8.3.2.1.2 and §9.1.2.4 and their CBOR forms.

use std::collections::BTreeMap;
use std::time::SystemTime;

use ciborium::Value;
use coset::{AsCborValue as _, CoseKey, CoseMac0, CoseSign1};
use edk_core::encoding::{HashAlg, b64url_decode, b64url_encode};

use crate::cbor::{
    Fields, Limits, decode, encode, into_array, into_bytes, into_text_map, into_u64, parse_tdate,
    tag24, tdate, untag24,
};
use crate::cose::{cose_key_from_value, cose_key_to_value};
use crate::error::{Error, malformed};

/// The MSO `version` this library writes and reads.
pub const MSO_VERSION: &str = "1.0";
/// The `DeviceResponse` `version` this library writes and reads.
pub const DEVICE_RESPONSE_VERSION: &str = "1.0";
/// The digest algorithm this library writes and checks.
pub const DIGEST_ALGORITHM: &str = "SHA-256";

/// One data element signed by the issuer (§8.3.2.1.2.2 `IssuerSignedItem`).
#[derive(Clone, Debug, PartialEq)]
pub struct IssuerSignedItem {
    /// The key of this element's digest in the MSO's `valueDigests`.
    pub digest_id: u64,
    /// The salt that makes the digest unguessable, at least 16 bytes.
    pub random: Vec<u8>,
    /// The element's name, e.g. `family_name`.
    pub element_identifier: String,
    /// The element's value.
    pub element_value: Value,
}

impl IssuerSignedItem {
    fn to_value(&self) -> Value {
        Value::Map(vec![
            (text("digestID"), Value::Integer(self.digest_id.into())),
            (text("random"), Value::Bytes(self.random.clone())),
            (text("elementIdentifier"), text(&self.element_identifier)),
            (text("elementValue"), self.element_value.clone()),
        ])
    }

    fn from_value(value: Value) -> Result<Self, Error> {
        const WHAT: &str = "IssuerSignedItem";
        let mut fields = Fields::new(value, WHAT)?;
        Ok(Self {
            digest_id: into_u64(&fields.require("digestID")?, WHAT)?,
            random: into_bytes(fields.require("random")?, WHAT)?,
            element_identifier: fields.text("elementIdentifier")?,
            element_value: fields.require("elementValue")?,
        })
    }
}

/// An [`IssuerSignedItem`] with its encoding, as it travels: `IssuerSignedItemBytes`, the
/// encoded item in a tag 24 byte string. The digest covers these exact bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct IssuerSignedItemBytes {
    item: IssuerSignedItem,
    encoded: Vec<u8>,
}

impl IssuerSignedItemBytes {
    /// The item encoded once, to be signed and sent.
    #[must_use]
    pub fn new(item: IssuerSignedItem) -> Self {
        let encoded = encode(&item.to_value());
        Self { item, encoded }
    }

    /// The item.
    #[must_use]
    pub const fn item(&self) -> &IssuerSignedItem {
        &self.item
    }

    /// The SHA-256 digest of `#6.24(bstr .cbor IssuerSignedItem)` (§9.1.2.5).
    #[must_use]
    pub fn digest(&self) -> Vec<u8> {
        HashAlg::Sha256.digest(&encode(&self.to_value()))
    }

    fn to_value(&self) -> Value {
        tag24(self.encoded.clone())
    }

    fn from_value(value: Value, limits: &Limits) -> Result<Self, Error> {
        let encoded = untag24(value, "IssuerSignedItemBytes")?;
        let item = IssuerSignedItem::from_value(decode(&encoded, limits, "IssuerSignedItem")?)?;
        Ok(Self { item, encoded })
    }
}

/// The issuer-signed part of a document (§8.3.2.1.2.2 `IssuerSigned`): the disclosed items by
/// name space and the issuer's `COSE_Sign1` over the Mobile Security Object.
///
/// This is what OpenID4VCI returns for `mso_mdoc`, as base64url of its CBOR
/// ([`IssuerSigned::to_base64url`]).
#[derive(Clone, Debug, PartialEq)]
pub struct IssuerSigned {
    /// The items by name space.
    pub name_spaces: BTreeMap<String, Vec<IssuerSignedItemBytes>>,
    /// `issuerAuth`: the `COSE_Sign1` whose payload is the tag 24 MSO and whose unprotected
    /// header holds the document signer's `x5chain`.
    pub issuer_auth: CoseSign1,
}

impl IssuerSigned {
    /// The CBOR encoding.
    ///
    /// # Errors
    /// [`Error::Unencodable`] when `issuer_auth` was given a header label twice.
    pub fn to_cbor(&self) -> Result<Vec<u8>, Error> {
        Ok(encode(&self.to_value()?))
    }

    /// Base64url (no padding) of the CBOR encoding, the OpenID4VCI `credential` of `mso_mdoc`.
    ///
    /// # Errors
    /// As [`IssuerSigned::to_cbor`].
    pub fn to_base64url(&self) -> Result<String, Error> {
        Ok(b64url_encode(self.to_cbor()?))
    }

    /// Parses the CBOR encoding within `limits`.
    ///
    /// # Errors
    /// [`Error::TooLarge`], [`Error::TooDeep`] or [`Error::Malformed`].
    pub fn from_cbor(bytes: &[u8], limits: &Limits) -> Result<Self, Error> {
        Self::from_value(decode(bytes, limits, "IssuerSigned")?, limits)
    }

    /// Parses base64url (with or without padding) of the CBOR encoding within `limits`.
    ///
    /// # Errors
    /// As [`IssuerSigned::from_cbor`]; [`Error::Malformed`] when the text is not base64url.
    pub fn from_base64url(text: &str, limits: &Limits) -> Result<Self, Error> {
        if text.len() > limits.max_bytes.saturating_mul(4) / 3 + 4 {
            return Err(Error::TooLarge {
                what: "IssuerSigned",
                size: text.len(),
                limit: limits.max_bytes,
            });
        }
        let bytes = b64url_decode(text.trim_end_matches('='))
            .map_err(|_| malformed("IssuerSigned", "not base64url"))?;
        Self::from_cbor(&bytes, limits)
    }

    /// The Mobile Security Object in `issuerAuth`'s payload, not yet verified.
    ///
    /// # Errors
    /// [`Error::Malformed`] when the payload is missing or not a tag 24 MSO.
    pub fn mso(&self, limits: &Limits) -> Result<MobileSecurityObject, Error> {
        let payload = self
            .issuer_auth
            .payload
            .as_deref()
            .ok_or(malformed("issuerAuth", "the payload is detached"))?;
        let wrapped = decode(payload, limits, "MobileSecurityObjectBytes")?;
        let encoded = untag24(wrapped, "MobileSecurityObjectBytes")?;
        MobileSecurityObject::from_value(decode(&encoded, limits, "MobileSecurityObject")?)
    }

    pub(crate) fn to_value(&self) -> Result<Value, Error> {
        let name_spaces = self
            .name_spaces
            .iter()
            .map(|(namespace, items)| {
                (
                    text(namespace),
                    Value::Array(items.iter().map(IssuerSignedItemBytes::to_value).collect()),
                )
            })
            .collect();
        let issuer_auth = self
            .issuer_auth
            .clone()
            .to_cbor_value()
            .map_err(|_| Error::Unencodable { what: "issuerAuth" })?;
        Ok(Value::Map(vec![
            (text("nameSpaces"), Value::Map(name_spaces)),
            (text("issuerAuth"), issuer_auth),
        ]))
    }

    pub(crate) fn from_value(value: Value, limits: &Limits) -> Result<Self, Error> {
        const WHAT: &str = "IssuerSigned";
        let mut fields = Fields::new(value, WHAT)?;
        let mut name_spaces = BTreeMap::new();
        if let Some(value) = fields.take("nameSpaces") {
            for (namespace, items) in into_text_map(value, WHAT)? {
                let items = into_array(items, WHAT)?
                    .into_iter()
                    .map(|item| IssuerSignedItemBytes::from_value(item, limits))
                    .collect::<Result<Vec<_>, _>>()?;
                if name_spaces.insert(namespace, items).is_some() {
                    return Err(malformed(WHAT, "a name space appears twice"));
                }
            }
        }
        let issuer_auth = match fields.require("issuerAuth")? {
            Value::Tag(18, inner) => *inner,
            untagged => untagged,
        };
        let issuer_auth = CoseSign1::from_cbor_value(issuer_auth)
            .map_err(|_| malformed("issuerAuth", "not a COSE_Sign1"))?;
        Ok(Self {
            name_spaces,
            issuer_auth,
        })
    }
}

/// The Mobile Security Object (§9.1.2.4): the digests the issuer signs, the holder's device
/// key, the document type and the validity.
#[derive(Clone, Debug, PartialEq)]
pub struct MobileSecurityObject {
    /// `version`, `"1.0"`.
    pub version: String,
    /// `digestAlgorithm`, `"SHA-256"` here.
    pub digest_algorithm: String,
    /// `valueDigests`: per name space, digest ID to digest.
    pub value_digests: BTreeMap<String, BTreeMap<u64, Vec<u8>>>,
    /// `deviceKeyInfo.deviceKey`: the holder's public key.
    pub device_key: CoseKey,
    /// `docType`.
    pub doc_type: String,
    /// `validityInfo`.
    pub validity_info: ValidityInfo,
    /// `status`: where the document's status is published (a Token Status List entry).
    pub status: Option<StatusListReference>,
}

/// The `status_list` member of an MSO's `status` (Token Status List, COSE form): the index
/// of the document in the list and the URI of the Status List Token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusListReference {
    /// `idx`.
    pub idx: u64,
    /// `uri`.
    pub uri: String,
}

impl StatusListReference {
    fn to_value(&self) -> Value {
        Value::Map(vec![(
            text("status_list"),
            Value::Map(vec![
                (text("idx"), Value::Integer(self.idx.into())),
                (text("uri"), text(&self.uri)),
            ]),
        )])
    }

    /// The `status_list` of a `status` map; `None` when the map names only other
    /// mechanisms.
    fn from_value(value: Value) -> Result<Option<Self>, Error> {
        const WHAT: &str = "status";
        let mut status = Fields::new(value, WHAT)?;
        let Some(list) = status.take("status_list") else {
            return Ok(None);
        };
        let mut list = Fields::new(list, "status_list")?;
        Ok(Some(Self {
            idx: into_u64(&list.require("idx")?, "status_list")?,
            uri: list.text("uri")?,
        }))
    }
}

impl MobileSecurityObject {
    pub(crate) fn to_value(&self) -> Result<Value, Error> {
        let digests = self
            .value_digests
            .iter()
            .map(|(namespace, digests)| {
                (
                    text(namespace),
                    Value::Map(
                        digests
                            .iter()
                            .map(|(id, digest)| {
                                (Value::Integer((*id).into()), Value::Bytes(digest.clone()))
                            })
                            .collect(),
                    ),
                )
            })
            .collect();
        let mut entries = vec![
            (text("version"), text(&self.version)),
            (text("digestAlgorithm"), text(&self.digest_algorithm)),
            (text("valueDigests"), Value::Map(digests)),
            (
                text("deviceKeyInfo"),
                Value::Map(vec![(
                    text("deviceKey"),
                    cose_key_to_value(self.device_key.clone())?,
                )]),
            ),
            (text("docType"), text(&self.doc_type)),
            (text("validityInfo"), self.validity_info.to_value()),
        ];
        if let Some(status) = &self.status {
            entries.push((text("status"), status.to_value()));
        }
        Ok(Value::Map(entries))
    }

    fn from_value(value: Value) -> Result<Self, Error> {
        const WHAT: &str = "MobileSecurityObject";
        let mut fields = Fields::new(value, WHAT)?;
        let mut value_digests = BTreeMap::new();
        for (namespace, digests) in into_text_map(fields.require("valueDigests")?, WHAT)? {
            let Value::Map(entries) = digests else {
                return Err(malformed(WHAT, "valueDigests of a name space is not a map"));
            };
            let mut map = BTreeMap::new();
            for (id, digest) in entries {
                if map
                    .insert(into_u64(&id, WHAT)?, into_bytes(digest, WHAT)?)
                    .is_some()
                {
                    return Err(malformed(WHAT, "a digest ID appears twice"));
                }
            }
            value_digests.insert(namespace, map);
        }
        let mut key_info = Fields::new(fields.require("deviceKeyInfo")?, "deviceKeyInfo")?;
        Ok(Self {
            version: fields.text("version")?,
            digest_algorithm: fields.text("digestAlgorithm")?,
            value_digests,
            device_key: cose_key_from_value(key_info.require("deviceKey")?)?,
            doc_type: fields.text("docType")?,
            validity_info: ValidityInfo::from_value(fields.require("validityInfo")?)?,
            status: match fields.take("status") {
                Some(status) => StatusListReference::from_value(status)?,
                None => None,
            },
        })
    }
}

/// `validityInfo` (§9.1.2.4): when the MSO was signed and the window it is valid in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValidityInfo {
    /// `signed`.
    pub signed: SystemTime,
    /// `validFrom`.
    pub valid_from: SystemTime,
    /// `validUntil`.
    pub valid_until: SystemTime,
    /// `expectedUpdate`, when the issuer names one.
    pub expected_update: Option<SystemTime>,
}

impl ValidityInfo {
    fn to_value(self) -> Value {
        let mut entries = vec![
            (text("signed"), tdate(self.signed)),
            (text("validFrom"), tdate(self.valid_from)),
            (text("validUntil"), tdate(self.valid_until)),
        ];
        if let Some(update) = self.expected_update {
            entries.push((text("expectedUpdate"), tdate(update)));
        }
        Value::Map(entries)
    }

    fn from_value(value: Value) -> Result<Self, Error> {
        const WHAT: &str = "validityInfo";
        let mut fields = Fields::new(value, WHAT)?;
        Ok(Self {
            signed: parse_tdate(fields.require("signed")?, WHAT)?,
            valid_from: parse_tdate(fields.require("validFrom")?, WHAT)?,
            valid_until: parse_tdate(fields.require("validUntil")?, WHAT)?,
            expected_update: fields
                .take("expectedUpdate")
                .map(|value| parse_tdate(value, WHAT))
                .transpose()?,
        })
    }
}

/// A response from the holder's device (§8.3.2.1.2.2 `DeviceResponse`).
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceResponse {
    /// `version`, `"1.0"`.
    pub version: String,
    /// `documents`.
    pub documents: Vec<Document>,
    /// `status`: 0 is OK.
    pub status: u64,
}

impl DeviceResponse {
    /// A version 1.0 response with status OK.
    #[must_use]
    pub fn new(documents: Vec<Document>) -> Self {
        Self {
            version: DEVICE_RESPONSE_VERSION.to_owned(),
            documents,
            status: 0,
        }
    }

    /// The CBOR encoding.
    ///
    /// # Errors
    /// [`Error::Unencodable`] when a COSE structure was given a header label twice.
    pub fn to_cbor(&self) -> Result<Vec<u8>, Error> {
        let documents = self
            .documents
            .iter()
            .map(Document::to_value)
            .collect::<Result<_, _>>()?;
        Ok(encode(&Value::Map(vec![
            (text("version"), text(&self.version)),
            (text("documents"), Value::Array(documents)),
            (text("status"), Value::Integer(self.status.into())),
        ])))
    }

    /// Parses the CBOR encoding within `limits`.
    ///
    /// # Errors
    /// [`Error::TooLarge`], [`Error::TooDeep`] or [`Error::Malformed`].
    pub fn from_cbor(bytes: &[u8], limits: &Limits) -> Result<Self, Error> {
        const WHAT: &str = "DeviceResponse";
        let mut fields = Fields::new(decode(bytes, limits, WHAT)?, WHAT)?;
        let documents = match fields.take("documents") {
            Some(documents) => into_array(documents, WHAT)?
                .into_iter()
                .map(|document| Document::from_value(document, limits))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(Self {
            version: fields.text("version")?,
            documents,
            status: into_u64(&fields.require("status")?, WHAT)?,
        })
    }
}

/// One document of a [`DeviceResponse`].
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// `docType`.
    pub doc_type: String,
    /// `issuerSigned`: the disclosed items and the issuer's signature.
    pub issuer_signed: IssuerSigned,
    /// `deviceSigned`: the device's authentication of this presentation.
    pub device_signed: DeviceSigned,
}

impl Document {
    fn to_value(&self) -> Result<Value, Error> {
        Ok(Value::Map(vec![
            (text("docType"), text(&self.doc_type)),
            (text("issuerSigned"), self.issuer_signed.to_value()?),
            (text("deviceSigned"), self.device_signed.to_value()?),
        ]))
    }

    fn from_value(value: Value, limits: &Limits) -> Result<Self, Error> {
        const WHAT: &str = "Document";
        let mut fields = Fields::new(value, WHAT)?;
        Ok(Self {
            doc_type: fields.text("docType")?,
            issuer_signed: IssuerSigned::from_value(fields.require("issuerSigned")?, limits)?,
            device_signed: DeviceSigned::from_value(fields.require("deviceSigned")?)?,
        })
    }
}

/// `DeviceSigned`: the device-signed name spaces and the device's authentication.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceSigned {
    /// The encoded `DeviceNameSpaces` (the content of `DeviceNameSpacesBytes`), as received.
    pub name_spaces: Vec<u8>,
    /// `deviceAuth`.
    pub device_auth: DeviceAuth,
}

impl DeviceSigned {
    fn to_value(&self) -> Result<Value, Error> {
        let auth = match &self.device_auth {
            DeviceAuth::Signature(sign1) => (
                text("deviceSignature"),
                sign1
                    .clone()
                    .to_cbor_value()
                    .map_err(|_| Error::Unencodable {
                        what: "deviceSignature",
                    })?,
            ),
            DeviceAuth::Mac(mac0) => (
                text("deviceMac"),
                mac0.clone()
                    .to_cbor_value()
                    .map_err(|_| Error::Unencodable { what: "deviceMac" })?,
            ),
        };
        Ok(Value::Map(vec![
            (text("nameSpaces"), tag24(self.name_spaces.clone())),
            (text("deviceAuth"), Value::Map(vec![auth])),
        ]))
    }

    fn from_value(value: Value) -> Result<Self, Error> {
        const WHAT: &str = "DeviceSigned";
        let mut fields = Fields::new(value, WHAT)?;
        let name_spaces = untag24(fields.require("nameSpaces")?, "DeviceNameSpacesBytes")?;
        let mut auth = Fields::new(fields.require("deviceAuth")?, "DeviceAuth")?;
        let device_auth = match (auth.take("deviceSignature"), auth.take("deviceMac")) {
            (Some(signature), None) => DeviceAuth::Signature(
                CoseSign1::from_cbor_value(signature)
                    .map_err(|_| malformed("deviceSignature", "not a COSE_Sign1"))?,
            ),
            (None, Some(mac)) => DeviceAuth::Mac(
                CoseMac0::from_cbor_value(mac)
                    .map_err(|_| malformed("deviceMac", "not a COSE_Mac0"))?,
            ),
            _ => {
                return Err(malformed(
                    "DeviceAuth",
                    "expected exactly one of deviceSignature and deviceMac",
                ));
            }
        };
        Ok(Self {
            name_spaces,
            device_auth,
        })
    }
}

/// `DeviceAuth`: how the device authenticated the presentation.
#[derive(Clone, Debug, PartialEq)]
pub enum DeviceAuth {
    /// `deviceMac`: a `COSE_Mac0` with a key agreed with the reader (not verified here).
    Mac(CoseMac0),
    /// `deviceSignature`: a `COSE_Sign1` with a detached payload.
    Signature(CoseSign1),
}

/// A CBOR text value.
pub(crate) fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}
