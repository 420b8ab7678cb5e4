//! Client secrets as argon2id hashes (PHC strings).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use rand::RngExt as _;

use crate::error::Error;

/// Hashes `secret` with argon2id and a random salt.
pub(crate) fn hash(secret: &str) -> Result<String, Error> {
    let salt_bytes: [u8; 16] = rand::rng().random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|_| Error::Internal {
        what: "encoding a salt",
    })?;
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|_| Error::Internal {
            what: "hashing a secret",
        })
}

/// Whether `secret` matches the PHC `hash`; a malformed hash matches nothing.
pub(crate) fn verify(secret: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let hashed = hash("s3cret").unwrap();
        assert!(hashed.starts_with("$argon2id$"));
        assert!(verify("s3cret", &hashed));
        assert!(!verify("other", &hashed));
        assert!(!verify("s3cret", "not a hash"));
    }
}
