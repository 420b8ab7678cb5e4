//! Token Status List: the draft's vectors, issue and verify, compression bombs, and
//! properties of the list encoding.

use std::io::Write as _;
use std::path::PathBuf;

use edk_core::ErrorKind;
use edk_core::HasKind as _;
use edk_core::Limits;
use edk_core::encoding::{b64url_decode, b64url_encode};
use edk_core::jose::{Algorithm, Header, JoseError, Jwk, SigningKey, VerifyingKey, jws};
use edk_core::status_list::{
    Bits, EncodedStatusList, StatusClaim, StatusList, StatusListError, StatusListPolicy,
    StatusListReference, StatusListToken, StatusListTokenClaims, StatusType, status_of,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const URI: &str = "https://example.com/statuslists/1";

fn vector(name: &str) -> Value {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests/vectors/status-list",
        name,
    ]
    .iter()
    .collect();
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn bits_of(value: &Value) -> Bits {
    Bits::new(u8::try_from(value.as_u64().unwrap()).unwrap()).unwrap()
}

#[test]
fn status_list_4_1_small_examples_decode_exactly() {
    for case in vector("small.json").as_array().unwrap() {
        let bits = bits_of(&case["bits"]);
        let encoded: EncodedStatusList =
            serde_json::from_value(json!({"bits": case["bits"], "lst": case["lst"]})).unwrap();
        let list = encoded.decode(&Limits::DEFAULT).unwrap();
        assert_eq!(hex(list.as_bytes()), case["bytes_hex"].as_str().unwrap());
        if let Some(zlib) = case.get("zlib_hex") {
            assert_eq!(
                hex(&b64url_decode(case["lst"].as_str().unwrap()).unwrap()),
                zlib.as_str().unwrap()
            );
        }
        let statuses: Vec<u8> = case["statuses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| u8::try_from(s.as_u64().unwrap()).unwrap())
            .collect();
        assert_eq!(list.len(), statuses.len(), "{bits} bits");
        let mut built = StatusList::new(bits, statuses.len());
        for (index, &status) in statuses.iter().enumerate() {
            assert_eq!(
                list.get(index).unwrap(),
                status,
                "{bits} bits, index {index}"
            );
            built.set(index, status).unwrap();
        }
        assert_eq!(built, list);
        let ours = built.encode().unwrap();
        assert_eq!(ours.decode(&Limits::DEFAULT).unwrap(), list);
        assert!(matches!(
            list.get(statuses.len()),
            Err(StatusListError::IndexOutOfRange { .. })
        ));
    }
}

#[test]
fn status_list_appendix_c_long_vectors_decode_exactly() {
    for bits in Bits::ALL {
        let case = vector(&format!("long_{bits}bit.json"));
        assert_eq!(bits_of(&case["bits"]), bits);
        let encoded: EncodedStatusList =
            serde_json::from_value(json!({"bits": case["bits"], "lst": case["lst"]})).unwrap();
        let list = encoded.decode(&Limits::DEFAULT).unwrap();
        let size = usize::try_from(case["size"].as_u64().unwrap()).unwrap();
        assert_eq!(size, 1 << 20);
        assert_eq!(list.len(), size, "{bits} bits");
        assert_eq!(list.as_bytes().len(), size * usize::from(bits.get()) / 8);

        let mut expected = StatusList::new(bits, size);
        for pair in case["nonzero"].as_array().unwrap() {
            let index = usize::try_from(pair[0].as_u64().unwrap()).unwrap();
            let value = u8::try_from(pair[1].as_u64().unwrap()).unwrap();
            assert_eq!(
                list.get(index).unwrap(),
                value,
                "{bits} bits, index {index}"
            );
            expected.set(index, value).unwrap();
        }
        // Every other status is 0: the whole array is what the listed statuses make.
        assert_eq!(list.as_bytes(), expected.as_bytes(), "{bits} bits");

        let reencoded = expected.encode().unwrap();
        assert_eq!(reencoded.decode(&Limits::DEFAULT).unwrap(), list);
        assert!(matches!(
            list.get(size),
            Err(StatusListError::IndexOutOfRange { index, len }) if index == size && len == size
        ));
    }
}

fn published_token() -> (String, Jwk, Value) {
    let case = vector("status_list_jwt.json");
    let jwk: Jwk = serde_json::from_value(case["jwk"].clone()).unwrap();
    (case["token"].as_str().unwrap().to_owned(), jwk, case)
}

#[test]
fn status_list_5_1_signed_token_verifies_with_the_published_key() {
    let (token, jwk, case) = published_token();
    let key = VerifyingKey::from_jwk(&jwk).unwrap();
    let iat = case["claims"]["iat"].as_i64().unwrap();
    let verified =
        StatusListToken::verify(&token, &key, URI, &StatusListPolicy::default(), iat + 10).unwrap();
    let header = verified.header();
    assert_eq!(header.alg, Algorithm::Es256);
    assert_eq!(header.kid.as_deref(), Some("12"));
    assert_eq!(header.typ.as_deref(), Some("statuslist+jwt"));
    let claims = verified.claims();
    assert_eq!(claims.sub, URI);
    assert_eq!(claims.iat, 1_686_920_170);
    assert_eq!(claims.exp, Some(2_291_720_170));
    assert_eq!(claims.ttl, Some(43_200));
    assert_eq!(claims.iss.as_deref(), Some("https://example.com"));
    assert_eq!(claims.status_list.bits, Bits::One);
    assert_eq!(claims.status_list.lst, "eNrbuRgAAhcBXQ");
    assert!(claims.extra.is_empty());
    assert_eq!(verified.list().as_bytes(), [0xb9, 0xa3]);
    assert_eq!(verified.refresh_at(iat), Some(iat + 43_200));

    let status = |idx| StatusClaim::new(StatusListReference::new(idx, URI).unwrap());
    assert_eq!(
        status_of(&status(0), &verified).unwrap(),
        StatusType::Invalid
    );
    assert_eq!(status_of(&status(1), &verified).unwrap(), StatusType::Valid);
    assert_eq!(
        status_of(&status(15), &verified).unwrap(),
        StatusType::Invalid
    );
    let past_the_end = status_of(&status(16), &verified).unwrap_err();
    assert!(matches!(
        past_the_end,
        StatusListError::IndexOutOfRange { index: 16, len: 16 }
    ));
    assert_eq!(past_the_end.kind(), ErrorKind::InvalidInput);
}

#[test]
fn status_list_5_1_token_names_another_list_is_refused() {
    let (token, jwk, _) = published_token();
    let key = VerifyingKey::from_jwk(&jwk).unwrap();
    let err = StatusListToken::verify(
        &token,
        &key,
        "https://example.com/statuslists/2",
        &StatusListPolicy::default(),
        1_700_000_000,
    )
    .unwrap_err();
    assert!(matches!(err, StatusListError::SubjectMismatch));
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);

    let verified = StatusListToken::verify(
        &token,
        &key,
        URI,
        &StatusListPolicy::default(),
        1_700_000_000,
    )
    .unwrap();
    let elsewhere =
        StatusClaim::new(StatusListReference::new(0, "https://example.com/statuslists/2").unwrap());
    assert!(matches!(
        status_of(&elsewhere, &verified),
        Err(StatusListError::SubjectMismatch)
    ));
    assert!(matches!(
        status_of(&StatusClaim::default(), &verified),
        Err(StatusListError::MissingReference)
    ));
}

#[test]
fn status_list_5_1_token_is_refused_after_exp_and_before_iat() {
    let (token, jwk, _) = published_token();
    let key = VerifyingKey::from_jwk(&jwk).unwrap();
    let policy = StatusListPolicy::default();
    assert!(matches!(
        StatusListToken::verify(&token, &key, URI, &policy, 2_291_720_170 + 61),
        Err(StatusListError::Token(JoseError::Expired))
    ));
    assert!(matches!(
        StatusListToken::verify(&token, &key, URI, &policy, 1_686_920_170 - 61),
        Err(StatusListError::Token(JoseError::IssuedAtOutOfRange))
    ));
    let fresh_only = policy.with_validation(
        edk_core::jose::Validation::default()
            .without_exp()
            .with_max_age(3_600),
    );
    assert!(matches!(
        StatusListToken::verify(&token, &key, URI, &fresh_only, 1_700_000_000),
        Err(StatusListError::Token(JoseError::IssuedAtOutOfRange))
    ));
}

#[test]
fn status_list_5_1_token_with_a_bad_signature_or_another_key_is_refused() {
    let (token, jwk, _) = published_token();
    let key = VerifyingKey::from_jwk(&jwk).unwrap();
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let err = StatusListToken::verify(
        &tampered,
        &key,
        URI,
        &StatusListPolicy::default(),
        1_700_000_000,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        StatusListError::Token(JoseError::InvalidSignature)
    ));
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);

    let other = SigningKey::generate(Algorithm::Es256).unwrap();
    assert!(matches!(
        StatusListToken::verify(
            &token,
            other.verifying_key(),
            URI,
            &StatusListPolicy::default(),
            1_700_000_000
        ),
        Err(StatusListError::Token(JoseError::InvalidSignature))
    ));
    assert!(matches!(
        StatusListToken::verify(
            &token,
            &key,
            URI,
            &StatusListPolicy::default().with_algorithms(&[Algorithm::EdDsa]),
            1_700_000_000
        ),
        Err(StatusListError::Token(JoseError::AlgorithmNotAllowed(
            Algorithm::Es256
        )))
    ));
}

