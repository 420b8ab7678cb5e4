//! Verification for verifiers: an [`IssuerSigned`] against trust anchors, and a
//! [`DeviceResponse`] against a session transcript.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ciborium::Value;
use edk_core::clock::Clock;
use edk_core::jose::{Jwk, KeyQuery, KeyResolver as _, VerifyingKey};
use edk_core::x5c::X5cResolver;

use crate::cbor::{Limits, decode, rfc3339};
use crate::cose::{jose_algorithm, jwk_from_cose_key, verify1, x5chain};
use crate::error::{Error, malformed};
use crate::mac::{MacKeyAgreement, verify_mac0};
use crate::model::{
    DIGEST_ALGORITHM, DeviceAuth, DeviceResponse, Document, IssuerSigned, MSO_VERSION,
    MobileSecurityObject,
};
use crate::transcript::{SessionTranscript, device_authentication_bytes};

/// Verifies mdocs issued under the configured IACA trust anchors, at the injected clock's
/// time and within [`Limits`].
#[derive(Debug)]
pub struct Verifier {
    chains: X5cResolver,
    clock: Arc<dyn Clock>,
    limits: Limits,
}

/// A document whose issuer signature, chain, digests, type and validity were checked.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct VerifiedDocument {
    /// The document type.
    pub doc_type: String,
    /// The verified Mobile Security Object.
    pub mso: MobileSecurityObject,
    /// The holder's device key from the MSO, as a JWK.
    pub device_key: Jwk,
    /// The disclosed elements whose digests matched, by name space and element identifier.
    pub name_spaces: BTreeMap<String, BTreeMap<String, Value>>,
    /// The document signer certificate (DER), the `x5chain` leaf.
    pub document_signer: Vec<u8>,
}

/// The extended key usage of document signer certificates (`id-mdl-kp-mdlDS`).
const MDL_DS_EKU: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.0.18013.5.1.2");

/// Whether the DER certificate carries the document signer extended key usage.
fn is_document_signer(der: &[u8]) -> bool {
    use der::Decode as _;
    x509_cert::Certificate::from_der(der)
        .ok()
        .and_then(|certificate| {
            certificate
                .tbs_certificate()
                .get_extension::<x509_cert::ext::pkix::ExtendedKeyUsage>()
                .ok()
                .flatten()
        })
        .is_some_and(|(_, usages)| usages.0.contains(&MDL_DS_EKU))
}

impl Verifier {
    /// A verifier trusting the DER certificates `iaca_roots`, reading time from `clock`.
    ///
    /// # Errors
    /// [`Error::Malformed`] when an anchor is not a certificate.
    pub fn new(
        iaca_roots: impl IntoIterator<Item = Vec<u8>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        let chains = X5cResolver::new(iaca_roots, Arc::clone(&clock))
            .map_err(|_| malformed("trust anchor", "not a DER certificate"))?;
        Ok(Self {
            chains,
            clock,
            limits: Limits::DEFAULT,
        })
    }

    /// The verifier with other input limits.
    #[must_use]
    pub const fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The input limits, for parsing what this verifier is given.
    #[must_use]
    pub const fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Verifies `issuer_signed` as a document of type `doc_type`: the `issuerAuth` signature
    /// with the `x5chain` leaf, the chain up to a trust anchor, the leaf's document signer
    /// extended key usage, the MSO's version and digest algorithm, its `docType`, its validity
    /// window at the clock's time, and the digest of every item presented.
    ///
    /// # Errors
    /// [`Error::UntrustedIssuer`], [`Error::InvalidIssuerSignature`],
    /// [`Error::NotADocumentSigner`],
    /// [`Error::DocTypeMismatch`], [`Error::NotYetValid`], [`Error::Expired`],
    /// [`Error::DigestMismatch`], [`Error::Unsupported`] or [`Error::Malformed`].
    pub async fn verify_issuer_signed(
        &self,
        issuer_signed: &IssuerSigned,
        doc_type: &str,
    ) -> Result<VerifiedDocument, Error> {
        let auth = &issuer_signed.issuer_auth;
        let alg = jose_algorithm(&auth.protected.header)?;
        let chain = match x5chain(&auth.unprotected) {
            Ok(chain) => chain,
            Err(missing) => x5chain(&auth.protected.header).map_err(|_| missing)?,
        };
        let document_signer = chain
            .first()
            .cloned()
            .ok_or(malformed("x5chain", "no certificate"))?;
        let encoded: Vec<String> = chain.iter().map(|der| STANDARD.encode(der)).collect();
        let key = self
            .chains
            .resolve(&KeyQuery::new(alg).with_x5c(Some(&encoded)))
            .await
            .map_err(Error::UntrustedIssuer)?;
        verify1(auth, &key, None).map_err(|()| Error::InvalidIssuerSignature)?;
        if !is_document_signer(&document_signer) {
            return Err(Error::NotADocumentSigner);
        }

        let mso = issuer_signed.mso(&self.limits)?;
        if mso.version != MSO_VERSION {
            return Err(Error::Unsupported {
                what: "MSO version",
                value: mso.version,
            });
        }
        if mso.digest_algorithm != DIGEST_ALGORITHM {
            return Err(Error::Unsupported {
                what: "digest algorithm",
                value: mso.digest_algorithm,
            });
        }
        if mso.doc_type != doc_type {
            return Err(Error::DocTypeMismatch {
                expected: doc_type.to_owned(),
                found: mso.doc_type,
            });
        }
        let now = self.clock.now();
        let validity = &mso.validity_info;
        if now < validity.valid_from {
            return Err(Error::NotYetValid {
                valid_from: rfc3339(validity.valid_from),
            });
        }
        if now > validity.valid_until {
            return Err(Error::Expired {
                valid_until: rfc3339(validity.valid_until),
            });
        }

        let mut name_spaces = BTreeMap::new();
        for (namespace, items) in &issuer_signed.name_spaces {
            let digests = mso.value_digests.get(namespace);
            let mut elements = BTreeMap::new();
            for item in items {
                let element = &item.item().element_identifier;
                let expected = digests.and_then(|digests| digests.get(&item.item().digest_id));
                if expected != Some(&item.digest()) {
                    return Err(Error::DigestMismatch {
                        namespace: namespace.clone(),
                        element: element.clone(),
                    });
                }
                if elements
                    .insert(element.clone(), item.item().element_value.clone())
                    .is_some()
                {
                    return Err(malformed("IssuerSigned", "an element is presented twice"));
                }
            }
            name_spaces.insert(namespace.clone(), elements);
        }
        let device_key = jwk_from_cose_key(&mso.device_key)?;
        Ok(VerifiedDocument {
            doc_type: mso.doc_type.clone(),
            mso,
            device_key,
            name_spaces,
            document_signer,
        })
    }

