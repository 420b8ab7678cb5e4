//! Publishing: did:key / did:jwk `create` through `DidPublisher`, and the did:web document
//! built from a tenant's KMS aliases.
//!
//! No `Kms` implementation exists in this workspace yet, so `StaticKms` answers `jwks` from
//! keys generated here and refuses every other operation.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use edk_core::jose::jwe::{ContentEncryption, KeyManagement};
use edk_core::jose::{Algorithm, Jwk, JwkSet, JwksResolver, KeyResolver, Signer, SigningKey};
use edk_core::{Did, Kid};
use edk_did::methods::jwk::DidJwk;
use edk_did::methods::key::DidKey;
use edk_did::methods::web::{PublishedKey, document_from_kms};
use edk_did::{DidMethod, PublishError, PublishRequest, Relationship, ResolveOptions};
use edk_kms::kms::{RotationRecord, Signature, WrappedKey};
use edk_kms::provider::{KeySpec, ProviderId};
use edk_kms::{Caller, KeyAlias, KeyInfo, KeyRef, Kms, NewKey};
use zeroize::Zeroizing;

use crate::support::tenant;

#[derive(Debug, Default)]
struct StaticKms {
    keys: HashMap<KeyAlias, Vec<Jwk>>,
}

fn refused<T>() -> Result<T, edk_kms::Error> {
    Err(edk_kms::Error::UnsupportedOperation {
        provider: ProviderId::new("static").unwrap(),
        operation: "this operation",
    })
}

#[async_trait]
impl Kms for StaticKms {
    async fn create_key(&self, _: &Caller, _: &NewKey) -> Result<KeyInfo, edk_kms::Error> {
        refused()
    }
    async fn import_key(
        &self,
        _: &Caller,
        _: &KeyAlias,
        _: &KeySpec,
        _: &Jwk,
        _: Option<&ProviderId>,
    ) -> Result<KeyInfo, edk_kms::Error> {
        refused()
    }
    async fn register_public_key(
        &self,
        _: &Caller,
        _: &KeyAlias,
        _: &Jwk,
    ) -> Result<KeyInfo, edk_kms::Error> {
        refused()
    }
    async fn key(&self, _: &Caller, _: &KeyRef) -> Result<KeyInfo, edk_kms::Error> {
        refused()
    }
    async fn keys(&self, _: &Caller) -> Result<Vec<KeyInfo>, edk_kms::Error> {
        refused()
    }
    async fn rotate(&self, _: &Caller, _: &KeyAlias) -> Result<KeyInfo, edk_kms::Error> {
        refused()
    }
    async fn rotations(
        &self,
        _: &Caller,
        _: &KeyAlias,
    ) -> Result<Vec<RotationRecord>, edk_kms::Error> {
        refused()
    }
    async fn delete_key(&self, _: &Caller, _: &KeyRef) -> Result<(), edk_kms::Error> {
        refused()
    }
    async fn hold_key(&self, _: &Caller, _: &KeyAlias, _: &str) -> Result<(), edk_kms::Error> {
        refused()
    }
    async fn release_key(&self, _: &Caller, _: &KeyAlias, _: &str) -> Result<(), edk_kms::Error> {
        refused()
    }
    async fn signer(&self, _: &Caller, _: &KeyAlias) -> Result<Arc<dyn Signer>, edk_kms::Error> {
        refused()
    }
    async fn sign(&self, _: &Caller, _: &KeyAlias, _: &[u8]) -> Result<Signature, edk_kms::Error> {
        refused()
    }
    async fn verify(
        &self,
        _: &Caller,
        _: &KeyRef,
        _: Algorithm,
        _: &[u8],
        _: &[u8],
    ) -> Result<Kid, edk_kms::Error> {
        refused()
    }
    async fn encrypt(
        &self,
        _: &Caller,
        _: &KeyRef,
        _: KeyManagement,
        _: ContentEncryption,
        _: &[u8],
    ) -> Result<String, edk_kms::Error> {
        refused()
    }
    async fn decrypt(
        &self,
        _: &Caller,
        _: &KeyAlias,
        _: &str,
    ) -> Result<Zeroizing<Vec<u8>>, edk_kms::Error> {
        refused()
    }
    async fn wrap_key(
        &self,
        _: &Caller,
        _: &KeyRef,
        _: KeyManagement,
        _: ContentEncryption,
        _: &[u8],
    ) -> Result<WrappedKey, edk_kms::Error> {
        refused()
    }
    async fn unwrap_key(
        &self,
        _: &Caller,
        _: &KeyAlias,
        _: ContentEncryption,
        _: &WrappedKey,
    ) -> Result<Zeroizing<Vec<u8>>, edk_kms::Error> {
        refused()
    }
    async fn key_agreement(
        &self,
        _: &Caller,
        _: &KeyAlias,
        _: &Jwk,
    ) -> Result<Zeroizing<Vec<u8>>, edk_kms::Error> {
        refused()
    }
    async fn public_key(&self, _: &Caller, _: &KeyRef) -> Result<Jwk, edk_kms::Error> {
        refused()
    }
    async fn jwks(&self, _: &Caller, alias: &KeyAlias) -> Result<JwkSet, edk_kms::Error> {
        self.keys
            .get(alias)
            .map(|keys| JwkSet { keys: keys.clone() })
            .ok_or(edk_kms::Error::KeyNotFound {
                provider: ProviderId::new("static").unwrap(),
            })
    }
    fn resolver(&self, _: &Caller) -> Arc<dyn KeyResolver> {
        Arc::new(JwksResolver::default())
    }
}