#[test]
fn issued_token_with_the_published_key_verifies_through_a_resolver() {
    let (_, jwk, _) = published_token();
    let key = SigningKey::from_jwk(&jwk, Some(Algorithm::Es256)).unwrap();
    let mut list = StatusList::new(Bits::Two, 1 << 12);
    list.set_status(7, StatusType::Suspended).unwrap();
    list.set_status(8, StatusType::Invalid).unwrap();
    list.set_status(9, StatusType::ApplicationSpecific(3))
        .unwrap();
    let mut claims = StatusListTokenClaims::new(URI, 1_700_000_000, &list)
        .unwrap()
        .with_exp(1_700_086_400)
        .with_ttl(3_600)
        .with_iss("https://example.com");
    claims.status_list = claims
        .status_list
        .clone()
        .with_aggregation_uri("https://example.com/statuslists")
        .unwrap();
    let token = block_on(StatusListToken::issue(
        Header::new(Algorithm::Es256),
        &claims,
        &key,
    ))
    .unwrap();

    let resolver =
        edk_core::jose::JwksResolver::from_keys([&jwk]).for_issuer("https://example.com");
    let verified = block_on(StatusListToken::verify_with(
        &token,
        &resolver,
        URI,
        &StatusListPolicy::default(),
        1_700_000_100,
    ))
    .unwrap();
    assert_eq!(verified.header().kid.as_deref(), Some("12"));
    assert_eq!(verified.header().typ.as_deref(), Some("statuslist+jwt"));
    assert_eq!(verified.claims(), &claims);
    assert_eq!(
        verified.claims().status_list.aggregation_uri.as_deref(),
        Some("https://example.com/statuslists")
    );
    assert_eq!(verified.list(), &list);
    assert_eq!(verified.refresh_at(1_700_000_100), Some(1_700_003_700));
    assert_eq!(verified.refresh_at(1_700_084_000), Some(1_700_086_400));

    let referenced: serde_json::Map<String, Value> = serde_json::from_value(json!({
        "iss": "https://example.com",
        "status": {"status_list": {"idx": 7, "uri": URI}}
    }))
    .unwrap();
    let status = StatusClaim::from_claims(&referenced).unwrap();
    assert_eq!(
        status_of(&status, &verified).unwrap(),
        StatusType::Suspended
    );
    assert_eq!(
        serde_json::to_value(&status).unwrap(),
        json!({"status_list": {"idx": 7, "uri": URI}})
    );
}

