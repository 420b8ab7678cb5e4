//! The issuer's side of Token Status Lists (draft-ietf-oauth-status-list): which credential
//! configurations carry a `status` claim, the statuses an operator sets, the records of issued
//! credentials, and the order in which a list hands out its indices.
//!
//! A list is created on demand for a credential configuration and purpose. Its indices are
//! handed out in the order of a keyed pseudo-random permutation of `0..size` (a Feistel
//! network with cycle walking, its key random per list), so that every index is used once, a
//! list fills completely before the next one opens, and neighbouring indices say nothing about
//! when or to whom their credentials were issued.

use edk_core::status_list::{Bits, StatusType};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::ConfigError;

/// Indices per list unless the configuration sets `list_size`: 16 KiB of 1-bit entries, the
/// herd the draft's privacy considerations ask for.
pub const DEFAULT_LIST_SIZE: u32 = 131_072;

/// The smallest `list_size` a configuration may set.
pub const MIN_LIST_SIZE: u32 = 16;

/// The largest `list_size` a configuration may set.
pub const MAX_LIST_SIZE: u32 = 1 << 24;

/// The KMS alias purpose, under the `issuer` service, of the key that signs Status List
/// Tokens.
pub const STATUS_LIST_SIGNING_PURPOSE: &str = "status-list-signing";

/// What a configuration's status list is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusPurpose {
    /// Revocation only: one bit per credential unless `bits` says more.
    Revocation,
    /// Revocation and suspension: two bits per credential unless `bits` says more.
    Suspension,
}

impl StatusPurpose {
    /// The purpose's name, as stored and shown.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Revocation => "revocation",
            Self::Suspension => "suspension",
        }
    }

    /// The purpose named `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "revocation" => Some(Self::Revocation),
            "suspension" => Some(Self::Suspension),
            _ => None,
        }
    }

    const fn default_bits(self) -> Bits {
        match self {
            Self::Revocation => Bits::One,
            Self::Suspension => Bits::Two,
        }
    }
}

/// The status part of a configuration's issuance settings: credentials of the configuration
/// carry a `status` claim referencing an index of one of the tenant's status lists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusSettings {
    /// What the list is for.
    pub purpose: StatusPurpose,
    /// Bits per credential (1, 2, 4 or 8); by default 1 for revocation and 2 for suspension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bits: Option<u8>,
    /// Credentials per list ([`DEFAULT_LIST_SIZE`] by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_size: Option<u32>,
}

impl StatusSettings {
    /// The settings of a list for `purpose` with the default bits and size.
    #[must_use]
    pub const fn new(purpose: StatusPurpose) -> Self {
        Self {
            purpose,
            bits: None,
            list_size: None,
        }
    }

    /// Bits per credential.
    #[must_use]
    pub fn bits(&self) -> Bits {
        self.bits
            .and_then(Bits::new)
            .unwrap_or_else(|| self.purpose.default_bits())
    }

    /// Credentials per list.
    #[must_use]
    pub fn list_size(&self) -> u32 {
        self.list_size.unwrap_or(DEFAULT_LIST_SIZE)
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for bits other than 1, 2, 4 or 8, a suspension list of one
    /// bit, or a size outside [`MIN_LIST_SIZE`]..=[`MAX_LIST_SIZE`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(bits) = self.bits {
            let Some(bits) = Bits::new(bits) else {
                return Err(ConfigError::invalid("status.bits", "must be 1, 2, 4 or 8"));
            };
            if self.purpose == StatusPurpose::Suspension && bits == Bits::One {
                return Err(ConfigError::invalid(
                    "status.bits",
                    "a suspension list needs at least 2 bits per credential",
                ));
            }
        }
        if !(MIN_LIST_SIZE..=MAX_LIST_SIZE).contains(&self.list_size()) {
            return Err(ConfigError::invalid(
                "status.list_size",
                format!("must be between {MIN_LIST_SIZE} and {MAX_LIST_SIZE}"),
            ));
        }
        Ok(())
    }
}

/// The status of an issued credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialStatus {
    /// Valid (`0x00`).
    Valid,
    /// Revoked for good (`0x01`, INVALID).
    Revoked,
    /// Suspended until reinstated (`0x02`, SUSPENDED).
    Suspended,
}

