//! Token Status List in CWT form: the draft's CWT examples, issue and verify with every
//! algorithm, and the refusals of Status List §5.2 and §8.3.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use ciborium::Value;
use coset::{CoseSign1, TaggedCborSerializable as _};
use edk_core::ErrorKind;
use edk_core::HasKind as _;
use edk_core::Limits;
use edk_core::jose::{
    Algorithm, JoseError, Jwk, JwksResolver, KeyQuery, KeyResolver, SigningKey, VerifyingKey,
};
use edk_core::status_list::{
    Bits, CWT_MEDIA_TYPE, CborStatusList, StatusClaim, StatusList, StatusListCwt,
    StatusListCwtClaims, StatusListError, StatusListPolicy, StatusListReference, StatusType,
};
use proptest::prelude::*;
use serde_json::Value as Json;

const URI: &str = "https://example.com/statuslists/1";
const NOW: i64 = 1_700_000_000;

fn vector(name: &str) -> Json {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests/vectors/status-list",
        name,
    ]
    .iter()
    .collect();
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).unwrap())
        .collect()
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

fn published() -> (Vec<u8>, Jwk, Json) {
    let case = vector("status_list_cwt.json");
    let jwk: Jwk = serde_json::from_value(case["jwk"].clone()).unwrap();
    (unhex(case["token_hex"].as_str().unwrap()), jwk, case)
}

fn verify(token: &[u8], key: &VerifyingKey) -> Result<StatusListCwt, StatusListError> {
    StatusListCwt::verify(token, key, URI, &StatusListPolicy::default(), NOW)
}

#[test]
fn status_list_5_2_signed_cwt_verifies_with_the_published_key() {
    let (token, jwk, case) = published();
    let key = VerifyingKey::from_jwk(&jwk).unwrap();
    let verified = verify(&token, &key).unwrap();
    assert_eq!(verified.algorithm(), Algorithm::Es256);
    assert_eq!(verified.kid(), Some(&b"12"[..]));
    assert!(verified.x5chain().is_empty());
    let claims = verified.claims();
    let expected = &case["claims"];
    assert_eq!(claims.sub, expected["sub"].as_str().unwrap());
    assert_eq!(claims.iat, expected["iat"].as_i64().unwrap());
    assert_eq!(claims.exp, expected["exp"].as_i64());
    assert_eq!(claims.ttl, expected["ttl"].as_u64());
    assert_eq!(claims.iss, None);
    assert_eq!(claims.status_list.bits, Bits::One);
    assert_eq!(
        claims.status_list.lst,
        unhex(expected["status_list"]["lst_hex"].as_str().unwrap())
    );
    assert_eq!(verified.list().as_bytes(), [0xb9, 0xa3]);
    assert_eq!(verified.refresh_at(NOW), Some(NOW + 43_200));

    let reference = |idx| StatusListReference::new(idx, URI).unwrap();
    assert_eq!(verified.status(&reference(0)).unwrap(), StatusType::Invalid);
    assert_eq!(verified.status(&reference(1)).unwrap(), StatusType::Valid);
    assert!(matches!(
        verified.status(&reference(16)),
        Err(StatusListError::IndexOutOfRange { index: 16, len: 16 })
    ));
    assert!(matches!(
        verified.status(&StatusListReference::new(0, "https://example.com/statuslists/2").unwrap()),
        Err(StatusListError::SubjectMismatch)
    ));
}

#[test]
fn status_list_6_3_referenced_cwt_points_into_the_5_2_list() {
    let case = vector("referenced_token_cwt.json");
    let jwk: Jwk = serde_json::from_value(case["jwk"].clone()).unwrap();
    let key = VerifyingKey::from_jwk(&jwk).unwrap();
    let referenced =
        CoseSign1::from_tagged_slice(&unhex(case["token_hex"].as_str().unwrap())).unwrap();
    key.verify(
        Algorithm::Es256,
        &referenced.tbs_data(b""),
        &referenced.signature,
    )
    .unwrap();
    let claims: Value = ciborium::from_reader(referenced.payload.as_deref().unwrap()).unwrap();
    let status = StatusClaim::from_cwt_claims(&claims).unwrap();
    let reference = status.reference().unwrap();
    let expected = &case["claims"]["status"]["status_list"];
    assert_eq!(reference.idx, 0);
    assert_eq!(reference.uri, expected["uri"].as_str().unwrap());

    let (token, jwk, _) = published();
    let list = verify(&token, &VerifyingKey::from_jwk(&jwk).unwrap()).unwrap();
    assert_eq!(list.status(reference).unwrap(), StatusType::Invalid);
}