    /// Verifies every document of `response`: its issuer-signed part as
    /// [`Verifier::verify_issuer_signed`] does for the document's `docType`, and its
    /// `deviceSignature` over `DeviceAuthenticationBytes` for `transcript` with the MSO's
    /// device key (§9.1.3).
    ///
    /// # Errors
    /// Those of [`Verifier::verify_issuer_signed`]; [`Error::InvalidDeviceSignature`] when
    /// the device signature does not verify (another key, another transcript),
    /// [`Error::Unsupported`] for `deviceMac`, a response version other than 1.0 or a
    /// status other than OK, and [`Error::Malformed`] for a response without documents.
    pub async fn verify_device_response(
        &self,
        response: &DeviceResponse,
        transcript: &SessionTranscript,
    ) -> Result<Vec<VerifiedDocument>, Error> {
        self.verify_device_response_with(response, transcript, None)
            .await
    }

    /// As [`Verifier::verify_device_response`], also accepting documents authenticated by
    /// `deviceMac` (§9.1.3.5) under the key agreed between `reader_key` (the reader's
    /// ephemeral key of this session, `EReaderKey`) and the MSO's device key.
    ///
    /// # Errors
    /// Those of [`Verifier::verify_device_response`]; [`Error::InvalidDeviceSignature`]
    /// also when a MAC does not verify, [`Error::Unsupported`] for a MAC algorithm other
    /// than HMAC 256/256.
    pub async fn verify_device_response_with(
        &self,
        response: &DeviceResponse,
        transcript: &SessionTranscript,
        reader_key: Option<&dyn MacKeyAgreement>,
    ) -> Result<Vec<VerifiedDocument>, Error> {
        if response.version != "1.0" {
            return Err(Error::Unsupported {
                what: "DeviceResponse version",
                value: response.version.clone(),
            });
        }
        if response.status != 0 {
            return Err(Error::Unsupported {
                what: "DeviceResponse status",
                value: response.status.to_string(),
            });
        }
        if response.documents.is_empty() {
            return Err(malformed("DeviceResponse", "no documents"));
        }
        let mut verified = Vec::with_capacity(response.documents.len());
        for document in &response.documents {
            verified.push(
                self.verify_document(document, transcript, reader_key)
                    .await?,
            );
        }
        Ok(verified)
    }

    async fn verify_document(
        &self,
        document: &Document,
        transcript: &SessionTranscript,
        reader_key: Option<&dyn MacKeyAgreement>,
    ) -> Result<VerifiedDocument, Error> {
        let verified = self
            .verify_issuer_signed(&document.issuer_signed, &document.doc_type)
            .await?;
        let device_name_spaces = &document.device_signed.name_spaces;
        if !matches!(
            decode(device_name_spaces, &self.limits, "DeviceNameSpaces")?,
            Value::Map(_)
        ) {
            return Err(malformed("DeviceNameSpaces", "expected a map"));
        }
        let signature = match &document.device_signed.device_auth {
            DeviceAuth::Signature(signature) => signature,
            DeviceAuth::Mac(mac) => {
                let Some(reader_key) = reader_key else {
                    return Err(Error::Unsupported {
                        what: "device authentication without a reader key",
                        value: "deviceMac".to_owned(),
                    });
                };
                let payload =
                    device_authentication_bytes(transcript, &document.doc_type, device_name_spaces);
                verify_mac0(mac, reader_key, &verified.device_key, transcript, &payload).await?;
                return Ok(verified);
            }
        };
        if signature.payload.is_some() {
            return Err(malformed("deviceSignature", "the payload must be detached"));
        }
        let key = VerifyingKey::from_jwk(&verified.device_key)
            .map_err(|_| Error::InvalidDeviceKey("the MSO's device key cannot verify"))?;
        let payload =
            device_authentication_bytes(transcript, &document.doc_type, device_name_spaces);
        verify1(signature, &key, Some(&payload)).map_err(|()| Error::InvalidDeviceSignature)?;
        Ok(verified)
    }
}