#[test]
fn issue_refuses_a_zero_ttl_an_exp_before_iat_and_a_relative_sub() {
    let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let list = StatusList::new(Bits::One, 8);
    let claims = StatusListTokenClaims::new(URI, 1_000, &list).unwrap();
    for (bad, name) in [
        (claims.clone().with_ttl(0), "ttl"),
        (claims.with_exp(1_000), "exp"),
    ] {
        assert!(matches!(
            block_on(StatusListToken::issue(Header::new(Algorithm::EdDsa), &bad, &key)),
            Err(StatusListError::InvalidClaim(claim)) if claim == name
        ));
    }
    assert!(matches!(
        StatusListTokenClaims::new("/statuslists/1", 1_000, &list),
        Err(StatusListError::InvalidUri { field: "sub" })
    ));
}

/// Signs `claims` as-is with `typ`, bypassing the issuer's own checks.
fn forge(key: &SigningKey, typ: &str, claims: &Value) -> String {
    block_on(jws::sign(
        Header::new(key.algorithm()).with_typ(typ),
        &serde_json::to_vec(claims).unwrap(),
        key,
    ))
    .unwrap()
}

#[test]
fn verify_refuses_wrong_typ_and_missing_or_malformed_claims() {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let now = 1_700_000_000;
    let list = json!({"bits": 1, "lst": "eNrbuRgAAhcBXQ"});
    let good = json!({"sub": URI, "iat": now, "status_list": list});
    let verify = |token: &str| {
        StatusListToken::verify(
            token,
            key.verifying_key(),
            URI,
            &StatusListPolicy::default(),
            now,
        )
    };
    verify(&forge(&key, "statuslist+jwt", &good)).unwrap();
    verify(&forge(&key, "application/statuslist+jwt", &good)).unwrap();
    assert!(matches!(
        verify(&forge(&key, "JWT", &good)),
        Err(StatusListError::Token(JoseError::UnexpectedType { .. }))
    ));

    let without = |name: &str| {
        let mut claims = good.clone();
        claims.as_object_mut().unwrap().remove(name);
        claims
    };
    assert!(matches!(
        verify(&forge(&key, "statuslist+jwt", &without("iat"))),
        Err(StatusListError::Token(JoseError::MissingClaim("iat")))
    ));
    assert!(matches!(
        verify(&forge(&key, "statuslist+jwt", &without("sub"))),
        Err(StatusListError::InvalidClaim("sub"))
    ));
    assert!(matches!(
        verify(&forge(&key, "statuslist+jwt", &without("status_list"))),
        Err(StatusListError::InvalidClaim("status_list"))
    ));
    let with = |name: &str, value: Value| {
        let mut claims = good.clone();
        claims[name] = value;
        claims
    };
    for (claims, name) in [
        (with("ttl", json!(0)), "ttl"),
        (with("ttl", json!(-5)), "ttl"),
        (with("ttl", json!("60")), "ttl"),
        (with("iss", json!(7)), "iss"),
        (
            with("status_list", json!({"bits": 3, "lst": "eNrbuRgAAhcBXQ"})),
            "status_list",
        ),
        (with("status_list", json!({"bits": 1})), "status_list"),
    ] {
        assert!(
            matches!(
                verify(&forge(&key, "statuslist+jwt", &claims)),
                Err(StatusListError::InvalidClaim(claim)) if claim == name
            ),
            "{claims}"
        );
    }
    assert!(matches!(
        verify(&forge(
            &key,
            "statuslist+jwt",
            &with("status_list", json!({"bits": 1, "lst": "eNrbuRgAAhcBXQ=="}))
        )),
        Err(StatusListError::InvalidEncoding)
    ));
    assert!(matches!(
        verify(&forge(
            &key,
            "statuslist+jwt",
            &with("status_list", json!({"bits": 1, "lst": "AAAA"}))
        )),
        Err(StatusListError::InvalidCompression)
    ));
    // Fractional NumericDates and ttl are accepted and truncated.
    let fractional = with("ttl", json!(90.5));
    let fractional = {
        let mut claims = fractional;
        claims["iat"] = json!(now as f64 - 0.5);
        claims
    };
    let verified = verify(&forge(&key, "statuslist+jwt", &fractional)).unwrap();
    assert_eq!(verified.claims().ttl, Some(90));
    assert_eq!(verified.claims().iat, now - 1);
}