fn sample_list(bits: Bits) -> StatusList {
    let mut list = StatusList::new(bits, 1 << 12);
    list.set(7, bits.max_value()).unwrap();
    list.set(4_000, 1).unwrap();
    list
}

#[test]
fn issued_cwt_round_trips_with_every_algorithm() {
    for alg in Algorithm::ALL {
        let key = SigningKey::generate(alg).unwrap();
        let list = sample_list(Bits::Two);
        let claims = StatusListCwtClaims::new(URI, NOW, &list)
            .unwrap()
            .with_exp(NOW + 86_400)
            .with_ttl(3_600)
            .with_iss("https://example.com");
        let token = block_on(StatusListCwt::issue(&claims, &key)).unwrap();
        assert_eq!(
            token[0], 0xd2,
            "{alg}: COSE_Sign1_Tagged, without the CWT tag"
        );

        let verified = verify(&token, key.verifying_key()).unwrap();
        assert_eq!(verified.algorithm(), alg);
        assert_eq!(verified.kid(), Some(key.kid().as_str().as_bytes()));
        assert_eq!(verified.claims(), &claims, "{alg}");
        assert_eq!(verified.list(), &list, "{alg}");
        assert_eq!(
            verified
                .status(&StatusListReference::new(7, URI).unwrap())
                .unwrap(),
            StatusType::ApplicationSpecific(3)
        );

        let sign1 = CoseSign1::from_tagged_slice(&token).unwrap();
        let typ = sign1
            .protected
            .header
            .rest
            .iter()
            .find(|(label, _)| *label == coset::Label::Int(16))
            .map(|(_, value)| value.clone());
        assert_eq!(typ, Some(Value::Text(CWT_MEDIA_TYPE.to_owned())));
    }
}

#[test]
fn issued_cwt_verifies_through_a_resolver_by_kid_and_issuer() {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let list = sample_list(Bits::One);
    let mut claims = StatusListCwtClaims::new(URI, NOW, &list)
        .unwrap()
        .with_iss("https://example.com");
    claims.status_list = CborStatusList::new(Bits::One, list.compress().unwrap())
        .with_aggregation_uri("https://example.com/statuslists")
        .unwrap();
    let token = block_on(StatusListCwt::issue(&claims, &key)).unwrap();
    let jwk = key.public_jwk();

    let resolver = JwksResolver::from_keys([&jwk]).for_issuer("https://example.com");
    let verified = block_on(StatusListCwt::verify_with(
        &token,
        &resolver,
        URI,
        &StatusListPolicy::default(),
        NOW,
    ))
    .unwrap();
    assert_eq!(
        verified.claims().status_list.aggregation_uri.as_deref(),
        Some("https://example.com/statuslists")
    );
    let elsewhere = JwksResolver::from_keys([&jwk]).for_issuer("https://other.example");
    assert!(matches!(
        block_on(StatusListCwt::verify_with(
            &token,
            &elsewhere,
            URI,
            &StatusListPolicy::default(),
            NOW
        )),
        Err(StatusListError::Token(JoseError::KeyNotFound))
    ));
}

/// A resolver that checks the chain it is given and answers with one key.
#[derive(Debug)]
struct ChainResolver {
    key: Arc<VerifyingKey>,
    chain: Vec<String>,
}

#[async_trait]
impl KeyResolver for ChainResolver {
    async fn resolve(&self, query: &KeyQuery<'_>) -> Result<Arc<VerifyingKey>, JoseError> {
        match query.x5c {
            Some(chain) if chain == self.chain.as_slice() => Ok(Arc::clone(&self.key)),
            _ => Err(JoseError::UntrustedKey("unexpected chain")),
        }
    }
}

