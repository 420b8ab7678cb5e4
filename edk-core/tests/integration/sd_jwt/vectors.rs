//! The vectors of `tests/vectors/sd-jwt/README.md`, each asserted exactly.

use edk_core::encoding::HashAlg;
use edk_core::jose::JwksResolver;
use edk_core::limits::Limits;
use edk_core::sd_jwt::{Disclosure, KeyBindingClaims, SdJwt, VerifyOptions};
use edk_core::sd_jwt_vc::VcVerifyOptions;
use serde_json::json;

use super::{NOW, holder_key, issuer_key, issuer_resolver, paths, vector};

fn digest_of(encoded: &str) -> String {
    Disclosure::parse(encoded, &Limits::DEFAULT)
        .unwrap()
        .digest(HashAlg::Sha256)
}

#[test]
fn sd_jwt_4_2_1_object_property_disclosure_digest() {
    let encoded = "WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0";
    let d = Disclosure::parse(encoded, &Limits::DEFAULT).unwrap();
    assert_eq!(d.salt(), "_26bc4LT-ac6q2KI6cBW5es");
    assert_eq!(d.name(), Some("family_name"));
    assert_eq!(d.value(), &json!("Möbius"));
    assert_eq!(
        digest_of(encoded),
        "X9yH0Ajrdm1Oij4tWso9UzzKJvPoDxwmuEcO3XAdRC0"
    );
}

#[test]
fn sd_jwt_4_2_2_array_element_disclosure_digest() {
    let encoded = "WyJsa2x4RjVqTVlsR1RQVW92TU5JdkNBIiwgIkZSIl0";
    let d = Disclosure::parse(encoded, &Limits::DEFAULT).unwrap();
    assert_eq!(
        (d.salt(), d.name(), d.value()),
        ("lklxF5jMYlGTPUovMNIvCA", None, &json!("FR"))
    );
    assert_eq!(
        digest_of(encoded),
        "w0I8EKcdCtUPkGCNUrfwVp2xEgNjtoIDlOxc9-PlOhs"
    );
}

#[test]
fn sd_jwt_main_example_given_name_digest() {
    assert_eq!(
        digest_of("WyIyR0xDNDJzS1F2ZUNmR2ZyeU5STjl3IiwgImdpdmVuX25hbWUiLCAiSm9obiJd"),
        "jsu9yVulwQQlhFlM_3JlzMaSFzglhQG0DpfayQwLUK4"
    );
}

const V4_DIGESTS: [(&str, &str); 9] = [
    ("given_name", "jsu9yVulwQQlhFlM_3JlzMaSFzglhQG0DpfayQwLUK4"),
    ("family_name", "TGf4oLbgwd5JQaHyKVQZU9UdGE0w5rtDsrZzfUaomLo"),
    ("email", "JzYjH4svliH0R3PyEMfeZu6Jt69u5qehZo7F7EPYlSE"),
    (
        "phone_number",
        "PorFbpKuVu6xymJagvkFsFXAbRoc2JGlAUA2BA4o7cI",
    ),
    ("address", "IlDzIKeiZdDwpqpK6ZfbyphFvz5FgnWa-sN6wqQXCiw"),
    ("birthdate", "jdrTE8YcbY4EifugihiAe_BPekxJQZICeiUQwY9QqxI"),
    ("is_over_18", "09vKrJMOlyTWM0sjpu_pdOBVBQ2M1y3KhpH515nXkpY"),
    ("is_over_21", "2rsjGbaC0ky8mT0pJrPioWTq0_daw1sX76poUlgCwbI"),
    ("is_over_65", "EkO8dhW0dHEJbvUHlE_VCeuC9uRELOieLZhh7XbUTtA"),
];

fn v4() -> SdJwt {
    SdJwt::parse(
        &vector("oid4vci_credential_response_sd_jwt_vc.txt"),
        &Limits::DEFAULT,
    )
    .unwrap()
}

fn v4_resolver() -> JwksResolver {
    JwksResolver::from_keys([&issuer_key().public_jwk().with_kid("doc-signer-05-25-2022")])
}

#[test]
fn sd_jwt_vc_oid4vci_example_disclosure_digests() {
    let sd_jwt = v4();
    assert_eq!(sd_jwt.disclosures().len(), 9);
    for (disclosure, (name, digest)) in sd_jwt.disclosures().iter().zip(V4_DIGESTS) {
        assert_eq!(disclosure.name(), Some(name));
        assert_eq!(disclosure.digest(HashAlg::Sha256), digest);
    }
}

