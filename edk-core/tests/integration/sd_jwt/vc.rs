//! SD-JWT VC rules on top of RFC 9901.

use edk_core::jose::{Algorithm, Header, JoseError, Validation};
use edk_core::limits::Limits;
use edk_core::sd_jwt::{self, IssueOptions, KeyBindingClaims, SdJwt, SdJwtError};
use edk_core::sd_jwt_vc::{SdJwtVcBuilder, SdJwtVcError, VcVerifyOptions};
use serde_json::json;

use super::{NOW, holder_key, issuer_key, issuer_resolver, object, paths, sign_payload};

const VCT: &str = "https://credentials.example/identity";

async fn credential() -> SdJwt {
    SdJwtVcBuilder::new(VCT)
        .issuer("https://issuer.example")
        .issued_at(NOW - 60)
        .expires_at(NOW + 3600)
        .holder_key(&holder_key().to_jwk().unwrap())
        .status(json!({"status_list": {"idx": 7, "uri": "https://issuer.example/status/1"}}))
        .claim("given_name", "Erika")
        .claim("address", json!({"locality": "Köln", "country": "DE"}))
        .selectively_disclose("given_name".parse().unwrap())
        .selectively_disclose("address.locality".parse().unwrap())
        .issue(&issuer_key(), &IssueOptions::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn issued_credential_has_the_vc_shape() {
    let issued = credential().await;
    let header: serde_json::Value = serde_json::from_slice(
        &edk_core::encoding::b64url_decode(issued.issuer_jwt().split('.').next().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(header["typ"], "dc+sd-jwt");
    let payload = issued.unverified_payload().unwrap();
    assert_eq!(payload["vct"], VCT);
    assert_eq!(payload["iss"], "https://issuer.example");
    assert!(
        payload["cnf"]["jwk"].get("d").is_none(),
        "only the public holder key"
    );
    assert_eq!(payload["status"]["status_list"]["idx"], 7);
    assert_eq!(payload["_sd_alg"], "sha-256");
}

#[tokio::test]
async fn credential_presents_and_verifies_with_key_binding() {
    let kb = KeyBindingClaims::new("x509_san_dns:verifier.example", "abc", NOW);
    let presented = credential()
        .await
        .present(&paths(&["address.locality"]), Some((&kb, &holder_key())))
        .await
        .unwrap();
    let verified = SdJwt::parse(&presented.to_string(), &Limits::DEFAULT)
        .unwrap()
        .verify_vc(
            &issuer_resolver(),
            &VcVerifyOptions::default()
                .with_key_binding("x509_san_dns:verifier.example", "abc")
                .accepting_vct(VCT)
                .with_validation(Validation::default().with_issuer("https://issuer.example")),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(verified.vct(), VCT);
    assert_eq!(verified.status().unwrap()["status_list"]["idx"], 7);
    assert_eq!(
        verified.claims()["address"],
        json!({"locality": "Köln", "country": "DE"})
    );
    assert!(verified.claims().get("given_name").is_none());
}

#[tokio::test]
async fn legacy_typ_is_accepted_and_others_refused() {
    let payload = json!({"vct": VCT, "iss": "https://issuer.example"});
    for (typ, ok) in [
        ("vc+sd-jwt", true),
        ("dc+sd-jwt", true),
        ("application/dc+sd-jwt", true),
        ("example+sd-jwt", false),
        ("JWT", false),
    ] {
        let jwt = sign_payload(typ, &payload).await;
        let result = SdJwt::parse(&format!("{jwt}~"), &Limits::DEFAULT)
            .unwrap()
            .verify_vc(&issuer_resolver(), &VcVerifyOptions::default(), NOW)
            .await;
        assert_eq!(result.is_ok(), ok, "{typ}");
        if !ok {
            assert!(matches!(
                result,
                Err(SdJwtVcError::SdJwt(SdJwtError::UnexpectedType))
            ));
        }
    }
}

#[tokio::test]
async fn missing_vct_is_refused() {
    let jwt = sign_payload("dc+sd-jwt", &json!({"iss": "https://issuer.example"})).await;
    let result = SdJwt::parse(&format!("{jwt}~"), &Limits::DEFAULT)
        .unwrap()
        .verify_vc(&issuer_resolver(), &VcVerifyOptions::default(), NOW)
        .await;
    assert!(matches!(result, Err(SdJwtVcError::MissingVct)));
}

#[tokio::test]
async fn hidden_registered_claims_are_refused() {
    for hidden in ["status", "cnf.jwk", "exp"] {
        let claims = object(json!({
            "vct": VCT,
            "exp": NOW + 60,
            "cnf": {"jwk": holder_key().public_jwk()},
            "status": {"status_list": {"idx": 1, "uri": "https://s"}},
        }));
        let issued = sd_jwt::issue(
            Header::new(Algorithm::Es256).with_typ("dc+sd-jwt"),
            claims,
            &paths(&[hidden]),
            &IssueOptions::default(),
            &issuer_key(),
        )
        .await
        .unwrap();
        let result = issued
            .verify_vc(&issuer_resolver(), &VcVerifyOptions::default(), NOW)
            .await;
        assert!(
            matches!(&result, Err(SdJwtVcError::NotSelectivelyDisclosable(name)) if hidden.starts_with(name.as_str())),
            "{hidden}: {result:?}"
        );
    }
}

#[tokio::test]
async fn vct_must_be_an_accepted_one() {
    let issued = credential().await;
    let result = issued
        .verify_vc(
            &issuer_resolver(),
            &VcVerifyOptions::default().accepting_vct("urn:other"),
            NOW,
        )
        .await;
    assert!(matches!(result, Err(SdJwtVcError::VctMismatch)));
    let aka = sign_payload("dc+sd-jwt", &json!({"vct": VCT, "aka_vcts": ["urn:other"]})).await;
    SdJwt::parse(&format!("{aka}~"), &Limits::DEFAULT)
        .unwrap()
        .verify_vc(
            &issuer_resolver(),
            &VcVerifyOptions::default().accepting_vct("urn:other"),
            NOW,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn expired_credential_is_refused() {
    let result = credential()
        .await
        .verify_vc(&issuer_resolver(), &VcVerifyOptions::default(), NOW + 7200)
        .await;
    assert!(matches!(
        result,
        Err(SdJwtVcError::SdJwt(SdJwtError::Claims(JoseError::Expired)))
    ));
}