#[test]
fn issued_cwt_carries_its_x5chain_to_the_resolver() {
    use base64::Engine as _;
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let claims = StatusListCwtClaims::new(URI, NOW, &sample_list(Bits::One)).unwrap();
    let chain = vec![b"leaf certificate".to_vec(), b"intermediate".to_vec()];
    let resolver = ChainResolver {
        key: Arc::new(key.verifying_key().clone()),
        chain: chain
            .iter()
            .map(|der| base64::engine::general_purpose::STANDARD.encode(der))
            .collect(),
    };
    for chain in [chain.clone(), chain[..1].to_vec()] {
        let token = block_on(StatusListCwt::issue_with_x5chain(&claims, &key, &chain)).unwrap();
        let outcome = block_on(StatusListCwt::verify_with(
            &token,
            &resolver,
            URI,
            &StatusListPolicy::default(),
            NOW,
        ));
        if chain.len() == 2 {
            assert_eq!(outcome.unwrap().x5chain(), chain.as_slice());
        } else {
            assert!(matches!(
                outcome,
                Err(StatusListError::Token(JoseError::UntrustedKey(_)))
            ));
        }
    }
}

#[test]
fn every_single_bit_flip_of_a_signed_cwt_is_refused() {
    let (token, jwk, _) = published();
    let key = VerifyingKey::from_jwk(&jwk).unwrap();
    verify(&token, &key).unwrap();
    // The unprotected header ({4: h'3132'}, after the tag, the array head and the 32-byte
    // protected header) is not signed: changing it changes no signed byte, only which key
    // it would name. Every other bit is covered.
    let unprotected = 4 + 32..4 + 32 + 5;
    assert_eq!(token[unprotected.clone()], [0xa1, 0x04, 0x42, b'1', b'2']);
    for byte in 0..token.len() {
        if unprotected.contains(&byte) {
            continue;
        }
        for bit in 0..8 {
            let mut flipped = token.clone();
            flipped[byte] ^= 1 << bit;
            assert!(
                verify(&flipped, &key).is_err(),
                "flipping bit {bit} of byte {byte} went unnoticed"
            );
        }
    }
}

#[test]
fn flipped_signature_or_payload_bits_fail_the_signature() {
    let (token, jwk, _) = published();
    let key = VerifyingKey::from_jwk(&jwk).unwrap();
    let mut signature = token.clone();
    *signature.last_mut().unwrap() ^= 1;
    let err = verify(&signature, &key).unwrap_err();
    assert!(matches!(
        err,
        StatusListError::Token(JoseError::InvalidSignature)
    ));
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);

    let at = token
        .windows(11)
        .position(|window| window == b"statuslists")
        .unwrap();
    let mut payload = token.clone();
    payload[at] ^= 0x20;
    assert!(matches!(
        verify(&payload, &key),
        Err(StatusListError::Token(JoseError::InvalidSignature))
    ));
    let other = SigningKey::generate(Algorithm::Es256).unwrap();
    assert!(matches!(
        verify(&token, other.verifying_key()),
        Err(StatusListError::Token(JoseError::InvalidSignature))
    ));
}

/// Signs `claims` as a `COSE_Sign1_Tagged` with `protected` as the protected header map,
/// bypassing the issuer's own checks.
fn forge(key: &SigningKey, protected: Vec<(Value, Value)>, claims: impl Into<Value>) -> Vec<u8> {
    let mut payload = Vec::new();
    ciborium::into_writer(&claims.into(), &mut payload).unwrap();
    let mut protected_bytes = Vec::new();
    ciborium::into_writer(&Value::Map(protected), &mut protected_bytes).unwrap();
    let sig_structure = Value::Array(vec![
        Value::Text("Signature1".to_owned()),
        Value::Bytes(protected_bytes.clone()),
        Value::Bytes(Vec::new()),
        Value::Bytes(payload.clone()),
    ]);
    let mut tbs = Vec::new();
    ciborium::into_writer(&sig_structure, &mut tbs).unwrap();
    let signature = key.sign_bytes(&tbs).unwrap();
    let sign1 = Value::Tag(
        18,
        Box::new(Value::Array(vec![
            Value::Bytes(protected_bytes),
            Value::Map(Vec::new()),
            Value::Bytes(payload),
            Value::Bytes(signature),
        ])),
    );
    let mut token = Vec::new();
    ciborium::into_writer(&sign1, &mut token).unwrap();
    token
}

fn es256_header(typ: Value) -> Vec<(Value, Value)> {
    vec![(Value::from(1), Value::from(-7)), (Value::from(16), typ)]
}

fn good_typ() -> Value {
    Value::Text(CWT_MEDIA_TYPE.to_owned())
}

