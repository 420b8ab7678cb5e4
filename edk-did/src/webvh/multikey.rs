//! Ed25519 public keys as Multikey strings (`z6Mk…`) and their pre-rotation hashes.

use std::fmt;
use std::str::FromStr;

use edk_core::jose::VerifyingKey;
use edk_core::jose::jwk::{OkpCurve, PublicParams};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::scid::multihash_b58;

/// The multicodec code of an Ed25519 public key.
const ED25519_PUB: u64 = 0xed;

/// An Ed25519 public key in Multikey form: `z` + base58btc(varint(0xed) || key).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Multikey {
    text: String,
    key: [u8; 32],
}

/// Why a string is not an Ed25519 Multikey.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an Ed25519 Multikey")]
pub struct MultikeyError;

impl Multikey {
    /// Parses a Multikey string.
    ///
    /// # Errors
    /// [`MultikeyError`] unless it is base58btc (`z`) of the Ed25519 multicodec and 32 bytes.
    pub fn parse(text: &str) -> Result<Self, MultikeyError> {
        let body = text.strip_prefix('z').ok_or(MultikeyError)?;
        let bytes = bs58::decode(body).into_vec().map_err(|_| MultikeyError)?;
        let (codec, rest) = read_varint(&bytes).ok_or(MultikeyError)?;
        if codec != ED25519_PUB {
            return Err(MultikeyError);
        }
        let key: [u8; 32] = rest.try_into().map_err(|_| MultikeyError)?;
        Ok(Self {
            text: text.to_owned(),
            key,
        })
    }

    /// The Multikey of a raw 32-byte Ed25519 public key.
    #[must_use]
    pub fn from_ed25519(key: [u8; 32]) -> Self {
        let mut bytes = Vec::with_capacity(34);
        bytes.extend_from_slice(&[0xed, 0x01]);
        bytes.extend_from_slice(&key);
        Self {
            text: format!("z{}", bs58::encode(bytes).into_string()),
            key,
        }
    }

    /// The Multikey of an Ed25519 verifying key (an OKP JWK), e.g. from the KMS.
    ///
    /// # Errors
    /// [`MultikeyError`] when the key is not Ed25519.
    pub fn from_verifying_key(key: &VerifyingKey) -> Result<Self, MultikeyError> {
        match key.jwk().params() {
            PublicParams::Okp {
                crv: OkpCurve::Ed25519,
                x,
            } => Ok(Self::from_ed25519(
                x.as_slice().try_into().map_err(|_| MultikeyError)?,
            )),
            _ => Err(MultikeyError),
        }
    }

    /// The Multikey string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The raw Ed25519 public key.
    #[must_use]
    pub const fn public_key(&self) -> &[u8; 32] {
        &self.key
    }

    /// The did:key verification method of this key, `did:key:<mk>#<mk>`.
    #[must_use]
    pub fn did_key_vm(&self) -> String {
        format!("did:key:{0}#{0}", self.text)
    }

    /// The did:key DID of this key, `did:key:<mk>` (a witness id).
    #[must_use]
    pub fn did_key(&self) -> String {
        format!("did:key:{}", self.text)
    }

    /// The pre-rotation commitment to this key for `nextKeyHashes`:
    /// `base58btc(multihash_sha256(utf8(multikey)))` (did:webvh §"Pre-rotation").
    #[must_use]
    pub fn key_hash(&self) -> String {
        multihash_b58(self.text.as_bytes())
    }

    /// Parses a verification method `did:key:X#X` (the body must equal the fragment).
    pub(crate) fn from_did_key_vm(vm: &str) -> Option<Self> {
        let (did, fragment) = vm.split_once('#')?;
        let body = did.strip_prefix("did:key:")?;
        if body != fragment {
            return None;
        }
        Self::parse(body).ok()
    }
}

impl fmt::Debug for Multikey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Multikey").field(&self.text).finish()
    }
}

impl fmt::Display for Multikey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Multikey {
    type Err = MultikeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl Serialize for Multikey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Multikey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Reads an unsigned LEB128 varint (at most 9 bytes) and returns it with the rest.
fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value: u64 = 0;
    for (i, byte) in bytes.iter().enumerate().take(9) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, bytes.get(i + 1..)?));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_one_vector_round_trips() {
        let text = "z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG";
        let key = Multikey::parse(text).unwrap();
        assert_eq!(Multikey::from_ed25519(*key.public_key()).as_str(), text);
    }

    #[test]
    fn pre_rotation_hash_vector() {
        let key = Multikey::parse("z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf").unwrap();
        assert_eq!(
            key.key_hash(),
            "Qmf2V5jB2UwPcFL5bvmKed7VvY3CSQ1RXyDdtip7ufpQ3R"
        );
    }

    #[test]
    fn other_codecs_and_lengths_are_refused() {
        // P-256 did:key body.
        assert!(Multikey::parse("zDnaerx9CtbPJ1q36T5Ln5wYt3MQYeGRG5ehnPAmxcf5mDZpv").is_err());
        assert!(Multikey::parse("6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG").is_err());
        assert!(Multikey::parse("z6Mkjchhf").is_err());
        assert!(
            Multikey::from_did_key_vm(
                "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG#key-1"
            )
            .is_none()
        );
    }
}
