//! Token Status List (draft-ietf-oauth-status-list-20): whether a credential has been
//! revoked or suspended, published as a compressed bit array in a signed JWT or CWT.
//!
//! - [`StatusList`] packs 1, 2, 4 or 8-bit statuses least significant bit first, compresses
//!   them with DEFLATE in ZLIB format and decodes them under
//!   [`Limits::max_status_list_bytes`](crate::Limits), so a compression bomb is refused
//!   before it is inflated (Status List §4). [`EncodedStatusList`] is its JSON form (§4.2),
//!   [`CborStatusList`] its CBOR form (§4.3).
//! - [`StatusListToken`] issues the Status List Token in JWT form (`typ` `statuslist+jwt`,
//!   §5.1) and [`StatusListCwt`] in CWT form (a `COSE_Sign1_Tagged` with `typ`
//!   `application/statuslist+cwt`, §5.2), both through any [`Signer`](crate::jose::Signer).
//!   Both verify as a relying party does, under one [`StatusListPolicy`]: signature and
//!   algorithm, `typ`, `iat`, `exp`, and `sub` equal to the URI the Referenced Token points
//!   to (Status List §8.3).
//! - [`StatusClaim`] is the Referenced Token's `status` claim, in JSON (§6.2) and as the CBOR
//!   `Status` structure of CWTs (claim [`CWT_STATUS_CLAIM`]) and mdocs (§6.3); [`status_of`]
//!   reads the status it points to from a verified JWT.
//! - [`StatusListCache`] is what a verifier uses: it fetches tokens of either form through a
//!   [`StatusListFetcher`], verifies them, keeps each list per URI while `ttl` and `exp`
//!   allow, and answers [`StatusListCache::status`] for a reference (§8.3, §13.7).
//!
//! ```
//! use std::sync::Arc;
//!
//! use edk_core::FixedClock;
//! use edk_core::jose::{Algorithm, JwksResolver, SigningKey};
//! use edk_core::status_list::{
//!     Bits, FetchedToken, InMemoryFetcher, StatusClaim, StatusList, StatusListCache,
//!     StatusListCwt, StatusListCwtClaims, StatusListReference, StatusType,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! # runtime.block_on(async {
//! let uri = "https://issuer.example/statuslists/1";
//! let now = 1_700_000_000;
//!
//! // Status Issuer: suspend the credential at index 42 and sign the list as a CWT.
//! let key = SigningKey::generate(Algorithm::Es256)?;
//! let mut list = StatusList::new(Bits::Two, 1 << 16);
//! list.set_status(42, StatusType::Suspended)?;
//! let claims = StatusListCwtClaims::new(uri, now, &list)?
//!     .with_exp(now + 86_400)
//!     .with_ttl(3_600);
//! let token: Vec<u8> = StatusListCwt::issue(&claims, &key).await?;
//!
//! // Status Provider: serves it as `application/statuslist+cwt` (in memory here).
//! let fetcher = Arc::new(InMemoryFetcher::new());
//! fetcher.insert(uri, FetchedToken::cwt(token));
//!
//! // Relying party: the credential's `status` claim points at index 42 of that list.
//! let cache = StatusListCache::new(
//!     fetcher.clone(),
//!     Arc::new(JwksResolver::from_keys([&key.public_jwk()])),
//!     Arc::new(FixedClock::at_unix(now + 60)),
//! );
//! let status = StatusClaim::new(StatusListReference::new(42, uri)?);
//! assert_eq!(cache.status(status.reference()?).await?, StatusType::Suspended);
//! assert_eq!(cache.status(&StatusListReference::new(43, uri)?).await?, StatusType::Valid);
//! assert_eq!(fetcher.fetches(uri), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })
//! # }
//! ```

#![warn(clippy::indexing_slicing)]

mod cache;
mod cbor;
mod cwt;
mod error;
mod list;
mod token;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use cache::{
    CachedStatusList, FetchError, FetchedToken, InMemoryFetcher, StatusListCache,
    StatusListFetcher, StatusListFormat,
};
pub use cbor::{CWT_STATUS_CLAIM, CborStatusList};
pub use cwt::{CWT_MEDIA_TYPE, StatusListCwt, StatusListCwtClaims};
pub use error::StatusListError;
pub use list::{Bits, EncodedStatusList, StatusList, StatusType};
pub use token::{MEDIA_TYPE, StatusListPolicy, StatusListToken, StatusListTokenClaims, TYP};