fn cbor_list(lst: Value) -> Value {
    Value::Map(vec![
        (Value::Text("bits".to_owned()), Value::from(1)),
        (Value::Text("lst".to_owned()), lst),
    ])
}

fn good_claims() -> Vec<(Value, Value)> {
    vec![
        (Value::from(2), Value::Text(URI.to_owned())),
        (Value::from(6), Value::from(NOW)),
        (Value::from(4), Value::from(NOW + 3_600)),
        (Value::from(65_534), Value::from(300)),
        (
            Value::from(65_533),
            cbor_list(Value::Bytes(unhex("78dadbb918000217015d"))),
        ),
    ]
}

fn with(claims: &[(Value, Value)], key: i64, value: Option<Value>) -> Value {
    let mut claims: Vec<(Value, Value)> = claims
        .iter()
        .filter(|(name, _)| *name != Value::from(key))
        .cloned()
        .collect();
    if let Some(value) = value {
        claims.push((Value::from(key), value));
    }
    Value::Map(claims)
}

#[test]
fn forged_tokens_with_good_claims_verify() {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let token = forge(&key, es256_header(good_typ()), Value::Map(good_claims()));
    let verified = verify(&token, key.verifying_key()).unwrap();
    assert_eq!(verified.claims().ttl, Some(300));
    let upper = forge(
        &key,
        es256_header(Value::Text("Application/StatusList+CWT".to_owned())),
        Value::Map(good_claims()),
    );
    verify(&upper, key.verifying_key()).unwrap();
    // Other claims, including text-named ones, are allowed (Status List §5.2 rule 1).
    let mut extended = good_claims();
    extended.push((Value::from(7), Value::Bytes(vec![1, 2, 3])));
    extended.push((Value::Text("private".to_owned()), Value::Bool(true)));
    verify(
        &forge(&key, es256_header(good_typ()), Value::Map(extended)),
        key.verifying_key(),
    )
    .unwrap();
}

#[test]
fn wrong_typ_is_refused() {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    for typ in [
        Value::Text("application/statuslist+jwt".to_owned()),
        Value::Text("statuslist+cwt".to_owned()),
        Value::from(16),
    ] {
        let token = forge(&key, es256_header(typ.clone()), Value::Map(good_claims()));
        let err = verify(&token, key.verifying_key()).unwrap_err();
        assert!(
            matches!(err, StatusListError::Token(JoseError::UnexpectedType { ref expected }) if expected == CWT_MEDIA_TYPE),
            "{typ:?}: {err}"
        );
    }
    let untyped = forge(
        &key,
        vec![(Value::from(1), Value::from(-7))],
        Value::Map(good_claims()),
    );
    assert!(matches!(
        verify(&untyped, key.verifying_key()),
        Err(StatusListError::Token(JoseError::UnexpectedType { .. }))
    ));
}

#[test]
fn wrong_algorithm_is_refused() {
    let (token, jwk, _) = published();
    let key = VerifyingKey::from_jwk(&jwk).unwrap();
    let only_eddsa = StatusListPolicy::default().with_algorithms(&[Algorithm::EdDsa]);
    assert!(matches!(
        StatusListCwt::verify(&token, &key, URI, &only_eddsa, NOW),
        Err(StatusListError::Token(JoseError::AlgorithmNotAllowed(
            Algorithm::Es256
        )))
    ));
    let ed25519 = SigningKey::generate(Algorithm::EdDsa).unwrap();
    assert!(matches!(
        verify(&token, ed25519.verifying_key()),
        Err(StatusListError::Token(JoseError::KeyAlgorithmMismatch(
            Algorithm::Es256
        )))
    ));

    let signer = SigningKey::generate(Algorithm::Es256).unwrap();
    // HMAC 256/256 (5) and an unassigned private-use algorithm.
    for alg in [Value::from(5), Value::from(-65_600)] {
        let header = vec![(Value::from(1), alg), (Value::from(16), good_typ())];
        let token = forge(&signer, header, Value::Map(good_claims()));
        assert!(matches!(
            verify(&token, signer.verifying_key()),
            Err(StatusListError::Token(JoseError::UnsupportedAlgorithm(_)))
        ));
    }
    let no_alg = forge(
        &signer,
        vec![(Value::from(16), good_typ())],
        Value::Map(good_claims()),
    );
    assert!(matches!(
        verify(&no_alg, signer.verifying_key()),
        Err(StatusListError::InvalidCwt(_))
    ));
}

