//! SD-JWT parsing (RFC 9901 §4 compact, §8 JSON serializations) on arbitrary input.
//!
//! Whatever parses is taken through the holder-side accessors: the unverified payload, the
//! `sd_hash` input, and a round trip through both JSON serializations, which must parse back
//! to the same SD-JWT. Nothing may panic.
#![no_main]

use edk_core::Limits;
use edk_core::encoding::HashAlg;
use edk_core::sd_jwt::{JsonSerialization, SdJwt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(sd_jwt) = SdJwt::parse(input, &Limits::DEFAULT) else {
        return;
    };
    let _ = sd_jwt.unverified_payload();
    let _ = sd_jwt.sd_hash(HashAlg::Sha256);
    for disclosure in sd_jwt.disclosures() {
        let _ = disclosure.digest(HashAlg::Sha256);
    }
    for layout in [JsonSerialization::Flattened, JsonSerialization::General] {
        let json = sd_jwt.to_json(layout).to_string();
        let again = SdJwt::parse(&json, &Limits::DEFAULT).expect("our own JSON serialization parses");
        assert_eq!(again.sd_hash_input(), sd_jwt.sd_hash_input());
    }
});
