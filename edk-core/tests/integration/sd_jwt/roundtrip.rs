//! Issue, present and verify, in both serializations and with every key source.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;
use edk_core::clock::FixedClock;
use edk_core::jose::{Algorithm, SigningKey};
use edk_core::jose::{JoseError, KeyQuery, KeyResolver, VerifyingKey};
use edk_core::limits::Limits;
use edk_core::sd_jwt::IssueOptions;
use edk_core::sd_jwt::{JsonSerialization, KeyBindingClaims, SdJwt, SdJwtError, VerifyOptions};
use edk_core::sd_jwt_vc::{IssuerMetadata, SdJwtVcBuilder, SdJwtVcError, VcVerifyOptions};
use edk_core::x5c::{X5cChainCache, X5cResolver};
use serde_json::json;

use super::{
    NOW, SAMPLE_SD, holder_key, issue_sample, issuer_key, issuer_resolver, paths, sample_claims,
};

fn kb_options() -> VerifyOptions {
    VerifyOptions::default().with_key_binding("https://verifier.example", "n-0S6")
}

fn kb_claims() -> KeyBindingClaims {
    KeyBindingClaims::new("https://verifier.example", "n-0S6", NOW)
}

#[tokio::test]
async fn full_disclosure_restores_the_claims() {
    let issued = issue_sample().await;
    assert_eq!(issued.disclosures().len(), SAMPLE_SD.len());
    let verified = SdJwt::parse(&issued.to_string(), &Limits::DEFAULT)
        .unwrap()
        .verify(&issuer_resolver(), &VerifyOptions::default(), NOW)
        .await
        .unwrap();
    let mut expected = sample_claims();
    let mut claims = verified.claims().clone();
    expected.sort_keys();
    claims.sort_keys();
    assert_eq!(claims, expected);
}

#[tokio::test]
async fn presenting_a_nested_claim_reveals_its_parent_only() {
    let issued = issue_sample().await;
    let presented = issued
        .present(
            &paths(&["address.locality", "nationalities.2"]),
            Some((&kb_claims(), &holder_key())),
        )
        .await
        .unwrap();
    assert_eq!(presented.disclosures().len(), 3);
    let verified = SdJwt::parse(&presented.to_string(), &Limits::DEFAULT)
        .unwrap()
        .verify(&issuer_resolver(), &kb_options(), NOW + 10)
        .await
        .unwrap();
    let claims = verified.claims();
    assert_eq!(
        claims["address"],
        json!({"locality": "Köln", "country": "DE"})
    );
    assert_eq!(claims["nationalities"], json!(["FR", "US"]));
    assert!(claims.get("given_name").is_none());
    let kb = verified.key_binding().unwrap();
    assert_eq!(kb["aud"], "https://verifier.example");
    assert_eq!(
        kb["sd_hash"],
        presented
            .clone()
            .without_key_binding()
            .sd_hash(edk_core::encoding::HashAlg::Sha256)
    );
}

