//! Token Status List decoding (Status List §4, §5.1, §6) on arbitrary input.
//!
//! JSON input goes through the `status_list` JSON form, the Status List Token claims and the
//! Referenced Token's `status` claim; anything else is one byte choosing `bits` followed by
//! raw ZLIB bytes. Lists are capped at 1 MiB decompressed. Nothing may panic.
#![no_main]

use edk_core::Limits;
use edk_core::status_list::{
    Bits, EncodedStatusList, StatusClaim, StatusList, StatusListTokenClaims,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fn probe(list: &StatusList) {
    let _ = list.get(0);
    let _ = list.get(list.len().saturating_sub(1));
    let _ = list.get(list.len());
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::DEFAULT.with_max_status_list_bytes(1 << 20);
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        if let Ok(encoded) = serde_json::from_value::<EncodedStatusList>(value.clone()) {
            if let Ok(list) = encoded.decode(&limits) {
                probe(&list);
            }
        }
        if let Value::Object(claims) = value {
            let _ = StatusClaim::from_claims(&claims);
            let _ = StatusClaim::from_claims(&Map::from_iter([(
                "status".to_owned(),
                Value::Object(claims.clone()),
            )]));
            if let Ok(claims) = StatusListTokenClaims::from_claims(claims) {
                if let Ok(list) = claims.status_list.decode(&limits) {
                    probe(&list);
                }
            }
        }
        return;
    }
    let Some((&first, zlib)) = data.split_first() else {
        return;
    };
    let bits = Bits::ALL[usize::from(first % 4)];
    if let Ok(list) = StatusList::decompress(bits, zlib, &limits) {
        probe(&list);
    }
});
