//! Encodings used across JOSE and SD-JWT: unpadded base64url and digests.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encodes bytes as base64url without padding (RFC 7515 §2).
#[must_use]
pub fn b64url_encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url, refusing padding, other alphabets and non-canonical trailing bits.
///
/// # Errors
/// [`base64::DecodeError`] when `text` is not canonical unpadded base64url.
pub fn b64url_decode(text: impl AsRef<[u8]>) -> Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_NO_PAD.decode(text)
}

/// Hash functions named by the IANA "Named Information Hash Algorithm" registry, as used by
/// SD-JWT's `_sd_alg` and JWK thumbprints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashAlg {
    /// `sha-256`.
    Sha256,
    /// `sha-384`.
    Sha384,
    /// `sha-512`.
    Sha512,
}

impl HashAlg {
    /// Parses an IANA hash name such as `sha-256`; `None` for names we do not support.
    #[must_use]
    pub fn from_iana(name: &str) -> Option<Self> {
        match name {
            "sha-256" => Some(Self::Sha256),
            "sha-384" => Some(Self::Sha384),
            "sha-512" => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The IANA name, e.g. `sha-256`.
    #[must_use]
    pub const fn iana_name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha-256",
            Self::Sha384 => "sha-384",
            Self::Sha512 => "sha-512",
        }
    }

    /// Hashes `data`.
    #[must_use]
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            Self::Sha256 => &aws_lc_rs::digest::SHA256,
            Self::Sha384 => &aws_lc_rs::digest::SHA384,
            Self::Sha512 => &aws_lc_rs::digest::SHA512,
        };
        aws_lc_rs::digest::digest(alg, data).as_ref().to_vec()
    }

    /// Hashes `data` and encodes the digest as unpadded base64url.
    #[must_use]
    pub fn digest_b64url(self, data: &[u8]) -> String {
        b64url_encode(self.digest(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips_and_refuses_padding() {
        assert_eq!(b64url_encode(b"\xfb\xff"), "-_8");
        assert_eq!(b64url_decode("-_8").unwrap(), b"\xfb\xff");
        assert!(b64url_decode("-_8=").is_err());
        assert!(b64url_decode("+/8").is_err());
    }

    #[test]
    fn sha256_of_abc_matches_fips_180() {
        assert_eq!(
            HashAlg::Sha256.digest_b64url(b"abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
        assert_eq!(HashAlg::from_iana("sha-256"), Some(HashAlg::Sha256));
        assert_eq!(HashAlg::from_iana("md5"), None);
    }
}
