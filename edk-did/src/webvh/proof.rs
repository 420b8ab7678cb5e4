//! Data Integrity proofs with the `eddsa-jcs-2022` cryptosuite (VC DI EdDSA §3.3), signed
//! through an edk-core [`Signer`] so that the private key stays in the KMS.

use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use chrono::DateTime;
use edk_core::jose::Signer;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use super::error::{ProofFault, WebvhError};
use super::multikey::Multikey;
use super::scid::jcs;

/// The only proof type.
pub const PROOF_TYPE: &str = "DataIntegrityProof";
/// The only cryptosuite did:webvh v1.0 allows.
pub const CRYPTOSUITE: &str = "eddsa-jcs-2022";
/// The proof purpose of log and witness proofs.
pub const PROOF_PURPOSE: &str = "assertionMethod";

/// Signs `document` (which must not carry a `proof`) with `signer`, whose public key is
/// `key`, and returns the proof object. `created` is an XML date-time.
///
/// The signature is checked against `key` before it is returned, so a signer that does not
/// hold `key` is caught here rather than by a resolver.
///
/// # Errors
/// [`WebvhError::SignerMismatch`] when the signer is not Ed25519 or not `key`,
/// [`WebvhError::Sign`] when it fails.
pub async fn sign(
    document: &Value,
    signer: &dyn Signer,
    key: &Multikey,
    created: &str,
) -> Result<Value, WebvhError> {
    if !signer.algorithm().is_ed25519() {
        return Err(WebvhError::SignerMismatch {
            reason: "eddsa-jcs-2022 needs an Ed25519 signer",
        });
    }
    let mut proof = Map::new();
    proof.insert("type".to_owned(), json!(PROOF_TYPE));
    proof.insert("cryptosuite".to_owned(), json!(CRYPTOSUITE));
    proof.insert("verificationMethod".to_owned(), json!(key.did_key_vm()));
    proof.insert("created".to_owned(), json!(created));
    proof.insert("proofPurpose".to_owned(), json!(PROOF_PURPOSE));
    if let Some(context) = document.get("@context") {
        proof.insert("@context".to_owned(), context.clone());
    }
    let mut proof = Value::Object(proof);
    let data = hash_data(document, &proof)?;
    let signature = signer.sign(&data).await.map_err(WebvhError::Sign)?;
    if UnparsedPublicKey::new(&ED25519, key.public_key())
        .verify(&data, &signature)
        .is_err()
    {
        return Err(WebvhError::SignerMismatch {
            reason: "the signature does not verify with the given Multikey",
        });
    }
    if let Some(object) = proof.as_object_mut() {
        object.insert(
            "proofValue".to_owned(),
            json!(format!("z{}", bs58::encode(signature).into_string())),
        );
    }
    Ok(proof)
}

/// Verifies one `eddsa-jcs-2022` proof over `document` (without `proof`) and returns the
/// key it was made with, for the caller to check against the keys it authorises.
///
/// # Errors
/// The [`ProofFault`] that makes the proof unacceptable.
pub fn verify(document: &Value, proof: &Value) -> Result<Multikey, ProofFault> {
    let object = proof.as_object().ok_or(ProofFault::Malformed)?;
    let field = |name: &str| object.get(name).and_then(Value::as_str);
    if field("type") != Some(PROOF_TYPE) {
        return Err(ProofFault::Type);
    }
    if field("cryptosuite") != Some(CRYPTOSUITE) {
        return Err(ProofFault::Cryptosuite);
    }
    if field("proofPurpose") != Some(PROOF_PURPOSE) {
        return Err(ProofFault::Purpose);
    }
    let key = field("verificationMethod")
        .and_then(Multikey::from_did_key_vm)
        .ok_or(ProofFault::VerificationMethod)?;
    if let Some(created) = object.get("created") {
        let created = created.as_str().ok_or(ProofFault::Created)?;
        DateTime::parse_from_rfc3339(created).map_err(|_| ProofFault::Created)?;
    }
    if let Some(context) = object.get("@context")
        && !context_is_prefix(context, document.get("@context"))
    {
        return Err(ProofFault::Context);
    }
    let signature = field("proofValue")
        .and_then(|value| value.strip_prefix('z'))
        .and_then(|value| bs58::decode(value).into_vec().ok())
        .ok_or(ProofFault::Malformed)?;
    let mut options = proof.clone();
    if let Some(options) = options.as_object_mut() {
        options.remove("proofValue");
    }
    let data = hash_data(document, &options).map_err(|_| ProofFault::Malformed)?;
    UnparsedPublicKey::new(&ED25519, key.public_key())
        .verify(&data, &signature)
        .map_err(|_| ProofFault::Signature)?;
    Ok(key)
}

/// `SHA-256(JCS(proof options)) || SHA-256(JCS(document))`.
fn hash_data(document: &Value, options: &Value) -> Result<Vec<u8>, WebvhError> {
    let mut data = Sha256::digest(jcs(options)?).to_vec();
    data.extend_from_slice(&Sha256::digest(jcs(document)?));
    Ok(data)
}

/// Whether the proof's `@context` is a prefix (same order) of the document's.
fn context_is_prefix(proof: &Value, document: Option<&Value>) -> bool {
    let as_list = |value: &Value| match value {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    let Some(document) = document else {
        return false;
    };
    let (proof, document) = (as_list(proof), as_list(document));
    proof.len() <= document.len() && proof.iter().zip(&document).all(|(a, b)| a == b)
}