#[tokio::test]
async fn array_indices_count_visible_elements() {
    let issued = issue_sample().await;
    // "nationalities.1" is "FR" (plain), ".2" is the disclosable "US".
    let presented = issued.select(&paths(&["nationalities.2"])).unwrap();
    assert_eq!(presented.disclosures().len(), 1);
    assert_eq!(presented.disclosures()[0].value(), &json!("US"));
    let err = issued.select(&paths(&["nationalities.3"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "claim path `nationalities.3` names no claim",
        "{err:?}"
    );
}

#[tokio::test]
async fn json_serializations_verify_with_key_binding() {
    let issued = issue_sample().await;
    let presented = issued
        .present(&paths(&["given_name"]), Some((&kb_claims(), &holder_key())))
        .await
        .unwrap();
    for layout in [JsonSerialization::Flattened, JsonSerialization::General] {
        let json = presented.to_json(layout).to_string();
        let parsed = SdJwt::parse(&json, &Limits::DEFAULT).unwrap();
        assert_eq!(parsed, presented);
        let verified = parsed
            .verify(&issuer_resolver(), &kb_options(), NOW)
            .await
            .unwrap();
        assert_eq!(verified.claims()["given_name"], "Erika");
    }
    let flattened = presented.to_json(JsonSerialization::Flattened);
    assert_eq!(
        flattened["header"]["disclosures"].as_array().unwrap().len(),
        1
    );
    assert!(flattened["header"]["kb_jwt"].is_string());
}

/// A resolver keyed by DID URL, standing in for DID resolution.
#[derive(Debug, Default)]
struct DidUrlResolver {
    keys: Vec<(String, Arc<VerifyingKey>)>,
    asked: Mutex<Vec<String>>,
}

#[async_trait]
impl KeyResolver for DidUrlResolver {
    async fn resolve(&self, query: &KeyQuery<'_>) -> Result<Arc<VerifyingKey>, JoseError> {
        let kid = query.kid.ok_or(JoseError::KeyNotFound)?;
        self.asked.lock().unwrap().push(kid.to_owned());
        self.keys
            .iter()
            .find(|(url, _)| url == kid)
            .map(|(_, key)| Arc::clone(key))
            .ok_or(JoseError::KeyNotFound)
    }
}

#[tokio::test]
async fn did_url_kid_reaches_the_key_resolver() {
    let kid = "did:example:issuer#key-1";
    let issued = SdJwtVcBuilder::new("https://credentials.example/id")
        .issuer("did:example:issuer")
        .kid(kid)
        .claim("given_name", "Erika")
        .selectively_disclose("given_name".parse().unwrap())
        .issue(&issuer_key(), &IssueOptions::default())
        .await
        .unwrap();
    let resolver = DidUrlResolver {
        keys: vec![(
            kid.to_owned(),
            Arc::new(issuer_key().verifying_key().clone()),
        )],
        ..Default::default()
    };
    let verified = issued
        .verify_vc(&resolver, &VcVerifyOptions::default(), NOW)
        .await
        .unwrap();
    assert_eq!(verified.claims()["given_name"], "Erika");
    assert_eq!(*resolver.asked.lock().unwrap(), [kid]);

    let other = DidUrlResolver {
        keys: vec![(
            "did:example:issuer#key-2".to_owned(),
            Arc::new(issuer_key().verifying_key().clone()),
        )],
        ..Default::default()
    };
    assert!(matches!(
        issued
            .verify_vc(&other, &VcVerifyOptions::default(), NOW)
            .await,
        Err(SdJwtVcError::SdJwt(SdJwtError::IssuerJwt(
            JoseError::KeyNotFound
        )))
    ));
}

#[tokio::test]
async fn issuer_metadata_keys_answer_only_for_their_issuer() {
    let metadata: IssuerMetadata = serde_json::from_value(json!({
        "issuer": "https://example.com",
        "jwks": {"keys": [issuer_key().public_jwk().with_kid("doc-signer-05-25-2022")]},
    }))
    .unwrap();
    let issue = |iss: &'static str| async move {
        SdJwtVcBuilder::new("urn:example:vct")
            .issuer(iss)
            .kid("doc-signer-05-25-2022")
            .issue(&issuer_key(), &IssueOptions::default())
            .await
            .unwrap()
    };
    let ok = issue("https://example.com").await;
    ok.verify_vc(
        &metadata.resolver().unwrap(),
        &VcVerifyOptions::default(),
        NOW,
    )
    .await
    .unwrap();
    let other = issue("https://example.com/other").await;
    assert!(matches!(
        other
            .verify_vc(
                &metadata.resolver().unwrap(),
                &VcVerifyOptions::default(),
                NOW,
            )
            .await,
        Err(SdJwtVcError::SdJwt(SdJwtError::IssuerJwt(
            JoseError::KeyNotFound
        )))
    ));
}

/// SD-JWT VC §3.2: metadata naming `jwks_uri` parses; the JWKS the caller fetched from it
/// verifies the issuer's credentials, for that issuer only.
#[tokio::test]
async fn issuer_metadata_with_a_jwks_uri_verifies_with_the_fetched_keys() {
    let metadata: IssuerMetadata = serde_json::from_value(json!({
        "issuer": "https://example.com/tenant/1234",
        "jwks_uri": "https://jwt-vc-issuer.example.org/my_public_keys.jwks",
    }))
    .unwrap();
    assert!(metadata.resolver().is_none());
    let fetched = edk_core::jose::JwkSet {
        keys: vec![issuer_key().public_jwk().with_kid("doc-signer-05-25-2022")],
    };
    let resolver = metadata.resolver_with(&fetched);
    let issue = |iss: &'static str| async move {
        SdJwtVcBuilder::new("urn:example:vct")
            .issuer(iss)
            .kid("doc-signer-05-25-2022")
            .issue(&issuer_key(), &IssueOptions::default())
            .await
            .unwrap()
    };
    issue("https://example.com/tenant/1234")
        .await
        .verify_vc(&resolver, &VcVerifyOptions::default(), NOW)
        .await
        .unwrap();
    assert!(matches!(
        issue("https://example.com")
            .await
            .verify_vc(&resolver, &VcVerifyOptions::default(), NOW)
            .await,
        Err(SdJwtVcError::SdJwt(SdJwtError::IssuerJwt(
            JoseError::KeyNotFound
        )))
    ));
}