/// A ZLIB stream that inflates to `size` zero bytes, built without holding them in memory.
fn zlib_bomb(size: usize) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![0_u8; 1 << 20];
    let mut written = 0;
    while written < size {
        let n = chunk.len().min(size - written);
        encoder.write_all(&chunk[..n]).unwrap();
        written += n;
    }
    encoder.finish().unwrap()
}

#[test]
fn zlib_bomb_is_refused_with_a_clear_error() {
    let bomb = zlib_bomb(1 << 30);
    assert!(bomb.len() < 2 << 20, "{} compressed bytes", bomb.len());
    let err = StatusList::decompress(Bits::One, &bomb, &Limits::DEFAULT).unwrap_err();
    assert!(matches!(err, StatusListError::TooLarge { limit } if limit == 16 << 20));
    assert_eq!(
        err.to_string(),
        "the status list inflates past the limit of 16777216 bytes"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidInput);

    let small_limit = Limits::DEFAULT.with_max_status_list_bytes(1 << 10);
    let exactly = zlib_bomb(1 << 10);
    assert_eq!(
        StatusList::decompress(Bits::Eight, &exactly, &small_limit)
            .unwrap()
            .len(),
        1 << 10
    );
    let one_more = zlib_bomb((1 << 10) + 1);
    assert!(matches!(
        StatusList::decompress(Bits::Eight, &one_more, &small_limit),
        Err(StatusListError::TooLarge { limit: 1024 })
    ));
}

#[test]
fn zlib_bomb_inside_a_signed_token_is_refused() {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let now = 1_700_000_000;
    let bomb = b64url_encode(zlib_bomb(64 << 20));
    let claims = json!({"sub": URI, "iat": now, "status_list": {"bits": 1, "lst": bomb}});
    let token = forge(&key, "statuslist+jwt", &claims);
    assert!(token.len() < Limits::DEFAULT.max_token_bytes);
    assert!(matches!(
        StatusListToken::verify(
            &token,
            key.verifying_key(),
            URI,
            &StatusListPolicy::default(),
            now
        ),
        Err(StatusListError::TooLarge { .. })
    ));
}

