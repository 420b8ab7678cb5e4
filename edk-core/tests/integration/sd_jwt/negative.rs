//! The failures RFC 9901 names, each refused with its own error.

use edk_core::encoding::{HashAlg, b64url_encode};
use edk_core::jose::{Algorithm, Header, JoseError, SigningKey, jws};
use edk_core::limits::Limits;
use edk_core::sd_jwt::{Disclosure, KeyBindingClaims, SdJwt, SdJwtError, VerifyOptions};
use serde_json::{Value, json};

use super::{NOW, holder_key, issue_sample, issuer_resolver, paths, sign_payload};

const AUD: &str = "https://verifier.example";
const NONCE: &str = "n-0S6";

fn kb_options() -> VerifyOptions {
    VerifyOptions::default().with_key_binding(AUD, NONCE)
}

async fn verify(sd_jwt: &SdJwt, options: &VerifyOptions) -> Result<(), SdJwtError> {
    sd_jwt
        .verify(&issuer_resolver(), options, NOW)
        .await
        .map(drop)
}

async fn verify_text(text: &str, options: &VerifyOptions) -> Result<(), SdJwtError> {
    verify(&SdJwt::parse(text, &Limits::DEFAULT)?, options).await
}

/// An SD-JWT over a hand-built payload with the given disclosures.
async fn handmade(payload: Value, disclosures: &[&Disclosure]) -> String {
    let jwt = sign_payload("example+sd-jwt", &payload).await;
    let mut text = format!("{jwt}~");
    for d in disclosures {
        text.push_str(d.as_str());
        text.push('~');
    }
    text
}

fn digest(d: &Disclosure) -> String {
    d.digest(HashAlg::Sha256)
}

#[tokio::test]
async fn tampered_disclosure_is_unreferenced() {
    let issued = issue_sample().await;
    let original = &issued.disclosures()[0];
    let forged =
        Disclosure::property(original.salt(), original.name().unwrap(), json!("Mallory")).unwrap();
    let mut disclosures = issued.disclosures().to_vec();
    disclosures[0] = forged;
    let tampered = SdJwt::from_parts(issued.issuer_jwt().to_owned(), disclosures, None);
    assert!(matches!(
        verify(&tampered, &VerifyOptions::default()).await,
        Err(SdJwtError::UnreferencedDisclosure)
    ));
}

#[tokio::test]
async fn extra_disclosure_is_unreferenced() {
    let issued = issue_sample().await;
    let extra = Disclosure::property("c2FsdA", "extra", json!(1)).unwrap();
    let text = format!("{issued}{}~", extra.as_str());
    assert!(matches!(
        verify_text(&text, &VerifyOptions::default()).await,
        Err(SdJwtError::UnreferencedDisclosure)
    ));
}

#[tokio::test]
async fn reused_digest_is_refused() {
    let d = Disclosure::property("c2FsdA", "a", json!(1)).unwrap();
    let twice = handmade(json!({"_sd": [digest(&d), digest(&d)]}), &[&d]).await;
    assert!(matches!(
        verify_text(&twice, &VerifyOptions::default()).await,
        Err(SdJwtError::DuplicateDigest)
    ));
    // The same decoy twice is refused as well, disclosure or not.
    let decoy = HashAlg::Sha256.digest_b64url(b"decoy");
    let decoys = handmade(json!({"_sd": [decoy], "o": {"_sd": [decoy]}}), &[]).await;
    assert!(matches!(
        verify_text(&decoys, &VerifyOptions::default()).await,
        Err(SdJwtError::DuplicateDigest)
    ));
    // A digest reused inside a disclosure.
    let inner = Disclosure::property("c2FsdA", "b", json!({"_sd": [digest(&d)]})).unwrap();
    let nested = handmade(json!({"_sd": [digest(&d), digest(&inner)]}), &[&d, &inner]).await;
    assert!(matches!(
        verify_text(&nested, &VerifyOptions::default()).await,
        Err(SdJwtError::DuplicateDigest)
    ));
}

#[tokio::test]
async fn duplicate_disclosure_is_refused() {
    let issued = issue_sample().await;
    let first = issued.disclosures()[0].as_str();
    let text = format!("{issued}{first}~");
    assert!(matches!(
        verify_text(&text, &VerifyOptions::default()).await,
        Err(SdJwtError::DuplicateDisclosure)
    ));
}