struct Pki {
    root: Vec<u8>,
    chain: Vec<String>,
    leaf_key: SigningKey,
}

/// A root CA and a leaf for `issuer.example` (DNS SAN) and `https://issuer.example/tenant`
/// (URI SAN), valid during 2023.
fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.not_before = rcgen::date_time_ymd(2023, 1, 1);
    ca.not_after = rcgen::date_time_ymd(2024, 1, 1);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut leaf = CertificateParams::new(vec!["issuer.example".to_owned()]).unwrap();
    leaf.subject_alt_names.push(SanType::URI(
        "https://issuer.example/tenant".try_into().unwrap(),
    ));
    leaf.not_before = rcgen::date_time_ymd(2023, 1, 1);
    leaf.not_after = rcgen::date_time_ymd(2024, 1, 1);
    let leaf_cert = leaf.signed_by(&leaf_key, &Issuer::new(ca, ca_key)).unwrap();
    let b64 = |der: &[u8]| base64::engine::general_purpose::STANDARD.encode(der);
    Pki {
        root: ca_cert.der().to_vec(),
        chain: vec![b64(leaf_cert.der()), b64(ca_cert.der())],
        leaf_key: SigningKey::from_pkcs8_der(Algorithm::Es256, &leaf_key.serialize_der()).unwrap(),
    }
}

#[tokio::test]
async fn x5c_chains_validate_to_the_configured_root() {
    let pki = pki();
    let mid_2023 = Arc::new(FixedClock::at_unix(NOW));
    let issue = |iss: &'static str, chain: Vec<String>| {
        let key = &pki.leaf_key;
        async move {
            SdJwtVcBuilder::new("urn:example:vct")
                .issuer(iss)
                .x5c(chain)
                .issue(key, &IssueOptions::default())
                .await
                .unwrap()
        }
    };
    let resolver = X5cResolver::new([pki.root.clone()], mid_2023.clone()).unwrap();
    for iss in ["https://issuer.example", "https://issuer.example/tenant"] {
        issue(iss, pki.chain.clone())
            .await
            .verify_vc(&resolver, &VcVerifyOptions::default(), NOW)
            .await
            .unwrap();
    }
    // Leaf only: the root is the anchor itself.
    issue("https://issuer.example", pki.chain[..1].to_vec())
        .await
        .verify_vc(&resolver, &VcVerifyOptions::default(), NOW)
        .await
        .unwrap();

    let untrusted = |err: Result<_, SdJwtVcError>| {
        matches!(
            err,
            Err(SdJwtVcError::SdJwt(SdJwtError::IssuerJwt(
                JoseError::UntrustedKey(_)
            )))
        )
    };
    // SD-JWT VC -18 asks nothing of `iss` and the leaf's names: by default the chain alone
    // decides, and a credential whose `iss` the leaf does not name verifies.
    let wrong_iss = issue("https://other.example", pki.chain.clone()).await;
    wrong_iss
        .verify_vc(&resolver, &VcVerifyOptions::default(), NOW)
        .await
        .unwrap();
    // Opted in, the leaf must name `iss` (URI SAN, or DNS SAN = host of an https `iss`).
    let strict = X5cResolver::new([pki.root.clone()], mid_2023.clone())
        .unwrap()
        .require_issuer_in_san();
    assert!(matches!(
        wrong_iss
            .verify_vc(&strict, &VcVerifyOptions::default(), NOW)
            .await,
        Err(SdJwtVcError::SdJwt(SdJwtError::IssuerJwt(
            JoseError::UntrustedKey("the x5c leaf is not issued to the token's issuer")
        )))
    ));
    for iss in ["https://issuer.example", "https://issuer.example/tenant"] {
        issue(iss, pki.chain.clone())
            .await
            .verify_vc(&strict, &VcVerifyOptions::default(), NOW)
            .await
            .unwrap();
    }

    let good = issue("https://issuer.example", pki.chain.clone()).await;
    let expired = X5cResolver::new(
        [pki.root.clone()],
        Arc::new(FixedClock::at_unix(1_800_000_000)),
    )
    .unwrap();
    assert!(untrusted(
        good.verify_vc(&expired, &VcVerifyOptions::default(), NOW)
            .await
    ));
    let other_root = X5cResolver::new([self::pki().root], mid_2023).unwrap();
    assert!(untrusted(
        good.verify_vc(&other_root, &VcVerifyOptions::default(), NOW)
            .await
    ));
}