fn any_bits() -> impl Strategy<Value = Bits> {
    prop::sample::select(Bits::ALL.to_vec())
}

fn list_and_values() -> impl Strategy<Value = (Bits, Vec<u8>)> {
    any_bits().prop_flat_map(|bits| {
        (
            Just(bits),
            prop::collection::vec(0..=bits.max_value(), 0..2_000),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn encode_then_decode_round_trips_for_every_bit_size((bits, values) in list_and_values()) {
        let mut list = StatusList::new(bits, values.len());
        for (index, &value) in values.iter().enumerate() {
            list.set(index, value).unwrap();
        }
        let json = serde_json::to_string(&list.encode().unwrap()).unwrap();
        let decoded = serde_json::from_str::<EncodedStatusList>(&json)
            .unwrap()
            .decode(&Limits::DEFAULT)
            .unwrap();
        prop_assert_eq!(decoded.len(), list.len());
        for (index, &value) in values.iter().enumerate() {
            prop_assert_eq!(decoded.get(index).unwrap(), value);
        }
        for index in values.len()..decoded.len() {
            prop_assert_eq!(decoded.get(index).unwrap(), 0);
        }
        prop_assert_eq!(decoded, list);
    }

    #[test]
    fn set_then_get_matches_a_plain_vector(
        bits in any_bits(),
        len in 1_usize..500,
        writes in prop::collection::vec((any::<usize>(), any::<u8>()), 0..200),
    ) {
        let mut list = StatusList::new(bits, len);
        let mut model = vec![0_u8; list.len()];
        for (index, value) in writes {
            let index = index % (list.len() + 8);
            match list.set(index, value) {
                Ok(()) => model[index] = value,
                Err(StatusListError::ValueOutOfRange { .. }) => {
                    prop_assert!(value > bits.max_value());
                }
                Err(StatusListError::IndexOutOfRange { .. }) => {
                    prop_assert!(index >= model.len());
                }
                Err(other) => prop_assert!(false, "unexpected {other}"),
            }
        }
        for (index, &value) in model.iter().enumerate() {
            prop_assert_eq!(list.get(index).unwrap(), value);
        }
    }

    #[test]
    fn garbage_to_the_decoder_never_panics(
        bits in any_bits(),
        bytes in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let limits = Limits::DEFAULT.with_max_status_list_bytes(1 << 16);
        let _ = StatusList::decompress(bits, &bytes, &limits);
        let encoded = EncodedStatusList::new(bits, b64url_encode(&bytes));
        let _ = encoded.decode(&limits);
        let text = String::from_utf8_lossy(&bytes);
        let _ = EncodedStatusList::new(bits, text.as_ref()).decode(&limits);
    }

    #[test]
    fn mutated_zlib_never_panics_and_errors_are_typed(
        (bits, values) in list_and_values(),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut list = StatusList::new(bits, values.len());
        for (index, &value) in values.iter().enumerate() {
            list.set(index, value).unwrap();
        }
        let mut zlib = list.compress().unwrap();
        for (at, xor) in flips {
            let at = at % zlib.len();
            zlib[at] ^= xor;
        }
        match StatusList::decompress(bits, &zlib, &Limits::DEFAULT.with_max_status_list_bytes(1 << 16)) {
            Ok(_) => {}
            Err(err) => {
                let typed = matches!(
                    err,
                    StatusListError::InvalidCompression | StatusListError::TooLarge { .. }
                );
                prop_assert!(typed, "unexpected {}", err);
            }
        }
    }

    #[test]
    fn arbitrary_status_claims_never_panic(value in arbitrary_json()) {
        let claims: serde_json::Map<String, Value> =
            serde_json::from_value(json!({ "status": value })).unwrap();
        let _ = StatusClaim::from_claims(&claims);
        if let Value::Object(map) = value {
            let _ = StatusListTokenClaims::from_claims(map);
        }
    }
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-z:/._]{0,12}".prop_map(Value::from),
        Just(Value::from(URI)),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("status_list".to_owned()),
                    Just("idx".to_owned()),
                    Just("uri".to_owned()),
                    Just("sub".to_owned()),
                    Just("iat".to_owned()),
                    Just("ttl".to_owned()),
                    Just("bits".to_owned()),
                    Just("lst".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..5
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}