impl CredentialStatus {
    /// The status's name, as stored and shown.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Revoked => "revoked",
            Self::Suspended => "suspended",
        }
    }

    /// The status named `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "valid" => Some(Self::Valid),
            "revoked" => Some(Self::Revoked),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }

    /// The Status Type written into the list.
    #[must_use]
    pub const fn status_type(self) -> StatusType {
        match self {
            Self::Valid => StatusType::Valid,
            Self::Revoked => StatusType::Invalid,
            Self::Suspended => StatusType::Suspended,
        }
    }
}

/// What an operator does to issued credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusAction {
    /// Revoke: final.
    Revoke,
    /// Suspend a valid credential; only on lists of two bits or more.
    Suspend,
    /// Make a suspended credential valid again.
    Reinstate,
}

impl StatusAction {
    /// The status the action leads to.
    #[must_use]
    pub const fn target(self) -> CredentialStatus {
        match self {
            Self::Revoke => CredentialStatus::Revoked,
            Self::Suspend => CredentialStatus::Suspended,
            Self::Reinstate => CredentialStatus::Valid,
        }
    }

    /// The statuses the action changes (the target status is left as it is).
    #[must_use]
    pub const fn changes(self) -> &'static [CredentialStatus] {
        match self {
            Self::Revoke => &[CredentialStatus::Valid, CredentialStatus::Suspended],
            Self::Suspend => &[CredentialStatus::Valid],
            Self::Reinstate => &[CredentialStatus::Suspended],
        }
    }
}

/// Which issued credentials an operation applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSelector {
    /// One credential, by the id the issuer gave it.
    Credential(String),
    /// Every credential of an issuance session.
    Session(String),
    /// Every credential of the session with this `correlation_id`.
    Correlation(String),
}

/// Where a configuration's credentials get their index: its list's parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusListSpec {
    /// The credential configuration.
    pub configuration_id: String,
    /// The purpose.
    pub purpose: StatusPurpose,
    /// Bits per credential.
    pub bits: Bits,
    /// Credentials per list.
    pub size: u32,
    /// The credential issuer identifier (the list token's `iss`).
    pub issuer: String,
    /// Where the issuer's lists are published; a new list's URI is `<base>/<list id>`.
    pub uri_base: String,
}

/// One index handed out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusIndex {
    /// The list.
    pub list_id: String,
    /// The list's URI (`status_list.uri`).
    pub uri: String,
    /// The index (`status_list.idx`).
    pub index: u32,
}

/// A credential the issuer handed out, with its status; never its claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCredential {
    /// The issuer's id of the credential.
    pub credential_id: String,
    /// The issuance session.
    pub session_id: String,
    /// The session's `correlation_id`, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The credential configuration.
    pub configuration_id: String,
    /// The status list.
    pub list_id: String,
    /// The list's URI.
    pub uri: String,
    /// The credential's index in the list.
    pub index: u32,
    /// The current status.
    pub status: CredentialStatus,
    /// When it was issued (Unix seconds).
    pub issued_at: i64,
    /// When it expires, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// When its status last changed (its issuance at first).
    pub updated_at: i64,
}

/// A status list as the operator sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusListInfo {
    /// The list's id.
    pub list_id: String,
    /// Its URI.
    pub uri: String,
    /// The credential issuer identifier.
    pub issuer: String,
    /// The credential configuration it serves.
    pub configuration_id: String,
    /// Its purpose.
    pub purpose: StatusPurpose,
    /// Bits per credential.
    pub bits: u8,
    /// Credentials it holds.
    pub size: u32,
    /// Indices handed out so far.
    pub allocated: u32,
    /// Its version: one more with every change of a status.
    pub version: i64,
    /// The version the last published token carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_version: Option<i64>,
    /// The `iat` of the last published token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<i64>,
    /// The `exp` of the last published token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_until: Option<i64>,
    /// When it was created.
    pub created_at: i64,
}