#[tokio::test]
async fn cached_x5c_chains_keep_every_check() {
    let pki = pki();
    let clock = Arc::new(FixedClock::at_unix(NOW));
    let issue = |iss: &'static str, chain: Vec<String>| {
        let key = &pki.leaf_key;
        async move {
            SdJwtVcBuilder::new("urn:example:vct")
                .issuer(iss)
                .x5c(chain)
                .issue(key, &IssueOptions::default())
                .await
                .unwrap()
        }
    };
    let untrusted = |err: Result<_, SdJwtVcError>| {
        matches!(
            err,
            Err(SdJwtVcError::SdJwt(SdJwtError::IssuerJwt(
                JoseError::UntrustedKey(_)
            )))
        )
    };
    let cache = Arc::new(X5cChainCache::new(4));
    let resolver = X5cResolver::new([pki.root.clone()], clock.clone())
        .unwrap()
        .with_chain_cache(Arc::clone(&cache));
    let good = issue("https://issuer.example", pki.chain.clone()).await;
    for _ in 0..2 {
        good.verify_vc(&resolver, &VcVerifyOptions::default(), NOW)
            .await
            .unwrap();
    }
    assert_eq!(cache.len(), 1, "one chain under one anchor set");

    // The same anchors, listed again, find the entry.
    let same_anchors = X5cResolver::new([pki.root.clone(), pki.root.clone()], clock.clone())
        .unwrap()
        .with_chain_cache(Arc::clone(&cache));
    good.verify_vc(&same_anchors, &VcVerifyOptions::default(), NOW)
        .await
        .unwrap();
    assert_eq!(cache.len(), 1);

    // Another anchor set (the root removed, another added) never uses the entry.
    let other_anchors = X5cResolver::new([self::pki().root], clock.clone())
        .unwrap()
        .with_chain_cache(Arc::clone(&cache));
    assert!(untrusted(
        good.verify_vc(&other_anchors, &VcVerifyOptions::default(), NOW)
            .await
    ));
    let no_anchors = X5cResolver::new(Vec::<Vec<u8>>::new(), clock.clone())
        .unwrap()
        .with_chain_cache(Arc::clone(&cache));
    assert!(untrusted(
        good.verify_vc(&no_anchors, &VcVerifyOptions::default(), NOW)
            .await
    ));

    // A strict resolver sharing the cache still checks the leaf's names against `iss`.
    let strict = X5cResolver::new([pki.root.clone()], clock.clone())
        .unwrap()
        .require_issuer_in_san()
        .with_chain_cache(Arc::clone(&cache));
    assert!(untrusted(
        issue("https://other.example", pki.chain.clone())
            .await
            .verify_vc(&strict, &VcVerifyOptions::default(), NOW)
            .await
    ));
    good.verify_vc(&strict, &VcVerifyOptions::default(), NOW)
        .await
        .unwrap();

    // The certificates' validity is checked against the clock on every hit.
    clock.set_unix(1_800_000_000);
    assert!(untrusted(
        good.verify_vc(&resolver, &VcVerifyOptions::default(), NOW)
            .await
    ));
    clock.set_unix(NOW);
    good.verify_vc(&resolver, &VcVerifyOptions::default(), NOW)
        .await
        .unwrap();

    // The cache holds at most its capacity.
    let small = Arc::new(X5cChainCache::new(1));
    let resolver = X5cResolver::new([pki.root.clone()], clock.clone())
        .unwrap()
        .with_chain_cache(Arc::clone(&small));
    for chain in [pki.chain.clone(), pki.chain[..1].to_vec()] {
        issue("https://issuer.example", chain)
            .await
            .verify_vc(&resolver, &VcVerifyOptions::default(), NOW)
            .await
            .unwrap();
    }
    assert_eq!(small.len(), 1);
}