#[test]
fn unknown_critical_header_parameters_are_refused() {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let mut header = es256_header(good_typ());
    header.push((Value::from(2), Value::Array(vec![Value::from(-70_000)])));
    header.push((Value::from(-70_000), Value::Bool(true)));
    assert!(matches!(
        verify(
            &forge(&key, header, Value::Map(good_claims())),
            key.verifying_key()
        ),
        Err(StatusListError::Token(JoseError::UnsupportedCritical(_)))
    ));
    let mut understood = es256_header(good_typ());
    understood.push((Value::from(2), Value::Array(vec![Value::from(16)])));
    verify(
        &forge(&key, understood, Value::Map(good_claims())),
        key.verifying_key(),
    )
    .unwrap();
}

#[test]
fn wrong_sub_is_refused() {
    let (token, jwk, _) = published();
    let key = VerifyingKey::from_jwk(&jwk).unwrap();
    let err = StatusListCwt::verify(
        &token,
        &key,
        "https://example.com/statuslists/2",
        &StatusListPolicy::default(),
        NOW,
    )
    .unwrap_err();
    assert!(matches!(err, StatusListError::SubjectMismatch));
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
}

#[test]
fn expired_or_future_tokens_are_refused() {
    let (token, jwk, case) = published();
    let key = VerifyingKey::from_jwk(&jwk).unwrap();
    let exp = case["claims"]["exp"].as_i64().unwrap();
    let iat = case["claims"]["iat"].as_i64().unwrap();
    let policy = StatusListPolicy::default();
    StatusListCwt::verify(&token, &key, URI, &policy, exp + 59).unwrap();
    assert!(matches!(
        StatusListCwt::verify(&token, &key, URI, &policy, exp + 60),
        Err(StatusListError::Token(JoseError::Expired))
    ));
    assert!(matches!(
        StatusListCwt::verify(&token, &key, URI, &policy, iat - 61),
        Err(StatusListError::Token(JoseError::IssuedAtOutOfRange))
    ));
    let strict = policy.with_validation(edk_core::jose::Validation::default().with_leeway(0));
    assert!(matches!(
        StatusListCwt::verify(&token, &key, URI, &strict, exp),
        Err(StatusListError::Token(JoseError::Expired))
    ));
}