#[tokio::test]
async fn sd_jwt_vc_oid4vci_example_verifies_with_published_key() {
    let verified = v4()
        .verify_vc(&v4_resolver(), &VcVerifyOptions::default(), NOW)
        .await
        .unwrap();
    assert_eq!(
        verified.vct(),
        "https://credentials.example.com/identity_credential"
    );
    assert_eq!(verified.issuer(), Some("https://example.com/issuer"));
    assert_eq!(verified.sd_jwt().header().typ.as_deref(), Some("vc+sd-jwt"));
    assert_eq!(verified.sd_jwt().disclosed().len(), 9);
    let claims = verified.claims();
    assert_eq!(claims["given_name"], "John");
    assert_eq!(claims["family_name"], "Doe");
    assert_eq!(claims["email"], "johndoe@example.com");
    assert_eq!(claims["phone_number"], "+1-202-555-0101");
    assert_eq!(
        claims["address"],
        json!({"street_address": "123 Main St", "locality": "Anytown", "region": "Anystate", "country": "US"})
    );
    assert_eq!(claims["birthdate"], "1940-01-01");
    assert_eq!(claims["is_over_18"], true);
    assert_eq!(claims["is_over_65"], true);
    assert_eq!(
        claims["cnf"]["jwk"]["x"],
        "TCAER19Zvu3OHF4j4W4vfSVoHIP1ILilDls7vCeGemc"
    );
    assert!(claims.get("_sd").is_none() && claims.get("_sd_alg").is_none());
}

#[test]
fn sd_jwt_vc_oid4vci_example_sd_hash() {
    let sd_jwt = v4();
    let two = sd_jwt
        .select(&paths(&["given_name", "family_name"]))
        .unwrap();
    assert_eq!(
        two.sd_hash(HashAlg::Sha256),
        "iv_UVmMP37IMnkzPD5P9BXEGAYVFkyaRJxnOUjfy8w4"
    );
    let none = sd_jwt.select(&[]).unwrap();
    assert_eq!(none.sd_hash_input(), format!("{}~", sd_jwt.issuer_jwt()));
    assert_eq!(
        none.sd_hash(HashAlg::Sha256),
        "aiQhJjJrzWQ9YBtCFIJSznN6FSuOk6kovFf-JpBArfQ"
    );
}

#[tokio::test]
async fn sd_jwt_vc_oid4vci_example_presented_with_the_example_holder_key() {
    let kb = KeyBindingClaims::new("https://verifier.example", "1234567890", NOW);
    let presented = v4()
        .present(
            &paths(&["given_name", "address"]),
            Some((&kb, &holder_key())),
        )
        .await
        .unwrap()
        .to_string();
    let verified = SdJwt::parse(&presented, &Limits::DEFAULT)
        .unwrap()
        .verify_vc(
            &v4_resolver(),
            &VcVerifyOptions::default().with_key_binding("https://verifier.example", "1234567890"),
            NOW + 5,
        )
        .await
        .unwrap();
    assert_eq!(verified.claims()["given_name"], "John");
    assert!(verified.claims().get("family_name").is_none());
    assert_eq!(
        verified.sd_jwt().key_binding().unwrap()["nonce"],
        "1234567890"
    );
}

#[tokio::test]
async fn status_list_6_2_recursive_disclosures_verify() {
    let sd_jwt = SdJwt::parse(
        &vector("status_list_referenced_token.txt"),
        &Limits::DEFAULT,
    )
    .unwrap();
    let digests: Vec<String> = sd_jwt
        .disclosures()
        .iter()
        .map(|d| d.digest(HashAlg::Sha256))
        .collect();
    assert_eq!(
        digests,
        [
            "9gjVuXtdFROCgRrtNcGUXmF65rdezi_6Er_j76kmYyM",
            "6vh9bq-zS4GKM_7GpggVbYzzu6oOGXrmNVGPHP75Ud0",
            "KURDPh4ZC19-3tiz-Df39V8eidy1oV3a3H1Da2N0g88",
            "WN9r9dCBJ8HTCsS2jKASxTjEyW5m5x65_Z_2ro2jfXM",
            "HvrKX6fPV0v9K_yCVFBiLFHsMaxcD_114Em6VT8x1lg",
        ]
    );
    let verified = sd_jwt
        .verify(
            &issuer_resolver(),
            &VerifyOptions::default().with_types(["example+sd-jwt"]),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        verified.claims()["address"],
        json!({"street_address": "Schulstr. 12", "locality": "Schulpforta", "region": "Sachsen-Anhalt", "country": "DE"})
    );
    assert_eq!(verified.claims()["status"]["status_list"]["idx"], 0);
    let disclosed: Vec<String> = verified
        .disclosed()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(disclosed.contains(&"address.street_address".to_owned()));
    assert_eq!(disclosed.len(), 5);
}
