//! The holder's side: a [`Document`] for a [`DeviceResponse`](crate::DeviceResponse) with the
//! elements the holder chose and a device signature (or MAC) over the session transcript.

use coset::Header;
use edk_core::jose::{Jwk, Signer};

use crate::cbor::{Limits, encode};
use crate::cose::sign1;
use crate::error::Error;
use crate::mac::{MacKeyAgreement, mac0};
use crate::model::{DeviceAuth, DeviceSigned, Document, IssuerSigned};
use crate::transcript::{SessionTranscript, device_authentication_bytes};

/// A [`Document`] disclosing the `(name space, element)` pairs of `disclose` from
/// `issuer_signed`, signed by `device_key` (the key the MSO names) over `transcript`
/// (§9.1.3: `deviceSignature` over `DeviceAuthenticationBytes`, with empty device name
/// spaces).
///
/// # Errors
/// [`Error::ElementNotFound`] when a pair is not in the document, [`Error::Malformed`] when
/// the MSO cannot be read, [`Error::Unsupported`] for the device key's algorithm and
/// [`Error::Sign`] when the device cannot sign.
pub async fn present(
    issuer_signed: &IssuerSigned,
    disclose: &[(&str, &str)],
    device_key: &dyn Signer,
    transcript: &SessionTranscript,
) -> Result<Document, Error> {
    let (doc_type, issuer_signed) = disclosed(issuer_signed, disclose)?;
    let device_name_spaces = encode(&ciborium::Value::Map(Vec::new()));
    let payload = device_authentication_bytes(transcript, &doc_type, &device_name_spaces);
    let signature = sign1(device_key, payload, true, Header::default()).await?;
    Ok(Document {
        doc_type,
        issuer_signed,
        device_signed: DeviceSigned {
            name_spaces: device_name_spaces,
            device_auth: DeviceAuth::Signature(signature),
        },
    })
}

/// As [`present`], authenticated by MAC instead of a signature (§9.1.3.5): `deviceMac`
/// under the key agreed between `device_key` (the key the MSO names) and the reader's
/// ephemeral public key `reader_key`.
///
/// # Errors
/// Those of [`present`], and [`Error::InvalidDeviceKey`] when the keys cannot agree.
pub async fn present_with_mac(
    issuer_signed: &IssuerSigned,
    disclose: &[(&str, &str)],
    device_key: &dyn MacKeyAgreement,
    reader_key: &Jwk,
    transcript: &SessionTranscript,
) -> Result<Document, Error> {
    let (doc_type, issuer_signed) = disclosed(issuer_signed, disclose)?;
    let device_name_spaces = encode(&ciborium::Value::Map(Vec::new()));
    let payload = device_authentication_bytes(transcript, &doc_type, &device_name_spaces);
    let mac = mac0(device_key, reader_key, transcript, &payload).await?;
    Ok(Document {
        doc_type,
        issuer_signed,
        device_signed: DeviceSigned {
            name_spaces: device_name_spaces,
            device_auth: DeviceAuth::Mac(mac),
        },
    })
}

/// The document type and the issuer-signed part keeping only the pairs of `disclose`.
fn disclosed(
    issuer_signed: &IssuerSigned,
    disclose: &[(&str, &str)],
) -> Result<(String, IssuerSigned), Error> {
    let doc_type = issuer_signed.mso(&Limits::DEFAULT)?.doc_type;
    for &(namespace, element) in disclose {
        let found = issuer_signed
            .name_spaces
            .get(namespace)
            .is_some_and(|items| {
                items
                    .iter()
                    .any(|item| item.item().element_identifier == element)
            });
        if !found {
            return Err(Error::ElementNotFound {
                namespace: namespace.to_owned(),
                element: element.to_owned(),
            });
        }
    }
    let name_spaces = issuer_signed
        .name_spaces
        .iter()
        .filter_map(|(namespace, items)| {
            let kept: Vec<_> = items
                .iter()
                .filter(|item| {
                    disclose.iter().any(|&(ns, element)| {
                        ns == namespace && item.item().element_identifier == element
                    })
                })
                .cloned()
                .collect();
            (!kept.is_empty()).then(|| (namespace.clone(), kept))
        })
        .collect();
    Ok((
        doc_type,
        IssuerSigned {
            name_spaces,
            issuer_auth: issuer_signed.issuer_auth.clone(),
        },
    ))
}