#[test]
fn missing_or_malformed_claims_are_refused() {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let good = good_claims();
    let check = |claims: Value| {
        verify(
            &forge(&key, es256_header(good_typ()), claims),
            key.verifying_key(),
        )
    };
    assert!(matches!(
        check(with(&good, 6, None)),
        Err(StatusListError::Token(JoseError::MissingClaim("iat")))
    ));
    let text = |text: &str| Value::Text(text.to_owned());
    for (claims, name) in [
        (with(&good, 2, None), "sub"),
        (with(&good, 65_533, None), "status_list"),
        (
            with(&good, 2, Some(Value::Bytes(URI.as_bytes().to_vec()))),
            "sub",
        ),
        (with(&good, 6, Some(text("1700000000"))), "iat"),
        (with(&good, 4, Some(Value::Null)), "exp"),
        (with(&good, 65_534, Some(Value::from(0))), "ttl"),
        (with(&good, 65_534, Some(Value::from(-5))), "ttl"),
        (with(&good, 65_534, Some(Value::Float(60.0))), "ttl"),
        (with(&good, 1, Some(Value::from(7))), "iss"),
        (
            with(&good, 65_533, Some(cbor_list(text("eNrbuRgAAhcBXQ")))),
            "lst",
        ),
        (
            with(&good, 65_533, Some(text("status list"))),
            "status_list",
        ),
    ] {
        let err = check(claims.clone()).unwrap_err();
        assert!(
            matches!(err, StatusListError::InvalidClaim(claim) if claim == name),
            "{claims:?}: {err}"
        );
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
    let mut duplicated = good.clone();
    duplicated.push((Value::from(2), text(URI)));
    assert!(matches!(
        check(Value::Map(duplicated)),
        Err(StatusListError::InvalidCwt(_))
    ));
    assert!(matches!(
        check(Value::Array(vec![])),
        Err(StatusListError::InvalidCwt(_))
    ));
    assert!(matches!(
        check(with(
            &good,
            65_533,
            Some(cbor_list(Value::Bytes(vec![0x78, 0xda, 0x00])))
        )),
        Err(StatusListError::InvalidCompression)
    ));
    // Fractional NumericDates are truncated toward negative infinity.
    let verified = check(with(&good, 6, Some(Value::Float(NOW as f64 - 0.5)))).unwrap();
    assert_eq!(verified.claims().iat, NOW - 1);
}

#[test]
fn malformed_cose_structures_are_refused() {
    let (token, jwk, _) = published();
    let key = VerifyingKey::from_jwk(&jwk).unwrap();
    let untagged = &token[1..];
    let mut cwt_tagged = vec![0xd8, 0x3d];
    cwt_tagged.extend_from_slice(&token);
    let mut trailing = token.clone();
    trailing.push(0x00);
    let mut mac0 = token.clone();
    mac0[0] = 0xd1;
    // Lengths declared far past the input: a byte string, an array and a map of 2^60 items.
    let huge_bstr = [0xd2, 0x84, 0x5b, 0x10, 0, 0, 0, 0, 0, 0, 0];
    let huge_array = [0xd2, 0x9b, 0x10, 0, 0, 0, 0, 0, 0, 0];
    let huge_map = [0xd2, 0x84, 0x40, 0xbb, 0x10, 0, 0, 0, 0, 0, 0, 0];
    let bad: [&[u8]; 10] = [
        untagged,
        &cwt_tagged,
        &trailing,
        &mac0,
        &[],
        &[0xd2],
        b"eyJ.a.b",
        &huge_bstr,
        &huge_array,
        &huge_map,
    ];
    for bad in bad {
        assert!(
            matches!(verify(bad, &key), Err(StatusListError::InvalidCwt(_))),
            "{bad:02x?}"
        );
    }

    let signer = SigningKey::generate(Algorithm::Es256).unwrap();
    let mut in_the_clear = forge(
        &signer,
        vec![(Value::from(16), good_typ())],
        Value::Map(good_claims()),
    );
    // Move `alg` into the unprotected header by re-encoding the structure.
    let mut sign1 = CoseSign1::from_tagged_slice(&in_the_clear).unwrap();
    sign1.unprotected.alg = Some(coset::RegisteredLabelWithPrivate::Assigned(
        coset::iana::Algorithm::ES256,
    ));
    in_the_clear = sign1.to_tagged_vec().unwrap();
    assert!(matches!(
        verify(&in_the_clear, signer.verifying_key()),
        Err(StatusListError::InvalidCwt(_))
    ));

    let policy = StatusListPolicy::default().with_limits(Limits::DEFAULT.with_max_token_bytes(64));
    assert!(matches!(
        StatusListCwt::verify(&token, &key, URI, &policy, NOW),
        Err(StatusListError::Token(JoseError::TooLarge {
            limit: 64,
            ..
        }))
    ));
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
fn zlib_bomb_inside_a_signed_cwt_is_refused() {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let bomb = zlib_bomb(64 << 20);
    let token = forge(
        &key,
        es256_header(good_typ()),
        with(&good_claims(), 65_533, Some(cbor_list(Value::Bytes(bomb)))),
    );
    assert!(token.len() < Limits::DEFAULT.max_token_bytes);
    let err = verify(&token, key.verifying_key()).unwrap_err();
    assert!(matches!(err, StatusListError::TooLarge { limit } if limit == 16 << 20));
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn issue_refuses_a_zero_ttl_an_exp_before_iat_and_a_relative_sub() {
    let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let list = StatusList::new(Bits::One, 8);
    let claims = StatusListCwtClaims::new(URI, 1_000, &list).unwrap();
    for (bad, name) in [
        (claims.clone().with_ttl(0), "ttl"),
        (claims.with_exp(1_000), "exp"),
    ] {
        assert!(matches!(
            block_on(StatusListCwt::issue(&bad, &key)),
            Err(StatusListError::InvalidClaim(claim)) if claim == name
        ));
    }
    assert!(matches!(
        StatusListCwtClaims::new("/statuslists/1", 1_000, &list),
        Err(StatusListError::InvalidUri { field: "sub" })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_verify_and_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        tagged in any::<bool>(),
    ) {
        let (_, jwk, _) = published();
        let key = VerifyingKey::from_jwk(&jwk).unwrap();
        let mut token = bytes;
        if tagged {
            token.insert(0, 0xd2);
        }
        prop_assert!(verify(&token, &key).is_err());
    }
}