#[tokio::test]
async fn did_web_document_is_built_from_kms_aliases() {
    let (_dir, _tenancy, context) = tenant(None).await;
    let caller = Caller::new(context, "did-server");
    let signing: KeyAlias = "did.credential-signing".parse().unwrap();
    let agreement: KeyAlias = "did.request-decryption".parse().unwrap();
    let current = SigningKey::generate(Algorithm::Es256).unwrap();
    let retiring = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let decryption = SigningKey::generate(Algorithm::Es256).unwrap();
    let kms = StaticKms {
        keys: HashMap::from([
            (
                signing.clone(),
                vec![current.public_jwk(), retiring.public_jwk()],
            ),
            (agreement.clone(), vec![decryption.public_jwk()]),
        ]),
    };
    let did = Did::new("did:web:issuer.example:tenants:acme").unwrap();
    let keys = [
        PublishedKey::new(
            signing,
            &[Relationship::AssertionMethod, Relationship::Authentication],
        ),
        PublishedKey::new(agreement, &[Relationship::KeyAgreement]),
    ];
    let document = document_from_kms(&kms, &caller, &did, &keys).await.unwrap();
    assert_eq!(document.id, did.as_str());
    assert_eq!(document.verification_method.len(), 3);
    for key in [&current, &retiring] {
        let id = format!("{did}#{}", key.public_jwk().thumbprint());
        let method = document.verification_method(&id).unwrap();
        assert_eq!(method.jwk().unwrap(), key.public_jwk());
        assert!(document.is_authorized(&id, Relationship::AssertionMethod));
        assert!(!document.is_authorized(&id, Relationship::KeyAgreement));
    }
    let id = format!("{did}#{}", decryption.public_jwk().thumbprint());
    assert!(document.is_authorized(&id, Relationship::KeyAgreement));
    assert!(!document.is_authorized(&id, Relationship::AssertionMethod));
    // No private member reaches the document.
    let text = serde_json::to_string(&document).unwrap();
    assert!(!text.contains("\"d\""));

    // An unknown alias is the KMS's not-found; a DID that is not did:web is refused.
    let missing = [PublishedKey::new(
        "did.audit-checkpoint".parse().unwrap(),
        &[Relationship::AssertionMethod],
    )];
    let err = document_from_kms(&kms, &caller, &did, &missing)
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::Kms(_)), "{err:?}");
    let not_web = Did::new("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK").unwrap();
    let err = document_from_kms(&kms, &caller, &not_web, &keys)
        .await
        .unwrap_err();
    assert!(
        matches!(err, PublishError::InvalidRequest { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn did_key_and_did_jwk_publishers_create_from_a_public_key() {
    let (_dir, _tenancy, context) = tenant(None).await;
    let key = SigningKey::generate(Algorithm::Es384).unwrap();
    let methods: [Arc<dyn DidMethod>; 2] = [Arc::new(DidKey::new()), Arc::new(DidJwk)];
    for method in methods {
        let publisher = method.publisher().unwrap();
        let published = publisher
            .create(&context, &PublishRequest::for_key(key.public_jwk()))
            .await
            .unwrap();
        let resolved = method
            .resolve(&published.did, &ResolveOptions::default())
            .await
            .unwrap();
        assert_eq!(resolved, published.resolution);
        let document = resolved.document.unwrap();
        assert_eq!(
            document.verification_method[0].jwk().unwrap().thumbprint(),
            key.public_jwk().thumbprint()
        );
        // A private key is refused; so are update and deactivate.
        let private = key.to_jwk().unwrap();
        let err = publisher
            .create(&context, &PublishRequest::for_key(private))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("private"), "{err}");
        let err = publisher
            .update(&context, &published.did, &PublishRequest::default())
            .await
            .unwrap_err();
        assert!(matches!(err, PublishError::Unsupported { .. }), "{err:?}");
    }
}
