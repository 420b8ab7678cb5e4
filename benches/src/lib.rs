#![doc = include_str!("../README.md")]

use std::time::Duration;

use edk_core::jose::SigningKey;
use edk_core::sd_jwt_vc::SdJwtVcBuilder;
use serde_json::json;

/// The issuance time of [`identity_vc`] (seconds since the epoch).
pub const IDENTITY_VC_NOW: i64 = 1_700_000_000;

/// The claims of [`identity_vc`] that are selectively disclosable.
pub const IDENTITY_VC_DISCLOSABLE: [&str; 8] = [
    "given_name",
    "family_name",
    "birthdate",
    "email",
    "phone_number",
    "address",
    "is_over_18",
    "is_over_21",
];

/// The SD-JWT VC of the benchmarks: 10 claims, 8 of them selectively disclosable
/// ([`IDENTITY_VC_DISCLOSABLE`]), bound to `holder`'s key, valid a day from
/// [`IDENTITY_VC_NOW`].
///
/// # Panics
/// Never: the claim paths are valid constants.
pub fn identity_vc(holder: &SigningKey) -> SdJwtVcBuilder {
    let mut builder = SdJwtVcBuilder::new("https://credentials.example/identity")
        .issuer("https://issuer.example")
        .issued_at(IDENTITY_VC_NOW)
        .expires_at(IDENTITY_VC_NOW + 86_400)
        .holder_key(&holder.public_jwk());
    let claims = json!({
        "given_name": "Erika", "family_name": "Mustermann", "birthdate": "1963-08-12",
        "email": "erika@example.com", "phone_number": "+49-221-555-0101",
        "address": {"street_address": "Heidestraße 17", "locality": "Köln", "country": "DE"},
        "nationality": "DE", "is_over_18": true, "is_over_21": true, "is_over_65": false,
    });
    if let Some(claims) = claims.as_object() {
        for (name, value) in claims {
            builder = builder.claim(name.clone(), value.clone());
        }
    }
    for name in IDENTITY_VC_DISCLOSABLE {
        #[expect(clippy::expect_used, reason = "the claim paths are valid constants")]
        let path = name.parse().expect("a claim path");
        builder = builder.selectively_disclose(path);
    }
    builder
}

/// The `q` quantile (0 to 1) of `sorted` latencies by nearest rank, zero when there are none.
#[must_use]
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a list of latencies"
    )]
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}
