//! SD-JWT VC Type Metadata: integrity strings, resolution of a type and the types it
//! extends, and credentials checked against the claim rules.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use edk_core::sd_jwt::{IssueOptions, SdJwt};
use edk_core::sd_jwt_vc::type_metadata::{
    Integrity, TypeMetadataError, TypeMetadataFetcher, TypeMetadataResolver,
};
use edk_core::sd_jwt_vc::{SdJwtVcBuilder, VcVerifyOptions};
use serde_json::{Value, json};

use super::{NOW, issuer_key, issuer_resolver};

const BASE: &str = "https://types.example/base";
const PID: &str = "https://types.example/pid";

/// Documents by URL, counting fetches.
#[derive(Debug, Default)]
struct Documents {
    bytes: HashMap<String, Vec<u8>>,
    fetches: Mutex<usize>,
}

impl Documents {
    fn with(mut self, vct: &str, document: &Value) -> Self {
        self.bytes
            .insert(vct.to_owned(), serde_json::to_vec(document).unwrap());
        self
    }

    fn integrity(&self, vct: &str) -> String {
        Integrity::sha256_of(&self.bytes[vct])
    }
}

#[async_trait]
impl TypeMetadataFetcher for Documents {
    async fn fetch(&self, vct: &str) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
        *self.fetches.lock().unwrap() += 1;
        self.bytes
            .get(vct)
            .cloned()
            .ok_or_else(|| format!("no document at {vct}").into())
    }
}

fn base() -> Value {
    json!({
        "vct": BASE,
        "name": "Base identity",
        "display": [{ "locale": "en-US", "name": "Identity" }],
        "claims": [
            { "path": ["family_name"], "sd": "always" },
            { "path": ["nationalities", null], "sd": "allowed" },
            { "path": ["issuing_country"], "sd": "never", "mandatory": true },
        ],
    })
}

fn pid(extends_integrity: Option<String>) -> Value {
    let mut pid = json!({
        "vct": PID,
        "extends": BASE,
        "claims": [
            { "path": ["given_name"], "sd": "always", "mandatory": true,
              "display": [{ "locale": "de-DE", "label": "Vorname" }] },
        ],
    });
    if let Some(integrity) = extends_integrity {
        pid["extends#integrity"] = json!(integrity);
    }
    pid
}

async fn credential(integrity: &str, clear: &[&str], hidden: &[&str]) -> SdJwt {
    let mut builder = SdJwtVcBuilder::new(PID)
        .issuer("https://issuer.example")
        .vct_integrity(integrity)
        .claim("given_name", "Erika")
        .claim("family_name", "Mustermann")
        .claim("nationalities", json!(["DE", "FR"]))
        .claim("issuing_country", "DE");
    for name in clear.iter().chain(hidden) {
        assert!(
            [
                "given_name",
                "family_name",
                "nationalities",
                "issuing_country"
            ]
            .contains(name)
        );
    }
    for name in hidden {
        builder = builder.selectively_disclose(name.parse().unwrap());
    }
    builder
        .issue(&issuer_key(), &IssueOptions::default())
        .await
        .unwrap()
}