impl StatusListInfo {
    /// Whether the list needs a new token at `now`: never published, changed since, or its
    /// token past half its validity of `validity_secs`.
    #[must_use]
    pub fn needs_publication(&self, now: i64, validity_secs: i64) -> bool {
        match (self.published_version, self.published_until) {
            (Some(version), Some(until)) => {
                version < self.version || until - now < validity_secs / 2
            }
            _ => true,
        }
    }
}

/// A signed Status List Token, in both forms.
#[derive(Clone, PartialEq, Eq)]
pub struct PublishedToken {
    /// The list.
    pub list_id: String,
    /// The list version it shows.
    pub version: i64,
    /// Its `iat`.
    pub iat: i64,
    /// Its `exp`.
    pub exp: i64,
    /// Its `ttl`.
    pub ttl: u64,
    /// The JWT form (`application/statuslist+jwt`).
    pub jwt: String,
    /// The CWT form (`application/statuslist+cwt`).
    pub cwt: Vec<u8>,
}

impl std::fmt::Debug for PublishedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishedToken")
            .field("list_id", &self.list_id)
            .field("version", &self.version)
            .field("iat", &self.iat)
            .field("exp", &self.exp)
            .finish_non_exhaustive()
    }
}

/// The index a list of `size` entries hands out `counter`-th (from zero) under `key`: a
/// permutation of `0..size`, so distinct counters below `size` give distinct indices.
///
/// # Panics
/// Never: `counter` at or past `size` wraps around it.
#[must_use]
pub fn permuted_index(key: &[u8; 32], size: u32, counter: u32) -> u32 {
    let size = size.max(1);
    let counter = counter % size;
    // The smallest even number of bits whose domain covers `size`, at least 2.
    let bits = (u32::BITS - (size - 1).leading_zeros()).max(2);
    let half = bits.div_ceil(2);
    let mask = (1_u64 << half) - 1;
    let mut value = u64::from(counter);
    // Cycle walking: re-encrypt until the value falls inside the domain; the Feistel domain
    // is at most four times `size`, so this ends after a few rounds on average.
    loop {
        let (mut left, mut right) = (value >> half, value & mask);
        for round in 0_u8..8 {
            let mut hash = Sha256::new();
            hash.update(key);
            hash.update([round]);
            hash.update(right.to_be_bytes());
            let digest = hash.finalize();
            let mut word = [0_u8; 8];
            word.copy_from_slice(&digest[..8]);
            let f = u64::from_be_bytes(word) & mask;
            (left, right) = (right, left ^ f);
        }
        value = (left << half) | right;
        if value < u64::from(size) {
            return u32::try_from(value).unwrap_or_default();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::{StatusPurpose, StatusSettings, permuted_index};

    #[test]
    fn the_permutation_hands_out_every_index_once() {
        for size in [16_u32, 17, 100, 1000, 4096, 5000] {
            let key = [u8::try_from(size % 251).unwrap_or(1); 32];
            let seen: HashSet<u32> = (0..size).map(|i| permuted_index(&key, size, i)).collect();
            assert_eq!(seen.len(), size as usize, "size {size}");
            assert!(seen.iter().all(|index| *index < size));
        }
    }

    #[test]
    fn the_order_depends_on_the_key() {
        let a: Vec<u32> = (0..32).map(|i| permuted_index(&[1; 32], 1024, i)).collect();
        let b: Vec<u32> = (0..32).map(|i| permuted_index(&[2; 32], 1024, i)).collect();
        assert_ne!(a, b);
        let sequential = a.windows(2).filter(|w| w[1] == w[0] + 1).count();
        assert!(sequential < 4, "{a:?}");
    }

    #[test]
    fn settings_are_checked() {
        let mut settings = StatusSettings::new(StatusPurpose::Suspension);
        assert_eq!(settings.bits().get(), 2);
        assert!(settings.validate().is_ok());
        settings.bits = Some(1);
        assert!(settings.validate().is_err());
        settings.bits = Some(3);
        assert!(settings.validate().is_err());
        settings.bits = Some(4);
        settings.list_size = Some(8);
        assert!(settings.validate().is_err());
        settings.list_size = Some(64);
        assert!(settings.validate().is_ok());
    }
}