/// A Referenced Token's `status` claim (Status List §6.1): the status mechanisms it uses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StatusClaim {
    /// `status_list`: where the token's status is published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_list: Option<StatusListReference>,
    /// Other status mechanisms, kept as they are.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl StatusClaim {
    /// A `status` claim with one `status_list` reference.
    #[must_use]
    pub fn new(reference: StatusListReference) -> Self {
        Self {
            status_list: Some(reference),
            other: Map::new(),
        }
    }

    /// Reads the `status` claim from a Referenced Token's claims set.
    ///
    /// # Errors
    /// [`StatusListError::InvalidClaim`] when `status` is absent, not an object, names no
    /// mechanism, or holds a malformed `status_list`.
    pub fn from_claims(claims: &Map<String, Value>) -> Result<Self, StatusListError> {
        let invalid = || StatusListError::InvalidClaim("status");
        let status = match claims.get("status") {
            Some(Value::Object(status)) if !status.is_empty() => status,
            _ => return Err(invalid()),
        };
        serde_json::from_value(Value::Object(status.clone())).map_err(|_| invalid())
    }

    /// The `status_list` reference (Status List §8.3 step 1).
    ///
    /// # Errors
    /// [`StatusListError::MissingReference`] when the claim has no `status_list` member.
    pub fn reference(&self) -> Result<&StatusListReference, StatusListError> {
        self.status_list
            .as_ref()
            .ok_or(StatusListError::MissingReference)
    }
}

/// The `status_list` member of a Referenced Token's `status` claim (Status List §6.2): an
/// index into the list published at `uri`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawReference")]
#[non_exhaustive]
pub struct StatusListReference {
    /// `idx`: the token's index in the list.
    pub idx: usize,
    /// `uri`: the URI of the Status List Token, compared exactly with its `sub`.
    pub uri: String,
}

impl StatusListReference {
    /// A reference to index `idx` of the list at `uri`.
    ///
    /// # Errors
    /// [`StatusListError::InvalidUri`] when `uri` is not an absolute URI.
    pub fn new(idx: usize, uri: impl Into<String>) -> Result<Self, StatusListError> {
        let uri = uri.into();
        list::check_uri(&uri, "uri")?;
        Ok(Self { idx, uri })
    }
}

#[derive(Deserialize)]
struct RawReference {
    idx: usize,
    uri: String,
}

impl TryFrom<RawReference> for StatusListReference {
    type Error = StatusListError;

    fn try_from(raw: RawReference) -> Result<Self, Self::Error> {
        Self::new(raw.idx, raw.uri)
    }
}

/// The status of a Referenced Token, given its `status` claim and the verified Status List
/// Token it points to (Status List §8.3 steps 1, 4a, 6 and 7).
///
/// # Errors
/// [`StatusListError::MissingReference`] when the claim has no `status_list`,
/// [`StatusListError::SubjectMismatch`] when it points to another list and
/// [`StatusListError::IndexOutOfRange`] when its index is past the end of the list.
pub fn status_of(
    status: &StatusClaim,
    token: &StatusListToken,
) -> Result<StatusType, StatusListError> {
    token.status(status.reference()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_claim_reads_the_reference_and_keeps_other_mechanisms() {
        let claims: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "status": {
                "status_list": {"idx": 0, "uri": "https://example.com/statuslists/1"},
                "other_mechanism": {"x": 1}
            }
        }))
        .unwrap();
        let status = StatusClaim::from_claims(&claims).unwrap();
        let reference = status.reference().unwrap();
        assert_eq!(reference.idx, 0);
        assert_eq!(reference.uri, "https://example.com/statuslists/1");
        assert!(status.other.contains_key("other_mechanism"));
    }

    #[test]
    fn malformed_status_claims_are_refused() {
        for status in [
            serde_json::json!(null),
            serde_json::json!({}),
            serde_json::json!("x"),
            serde_json::json!({"status_list": {"idx": -1, "uri": "https://e.example/1"}}),
            serde_json::json!({"status_list": {"idx": 1.5, "uri": "https://e.example/1"}}),
            serde_json::json!({"status_list": {"idx": 1, "uri": "not a uri"}}),
            serde_json::json!({"status_list": {"uri": "https://e.example/1"}}),
        ] {
            let claims: Map<String, Value> =
                serde_json::from_value(serde_json::json!({ "status": status })).unwrap();
            assert!(
                matches!(
                    StatusClaim::from_claims(&claims),
                    Err(StatusListError::InvalidClaim("status"))
                ),
                "{status}"
            );
        }
        let only_other: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"status": {"other": {}}})).unwrap();
        assert!(matches!(
            StatusClaim::from_claims(&only_other).unwrap().reference(),
            Err(StatusListError::MissingReference)
        ));
    }
}