#[test]
fn integrity_strings_pick_the_strongest_algorithm() {
    let bytes = b"{\"vct\":\"x\"}";
    let sha256 = Integrity::sha256_of(bytes);
    assert!(sha256.starts_with("sha256-"));
    assert!(Integrity::parse(&sha256).unwrap().matches(bytes));
    assert!(!Integrity::parse(&sha256).unwrap().matches(b"{}"));
    // A wrong sha384 beside a right sha256: the strongest decides.
    let wrong384 = format!("sha384-{}", "A".repeat(64));
    assert!(
        !Integrity::parse(&format!("{sha256} {wrong384}"))
            .unwrap()
            .matches(bytes)
    );
    // Unknown algorithms are skipped; none known is an error.
    assert!(
        Integrity::parse(&format!("md5-AAAA {sha256}"))
            .unwrap()
            .matches(bytes)
    );
    for bad in ["", "md5-AAAA", "sha256-!!", "sha256-AAAA", "sha256"] {
        assert!(Integrity::parse(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn a_type_and_the_type_it_extends_are_resolved_checked_and_cached() {
    let documents = Documents::default().with(BASE, &base());
    let base_integrity = documents.integrity(BASE);
    let documents = Arc::new(documents.with(PID, &pid(Some(base_integrity))));
    let resolver =
        TypeMetadataResolver::new(Arc::clone(&documents) as Arc<dyn TypeMetadataFetcher>);
    let integrity = documents.integrity(PID);
    let resolved = resolver.resolve(PID, Some(&integrity)).await.unwrap();
    assert_eq!(resolved.chain().len(), 2);
    assert_eq!(resolved.metadata().vct, PID);
    assert_eq!(resolved.chain()[1].name.as_deref(), Some("Base identity"));
    resolver.resolve(PID, Some(&integrity)).await.unwrap();
    assert_eq!(
        *documents.fetches.lock().unwrap(),
        2,
        "each document fetched once"
    );

    // A credential that follows the rules.
    let issued = credential(
        &integrity,
        &["issuing_country"],
        &["given_name", "family_name"],
    )
    .await;
    let verified = issued
        .verify_vc(&issuer_resolver(), &VcVerifyOptions::default(), NOW)
        .await
        .unwrap();
    assert_eq!(verified.vct_integrity(), Some(integrity.as_str()));
    resolved.check(&verified).unwrap();

    // family_name in the clear breaks the base type's `sd: always`.
    let clear = credential(
        &integrity,
        &["family_name", "issuing_country"],
        &["given_name"],
    )
    .await;
    let verified = clear
        .verify_vc(&issuer_resolver(), &VcVerifyOptions::default(), NOW)
        .await
        .unwrap();
    let err = resolved.check(&verified).unwrap_err();
    assert!(
        matches!(&err, TypeMetadataError::ClaimRule { path, .. } if path == "[\"family_name\"]"),
        "{err}"
    );

    // issuing_country disclosed breaks `sd: never`.
    let hidden = credential(
        &integrity,
        &[],
        &["given_name", "family_name", "issuing_country"],
    )
    .await;
    let verified = hidden
        .verify_vc(&issuer_resolver(), &VcVerifyOptions::default(), NOW)
        .await
        .unwrap();
    assert!(matches!(
        resolved.check(&verified),
        Err(TypeMetadataError::ClaimRule { .. })
    ));
}

#[tokio::test]
async fn tampered_looping_and_loosening_types_are_refused() {
    // A document that is not the one the integrity names.
    let documents = Arc::new(Documents::default().with(BASE, &base()));
    let resolver =
        TypeMetadataResolver::new(Arc::clone(&documents) as Arc<dyn TypeMetadataFetcher>);
    let other = Integrity::sha256_of(b"something else");
    assert!(matches!(
        resolver.resolve(BASE, Some(&other)).await,
        Err(TypeMetadataError::IntegrityMismatch(_))
    ));
    // A document served for another vct.
    let documents = Arc::new(Documents::default().with(PID, &base()));
    let resolver = TypeMetadataResolver::new(documents as Arc<dyn TypeMetadataFetcher>);
    assert!(matches!(
        resolver.resolve(PID, None).await,
        Err(TypeMetadataError::VctMismatch(_))
    ));
    // A loop.
    let mut looping = base();
    looping["extends"] = json!(PID);
    let documents = Arc::new(
        Documents::default()
            .with(BASE, &looping)
            .with(PID, &pid(None)),
    );
    let resolver = TypeMetadataResolver::new(documents as Arc<dyn TypeMetadataFetcher>);
    assert!(matches!(
        resolver.resolve(PID, None).await,
        Err(TypeMetadataError::ExtendsChain(_))
    ));
    // A child that makes `sd: never` selectively disclosable and a mandatory claim optional.
    let mut loose = pid(None);
    loose["claims"] = json!([{ "path": ["issuing_country"], "sd": "allowed" }]);
    let documents = Arc::new(Documents::default().with(BASE, &base()).with(PID, &loose));
    let resolver = TypeMetadataResolver::new(documents as Arc<dyn TypeMetadataFetcher>);
    assert!(matches!(
        resolver.resolve(PID, None).await,
        Err(TypeMetadataError::Loosened { .. })
    ));
    // Malformed documents and a fetch failure.
    for bad in [
        json!({ "name": "no vct" }),
        json!({ "vct": BASE, "claims": [{ "path": [] }] }),
        json!({ "vct": BASE, "claims": [{ "path": [-1] }] }),
        json!({ "vct": BASE, "display": [{ "name": "no locale" }] }),
    ] {
        let documents = Arc::new(Documents::default().with(BASE, &bad));
        let resolver = TypeMetadataResolver::new(documents as Arc<dyn TypeMetadataFetcher>);
        assert!(
            matches!(
                resolver.resolve(BASE, None).await,
                Err(TypeMetadataError::Malformed { .. })
            ),
            "{bad}"
        );
    }
    let resolver =
        TypeMetadataResolver::new(Arc::new(Documents::default()) as Arc<dyn TypeMetadataFetcher>);
    assert!(matches!(
        resolver.resolve(BASE, None).await,
        Err(TypeMetadataError::Fetch { .. })
    ));
}
