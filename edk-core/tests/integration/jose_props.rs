//! Properties of JWS signing and verification over generated input, and algorithm
//! confusion attacks (RFC 8725 §2.1, §3.1) at the public API.

use std::sync::OnceLock;

use edk_core::HasKind as _;
use edk_core::Limits;
use edk_core::encoding::{b64url_decode, b64url_encode};
use edk_core::jose::{
    Algorithm, Header, JoseError, Jwk, JwksResolver, Jws, SigningKey, VerifyPolicy, VerifyingKey,
    jws,
};
use proptest::prelude::*;

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

/// One key per algorithm, generated once: RSA key generation is slow.
fn key(alg: Algorithm) -> &'static SigningKey {
    static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        Algorithm::ALL
            .iter()
            .map(|&alg| SigningKey::generate(alg).unwrap())
            .collect()
    });
    keys.iter().find(|key| key.algorithm() == alg).unwrap()
}

fn sign(alg: Algorithm, header: Header, payload: &[u8]) -> String {
    block_on(jws::sign(header, payload, key(alg))).unwrap()
}

/// A compact JWS with `header` and `payload` whose signature `key` makes over them, whatever
/// algorithm the header names: how an attacker builds a confused token.
fn forge(header: &str, payload: &str, key: &SigningKey) -> String {
    let input = format!("{}.{}", b64url_encode(header), b64url_encode(payload));
    let signature = key.sign_bytes(input.as_bytes()).unwrap();
    format!("{input}.{}", b64url_encode(signature))
}

fn verify(token: &str, key: &VerifyingKey) -> Result<Vec<u8>, JoseError> {
    let verified = Jws::parse(token, &Limits::DEFAULT)?.verify(key, &VerifyPolicy::default())?;
    Ok(verified.payload().to_vec())
}

fn round_trip(alg: Algorithm, payload: &[u8], typ: Option<&str>) -> Result<(), TestCaseError> {
    let mut header = Header::new(alg);
    if let Some(typ) = typ {
        header = header.with_typ(typ);
    }
    let token = sign(alg, header, payload);
    let mut policy = VerifyPolicy::default().with_algorithms(&[alg]);
    if let Some(typ) = typ {
        policy = policy.with_typ(typ);
    }
    let verified = Jws::parse(&token, &Limits::DEFAULT)
        .unwrap()
        .verify(key(alg).verifying_key(), &policy)
        .unwrap();
    prop_assert_eq!(verified.payload(), payload);
    prop_assert_eq!(verified.header().alg, alg);
    prop_assert_eq!(verified.header().typ.as_deref(), typ);
    let kid = verified.header().kid.as_deref();
    prop_assert_eq!(kid, Some(key(alg).kid().as_str()));
    Ok(())
}

fn fast_algorithm() -> impl Strategy<Value = Algorithm> {
    prop::sample::select(
        Algorithm::ALL
            .into_iter()
            .filter(|alg| !alg.is_rsa())
            .collect::<Vec<_>>(),
    )
}

fn any_algorithm() -> impl Strategy<Value = Algorithm> {
    prop::sample::select(Algorithm::ALL.to_vec())
}