#[tokio::test]
async fn reserved_names_in_disclosures_are_refused() {
    for name in ["_sd", "..."] {
        let encoded = b64url_encode(format!(r#"["c2FsdA", "{name}", 1]"#));
        let payload = json!({"_sd": [HashAlg::Sha256.digest_b64url(encoded.as_bytes())]});
        let jwt = sign_payload("example+sd-jwt", &payload).await;
        assert!(matches!(
            verify_text(&format!("{jwt}~{encoded}~"), &VerifyOptions::default()).await,
            Err(SdJwtError::ReservedClaimName(_))
        ));
    }
}

#[tokio::test]
async fn disclosure_colliding_with_a_plaintext_claim_is_refused() {
    let d = Disclosure::property("c2FsdA", "given_name", json!("Mallory")).unwrap();
    let text = handmade(json!({"given_name": "Erika", "_sd": [digest(&d)]}), &[&d]).await;
    assert!(matches!(
        verify_text(&text, &VerifyOptions::default()).await,
        Err(SdJwtError::ClaimCollision(name)) if name == "given_name"
    ));
}

#[tokio::test]
async fn disclosure_kind_must_match_its_place() {
    let element = Disclosure::element("c2FsdA", json!(1));
    let in_sd = handmade(json!({"_sd": [digest(&element)]}), &[&element]).await;
    assert!(matches!(
        verify_text(&in_sd, &VerifyOptions::default()).await,
        Err(SdJwtError::InvalidDisclosure(_))
    ));
    let property = Disclosure::property("c2FsdA", "a", json!(1)).unwrap();
    let in_array = handmade(json!({"list": [{"...": digest(&property)}]}), &[&property]).await;
    assert!(matches!(
        verify_text(&in_array, &VerifyOptions::default()).await,
        Err(SdJwtError::InvalidDisclosure(_))
    ));
}

#[tokio::test]
async fn unknown_sd_alg_is_refused() {
    let text = handmade(json!({"_sd_alg": "md5", "_sd": []}), &[]).await;
    assert!(matches!(
        verify_text(&text, &VerifyOptions::default()).await,
        Err(SdJwtError::UnsupportedHashAlg(name)) if name == "md5"
    ));
    let sha512 = handmade(json!({"_sd_alg": "sha-512"}), &[]).await;
    assert!(matches!(
        verify_text(
            &sha512,
            &VerifyOptions::default().with_hash_algs(&[HashAlg::Sha256])
        )
        .await,
        Err(SdJwtError::UnsupportedHashAlg(_))
    ));
}

#[tokio::test]
async fn wrong_sd_hash_is_refused() {
    let issued = issue_sample().await;
    let kb = KeyBindingClaims::new(AUD, NONCE, NOW);
    let bound = issued
        .present(&paths(&["given_name"]), Some((&kb, &holder_key())))
        .await
        .unwrap();
    let other = issued.select(&paths(&["family_name"])).unwrap();
    let swapped = SdJwt::from_parts(
        other.issuer_jwt().to_owned(),
        other.disclosures().to_vec(),
        bound.key_binding_jwt().map(str::to_owned),
    );
    assert!(matches!(
        verify(&swapped, &kb_options()).await,
        Err(SdJwtError::SdHashMismatch)
    ));
    // Dropping a disclosure after binding changes the hash too.
    let dropped = SdJwt::from_parts(
        bound.issuer_jwt().to_owned(),
        Vec::new(),
        bound.key_binding_jwt().map(str::to_owned),
    );
    assert!(matches!(
        verify(&dropped, &kb_options()).await,
        Err(SdJwtError::SdHashMismatch)
    ));
}

#[tokio::test]
async fn kb_jwt_outside_the_window_is_refused() {
    let issued = issue_sample().await;
    for iat in [NOW - 1000, NOW + 1000] {
        let kb = KeyBindingClaims::new(AUD, NONCE, iat);
        let bound = issued
            .present(&[], Some((&kb, &holder_key())))
            .await
            .unwrap();
        assert!(matches!(
            verify(&bound, &kb_options()).await,
            Err(SdJwtError::KeyBindingExpired)
        ));
    }
    let kb = KeyBindingClaims::new(AUD, NONCE, NOW).with_claim("exp", json!(NOW - 120));
    let expired = issued
        .present(&[], Some((&kb, &holder_key())))
        .await
        .unwrap();
    assert!(matches!(
        verify(&expired, &kb_options()).await,
        Err(SdJwtError::KeyBindingExpired)
    ));
    let old = issued
        .present(
            &[],
            Some((
                &KeyBindingClaims::new(AUD, NONCE, NOW - 1000),
                &holder_key(),
            )),
        )
        .await
        .unwrap();
    verify(&old, &kb_options().with_key_binding_window(3600, 0))
        .await
        .unwrap();
}

#[tokio::test]
async fn wrong_aud_or_nonce_is_refused() {
    let issued = issue_sample().await;
    let wrong_aud = KeyBindingClaims::new("https://evil.example", NONCE, NOW);
    let bound = issued
        .present(&[], Some((&wrong_aud, &holder_key())))
        .await
        .unwrap();
    assert!(matches!(
        verify(&bound, &kb_options()).await,
        Err(SdJwtError::AudienceMismatch)
    ));
    let wrong_nonce = KeyBindingClaims::new(AUD, "replayed", NOW);
    let bound = issued
        .present(&[], Some((&wrong_nonce, &holder_key())))
        .await
        .unwrap();
    assert!(matches!(
        verify(&bound, &kb_options()).await,
        Err(SdJwtError::NonceMismatch)
    ));
}

#[tokio::test]
async fn key_binding_presence_follows_the_policy() {
    let issued = issue_sample().await;
    assert!(matches!(
        verify(&issued, &kb_options()).await,
        Err(SdJwtError::KeyBindingRequired)
    ));
    let kb = KeyBindingClaims::new(AUD, NONCE, NOW);
    let bound = issued
        .present(&[], Some((&kb, &holder_key())))
        .await
        .unwrap();
    assert!(matches!(
        verify(&bound, &VerifyOptions::default()).await,
        Err(SdJwtError::UnexpectedKeyBinding)
    ));
    // A holder refuses an SD-JWT+KB from an issuer.
    assert!(matches!(
        bound.select(&[]),
        Err(SdJwtError::UnexpectedKeyBinding)
    ));
}

#[tokio::test]
async fn kb_jwt_signed_by_another_key_is_refused() {
    let issued = issue_sample().await;
    let kb = KeyBindingClaims::new(AUD, NONCE, NOW);
    let stranger = SigningKey::generate(Algorithm::Es256).unwrap();
    let bound = issued.present(&[], Some((&kb, &stranger))).await.unwrap();
    assert!(matches!(
        verify(&bound, &kb_options()).await,
        Err(SdJwtError::KeyBinding(JoseError::InvalidSignature))
    ));
}

#[tokio::test]
async fn kb_jwt_with_another_typ_is_refused() {
    let issued = issue_sample().await.select(&[]).unwrap();
    let payload =
        json!({"iat": NOW, "aud": AUD, "nonce": NONCE, "sd_hash": issued.sd_hash(HashAlg::Sha256)});
    let kb = jws::sign(
        Header::new(Algorithm::Es256).with_typ("JWT"),
        &serde_json::to_vec(&payload).unwrap(),
        &holder_key(),
    )
    .await
    .unwrap();
    let text = format!("{issued}{kb}");
    assert!(matches!(
        verify_text(&text, &kb_options()).await,
        Err(SdJwtError::KeyBinding(JoseError::UnexpectedType { .. }))
    ));
}

#[tokio::test]
async fn key_binding_without_cnf_is_refused() {
    let plain = handmade(json!({"iss": "https://issuer.example"}), &[]).await;
    let kb = KeyBindingClaims::new(AUD, NONCE, NOW);
    let bound = SdJwt::parse(&plain, &Limits::DEFAULT)
        .unwrap()
        .bind(&kb, &holder_key())
        .await
        .unwrap();
    assert!(matches!(
        verify(&bound, &kb_options()).await,
        Err(SdJwtError::MissingHolderKey)
    ));
}

#[tokio::test]
async fn issuer_signature_and_time_are_checked() {
    let issued = issue_sample().await;
    let stranger = SigningKey::generate(Algorithm::Es256).unwrap();
    let impostor = stranger
        .public_jwk()
        .with_kid(super::issuer_key().kid().as_str());
    let resolver = edk_core::jose::JwksResolver::from_keys([&impostor]);
    assert!(matches!(
        issued
            .verify(&resolver, &VerifyOptions::default(), NOW)
            .await,
        Err(SdJwtError::IssuerJwt(JoseError::InvalidSignature))
    ));
    assert!(matches!(
        issued
            .verify(&issuer_resolver(), &VerifyOptions::default(), NOW + 7200)
            .await,
        Err(SdJwtError::Claims(JoseError::Expired))
    ));
    assert!(matches!(
        issued
            .verify(
                &issuer_resolver(),
                &VerifyOptions::default().with_types(["dc+sd-jwt"]),
                NOW
            )
            .await,
        Err(SdJwtError::UnexpectedType)
    ));
}

#[tokio::test]
async fn oversized_input_is_refused() {
    let issued = issue_sample().await.to_string();
    assert!(matches!(
        SdJwt::parse(&issued, &Limits::DEFAULT.with_max_token_bytes(100)),
        Err(SdJwtError::TooLarge { .. })
    ));
    assert!(matches!(
        SdJwt::parse(&issued, &Limits::DEFAULT.with_max_disclosures(3)),
        Err(SdJwtError::TooManyDisclosures { count: 7, limit: 3 })
    ));
    let parsed = SdJwt::parse(&issued, &Limits::DEFAULT).unwrap();
    assert!(matches!(
        verify(
            &parsed,
            &VerifyOptions::default().with_limits(Limits::DEFAULT.with_max_depth(2))
        )
        .await,
        Err(SdJwtError::TooDeep { limit: 2 })
    ));
    // Depth reached through nested disclosures counts too.
    let inner = Disclosure::property("c2FsdA", "b", json!({"c": {"d": 1}})).unwrap();
    let outer = Disclosure::property("c2FsdA", "a", json!({"_sd": [digest(&inner)]})).unwrap();
    let text = handmade(json!({"_sd": [digest(&outer)]}), &[&outer, &inner]).await;
    assert!(matches!(
        verify_text(
            &text,
            &VerifyOptions::default().with_limits(Limits::DEFAULT.with_max_depth(3))
        )
        .await,
        Err(SdJwtError::TooDeep { .. })
    ));
    verify_text(
        &text,
        &VerifyOptions::default().with_limits(Limits::DEFAULT.with_max_depth(4)),
    )
    .await
    .unwrap();
}