fn typ() -> impl Strategy<Value = Option<String>> {
    prop::option::of("[a-z]{1,8}(\\+jwt)?")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn sign_then_verify_round_trips_on_ec_and_ed25519(
        alg in fast_algorithm(),
        payload in prop::collection::vec(any::<u8>(), 0..512),
        typ in typ(),
    ) {
        round_trip(alg, &payload, typ.as_deref())?;
    }

    #[test]
    fn garbage_tokens_never_panic_and_get_client_errors(
        token in prop_oneof![
            "[A-Za-z0-9_.-]{0,300}",
            "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,120}",
            any::<String>(),
        ],
        alg in any_algorithm(),
    ) {
        let err = Jws::parse(&token, &Limits::DEFAULT)
            .and_then(|jws| jws.verify(key(alg).verifying_key(), &VerifyPolicy::default()))
            .unwrap_err();
        prop_assert!(err.kind().is_client_error(), "{:?}", err);
    }

    #[test]
    fn garbage_headers_never_panic(
        header in prop_oneof![
            "\\{\"alg\":\"[A-Za-z0-9]{0,8}\"(,\"[a-z]{1,4}\":[0-9a-z\\[\\]\",{}]{0,16})?\\}",
            any::<String>(),
        ],
        payload in any::<String>(),
        alg in any_algorithm(),
    ) {
        let token = forge(&header, &payload, key(alg));
        let result = Jws::parse(&token, &Limits::DEFAULT)
            .and_then(|jws| jws.verify(key(alg).verifying_key(), &VerifyPolicy::default()));
        if let Err(err) = result {
            prop_assert!(err.kind().is_client_error(), "{:?}", err);
        }
    }

    #[test]
    fn mutated_tokens_never_verify(
        alg in any_algorithm(),
        payload in "[ -~]{0,64}",
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<char>()), 1..4),
    ) {
        let token = sign(alg, Header::new(alg).with_typ("JWT"), payload.as_bytes());
        let mut chars: Vec<char> = token.chars().collect();
        for (at, replacement) in edits {
            let at = at.index(chars.len());
            chars[at] = replacement;
        }
        let mutated: String = chars.into_iter().collect();
        let result = verify(&mutated, key(alg).verifying_key());
        if mutated == token {
            prop_assert!(result.is_ok());
        } else {
            let err = result.unwrap_err();
            prop_assert!(err.kind().is_client_error(), "{:?}", err);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn sign_then_verify_round_trips_on_rsa(
        alg in prop::sample::select(vec![Algorithm::Rs256, Algorithm::Ps256]),
        payload in prop::collection::vec(any::<u8>(), 0..512),
        typ in typ(),
    ) {
        round_trip(alg, &payload, typ.as_deref())?;
    }
}

#[test]
fn rs256_token_is_refused_by_an_es256_key() {
    let token = sign(Algorithm::Rs256, Header::new(Algorithm::Rs256), b"{}");
    assert!(matches!(
        verify(&token, key(Algorithm::Es256).verifying_key()),
        Err(JoseError::KeyAlgorithmMismatch(Algorithm::Rs256))
    ));
    let resolver = JwksResolver::from_keys([&key(Algorithm::Es256).public_jwk()]);
    let mut header = Header::new(Algorithm::Rs256);
    header.kid = Some(key(Algorithm::Es256).kid().as_str().to_owned());
    let token = block_on(jws::sign(header, b"{}", key(Algorithm::Rs256))).unwrap();
    assert!(matches!(
        block_on(Jws::parse(&token, &Limits::DEFAULT).unwrap().verify_with(
            &resolver,
            &VerifyPolicy::default(),
            None
        )),
        Err(JoseError::KeyAlgorithmMismatch(Algorithm::Rs256))
    ));
}

#[test]
fn ps256_signature_presented_as_rs256_is_refused() {
    let ps = key(Algorithm::Ps256);
    let relabelled = forge(r#"{"alg":"RS256"}"#, "{}", ps);
    let rsa_jwk = ps.public_jwk();
    let mut without_alg = serde_json::to_value(&rsa_jwk).unwrap();
    without_alg.as_object_mut().unwrap().remove("alg");
    let any_rsa: Jwk = serde_json::from_value(without_alg).unwrap();
    assert!(matches!(
        verify(&relabelled, &VerifyingKey::from_jwk(&any_rsa).unwrap()),
        Err(JoseError::InvalidSignature)
    ));
    // A key pinned to PS256 by its own `alg` refuses RS256 outright.
    assert!(matches!(
        verify(&relabelled, &VerifyingKey::from_jwk(&rsa_jwk).unwrap()),
        Err(JoseError::KeyAlgorithmMismatch(Algorithm::Rs256))
    ));
}

#[test]
fn ed25519_key_with_alg_es256_is_refused() {
    let ed = key(Algorithm::EdDsa);
    let token = forge(r#"{"alg":"ES256"}"#, "{}", ed);
    assert!(matches!(
        verify(&token, ed.verifying_key()),
        Err(JoseError::KeyAlgorithmMismatch(Algorithm::Es256))
    ));
    // EdDSA and its fully-specified name Ed25519 are the same algorithm for an Ed25519 key.
    let fully_specified = forge(r#"{"alg":"Ed25519"}"#, "{}", ed);
    assert_eq!(verify(&fully_specified, ed.verifying_key()).unwrap(), b"{}");
}

#[test]
fn es384_token_relabelled_es256_is_refused_by_the_p384_key() {
    let p384 = key(Algorithm::Es384);
    let token = forge(r#"{"alg":"ES256"}"#, "{}", p384);
    assert!(matches!(
        verify(&token, p384.verifying_key()),
        Err(JoseError::KeyAlgorithmMismatch(Algorithm::Es256))
    ));
}

#[test]
fn der_encoded_ecdsa_signature_is_refused() {
    let p256 = key(Algorithm::Es256);
    let token = sign(Algorithm::Es256, Header::new(Algorithm::Es256), b"{}");
    let (input, signature) = token.rsplit_once('.').unwrap();
    let raw = b64url_decode(signature).unwrap();
    let integer = |bytes: &[u8]| {
        let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|&b| b == 0).collect();
        let mut out = vec![0x02];
        if trimmed[0] & 0x80 != 0 {
            out.push(u8::try_from(trimmed.len() + 1).unwrap());
            out.push(0);
        } else {
            out.push(u8::try_from(trimmed.len()).unwrap());
        }
        out.extend(trimmed);
        out
    };
    let mut body = integer(&raw[..32]);
    body.extend(integer(&raw[32..]));
    let mut der = vec![0x30, u8::try_from(body.len()).unwrap()];
    der.extend(body);
    let der_token = format!("{input}.{}", b64url_encode(der));
    assert!(matches!(
        verify(&der_token, p256.verifying_key()),
        Err(JoseError::InvalidSignature)
    ));
}

#[test]
fn alg_none_and_hs256_with_the_public_key_as_secret_are_refused() {
    let rsa = key(Algorithm::Rs256);
    let public = serde_json::to_vec(&rsa.public_jwk()).unwrap();
    for alg in ["none", "HS256", "HS384", "HS512"] {
        let input = format!(
            "{}.{}",
            b64url_encode(format!(r#"{{"alg":"{alg}"}}"#)),
            b64url_encode("{}")
        );
        let mac = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &public),
            input.as_bytes(),
        );
        for signature in [String::new(), b64url_encode(mac.as_ref())] {
            let token = format!("{input}.{signature}");
            assert!(
                matches!(
                    verify(&token, rsa.verifying_key()),
                    Err(JoseError::UnsupportedAlgorithm(name)) if name == alg
                ),
                "{alg}"
            );
        }
    }
}

#[test]
fn oversized_tokens_are_refused_before_parsing() {
    let limits = Limits::DEFAULT.with_max_token_bytes(1024);
    let token = sign(
        Algorithm::Es256,
        Header::new(Algorithm::Es256),
        &[b'x'; 900],
    );
    assert!(token.len() > 1024);
    assert!(matches!(
        Jws::parse(&token, &limits),
        Err(JoseError::TooLarge { size, limit: 1024 }) if size == token.len()
    ));
    Jws::parse(&token, &limits.with_max_token_bytes(token.len())).unwrap();
    let huge = ".".repeat(Limits::DEFAULT.max_token_bytes + 1);
    assert!(matches!(
        Jws::parse(&huge, &Limits::DEFAULT),
        Err(JoseError::TooLarge { .. })
    ));
}
