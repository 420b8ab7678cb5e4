//! `/signatures` and `/encryption`: using keys.

use std::sync::Arc;

use edk_core::jose::{Header, Jws, VerifyPolicy, jws};
use edk_core::{ErrorKind, HasKind as _, Limits};
use edk_kms::kms::WrappedKey;
use poem_openapi::OpenApi;
use poem_openapi::payload::Json;

use edk_server::{AdminBearer, ApiError};

use super::{KmsTag, admin_caller, problem, scope};
use crate::Error;
use crate::dto::{
    ContentKey, DecryptRequest, EncryptRequest, JweBody, JwsBody, JwsSignRequest, JwsVerified,
    JwsVerifyRequest, KeyAgreementRequest, Plaintext, RawSignRequest, RawSignature,
    RawVerifyRequest, SharedSecret, UnwrapRequest, Verified, WrapRequest, WrappedKeyBody, decode,
    encode, jwk_value, parse_alg, parse_alias, parse_enc, parse_jwk, parse_key_management,
    parse_key_ref,
};
use crate::state::KmsState;

/// Signatures.
#[derive(Debug)]
pub struct SignaturesApi {
    state: Arc<KmsState>,
}

impl SignaturesApi {
    /// The API over `state`.
    #[must_use]
    pub const fn new(state: Arc<KmsState>) -> Self {
        Self { state }
    }
}

#[OpenApi(prefix_path = "/api/kms/v1", tag = "KmsTag::Signatures")]
impl SignaturesApi {
    /// Signs bytes with an alias's active key. Scope `kms:use`.
    #[oai(
        path = "/signatures/raw/create",
        method = "post",
        operation_id = "createRawSignature"
    )]
    async fn raw_create(
        &self,
        auth: AdminBearer,
        body: Json<RawSignRequest>,
    ) -> Result<Json<RawSignature>, ApiError> {
        auth.0.require_scope(scope::USE)?;
        let alias = parse_alias("key", &body.key).map_err(problem)?;
        let message = decode("message", &body.message).map_err(problem)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let signature = self
            .state
            .kms()
            .sign(&caller, &alias, &message)
            .await
            .map_err(problem)?;
        Ok(Json(RawSignature {
            kid: signature.kid.as_str().to_owned(),
            alg: signature.alg.name().to_owned(),
            signature: encode(&signature.bytes),
        }))
    }

    /// Verifies a signature over bytes with an alias (any still-verifiable version) or a kid.
    /// 400 when it does not verify. Scope `kms:use`.
    #[oai(
        path = "/signatures/raw/verify",
        method = "post",
        operation_id = "verifyRawSignature"
    )]
    async fn raw_verify(
        &self,
        auth: AdminBearer,
        body: Json<RawVerifyRequest>,
    ) -> Result<Json<Verified>, ApiError> {
        auth.0.require_scope(scope::USE)?;
        let key = parse_key_ref("key", &body.key).map_err(problem)?;
        let alg = parse_alg("alg", &body.alg).map_err(problem)?;
        let message = decode("message", &body.message).map_err(problem)?;
        let signature = decode("signature", &body.signature).map_err(problem)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let kid = self
            .state
            .kms()
            .verify(&caller, &key, alg, &message, &signature)
            .await
            .map_err(problem)?;
        Ok(Json(Verified {
            kid: kid.as_str().to_owned(),
        }))
    }

    /// Signs a compact JWS with an alias's active key (`alg` and `kid` from the key). Scope
    /// `kms:use`.
    #[oai(
        path = "/signatures/jws/create",
        method = "post",
        operation_id = "createJws"
    )]
    async fn jws_create(
        &self,
        auth: AdminBearer,
        body: Json<JwsSignRequest>,
    ) -> Result<Json<JwsBody>, ApiError> {
        auth.0.require_scope(scope::USE)?;
        let alias = parse_alias("key", &body.key).map_err(problem)?;
        let payload = decode("payload", &body.payload).map_err(problem)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let signer = self
            .state
            .kms()
            .signer(&caller, &alias)
            .await
            .map_err(problem)?;
        let mut header = Header::new(signer.algorithm());
        header.typ.clone_from(&body.typ);
        header.cty.clone_from(&body.cty);
        let token = jws::sign(header, &payload, signer.as_ref())
            .await
            .map_err(problem)?;
        Ok(Json(JwsBody { jws: token }))
    }

    /// Verifies a compact JWS with the tenant's own keys, found by the header's `kid`
    /// (retired versions verify within their overlap). 400 when it does not verify. Scope
    /// `kms:use`.
    #[oai(
        path = "/signatures/jws/verify",
        method = "post",
        operation_id = "verifyJws"
    )]
    async fn jws_verify(
        &self,
        auth: AdminBearer,
        body: Json<JwsVerifyRequest>,
    ) -> Result<Json<JwsVerified>, ApiError> {
        auth.0.require_scope(scope::USE)?;
        let parsed = Jws::parse(&body.jws, &Limits::DEFAULT).map_err(problem)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let resolver = self.state.kms().resolver(&caller);
        // A JWS that does not verify (no key of the tenant for its `kid`, a bad signature) is
        // the caller's bad input, not a failed authentication of the caller: 400, not 401.
        let verified = parsed
            .verify_with(resolver.as_ref(), &VerifyPolicy::default(), None)
            .await
            .map_err(|err| match err.kind() {
                ErrorKind::Unauthenticated => {
                    ApiError::new(ErrorKind::InvalidInput, Some(err.to_string()))
                }
                _ => problem(err),
            })?;
        Ok(Json(JwsVerified {
            header: serde_json::to_value(verified.header()).unwrap_or_default(),
            payload: encode(verified.payload()),
        }))
    }
}

/// Encryption, key wrapping and key agreement.
#[derive(Debug)]
pub struct EncryptionApi {
    state: Arc<KmsState>,
}

impl EncryptionApi {
    /// The API over `state`.
    #[must_use]
    pub const fn new(state: Arc<KmsState>) -> Self {
        Self { state }
    }
}

#[OpenApi(prefix_path = "/api/kms/v1", tag = "KmsTag::Encryption")]
impl EncryptionApi {
    /// Encrypts bytes to a key's public key as a compact JWE. Scope `kms:use`.
    #[oai(
        path = "/encryption/encrypt",
        method = "post",
        operation_id = "encrypt"
    )]
    async fn encrypt(
        &self,
        auth: AdminBearer,
        body: Json<EncryptRequest>,
    ) -> Result<Json<JweBody>, ApiError> {
        auth.0.require_scope(scope::USE)?;
        let key = parse_key_ref("key", &body.key).map_err(problem)?;
        let alg = parse_key_management("alg", &body.alg).map_err(problem)?;
        let enc = parse_enc("enc", &body.enc).map_err(problem)?;
        let plaintext = decode("plaintext", &body.plaintext).map_err(problem)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let jwe = self
            .state
            .kms()
            .encrypt(&caller, &key, alg, enc, &plaintext)
            .await
            .map_err(problem)?;
        Ok(Json(JweBody { jwe }))
    }

    /// Decrypts a compact JWE addressed to one of an alias's versions. Every cryptographic
    /// failure is the same 400. Scope `kms:use`.
    #[oai(
        path = "/encryption/decrypt",
        method = "post",
        operation_id = "decrypt"
    )]
    async fn decrypt(
        &self,
        auth: AdminBearer,
        body: Json<DecryptRequest>,
    ) -> Result<Json<Plaintext>, ApiError> {
        auth.0.require_scope(scope::USE)?;
        let alias = parse_alias("key", &body.key).map_err(problem)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let plaintext = self
            .state
            .kms()
            .decrypt(&caller, &alias, &body.jwe)
            .await
            .map_err(problem)?;
        Ok(Json(Plaintext {
            plaintext: encode(&plaintext),
        }))
    }

    /// Wraps a content key to a key's public key (the JWE key management step alone). Scope
    /// `kms:use`.
    #[oai(path = "/encryption/wrap", method = "post", operation_id = "wrapKey")]
    async fn wrap(
        &self,
        auth: AdminBearer,
        body: Json<WrapRequest>,
    ) -> Result<Json<WrappedKeyBody>, ApiError> {
        auth.0.require_scope(scope::USE)?;
        let key = parse_key_ref("key", &body.key).map_err(problem)?;
        let alg = parse_key_management("alg", &body.alg).map_err(problem)?;
        let enc = parse_enc("enc", &body.enc).map_err(problem)?;
        let cek = decode("cek", &body.cek).map_err(problem)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let wrapped = self
            .state
            .kms()
            .wrap_key(&caller, &key, alg, enc, &cek)
            .await
            .map_err(problem)?;
        Ok(Json(WrappedKeyBody {
            alg: wrapped.alg.name().to_owned(),
            kid: wrapped.kid.as_str().to_owned(),
            encrypted_key: encode(&wrapped.encrypted_key),
            epk: wrapped.epk.as_ref().map(jwk_value),
        }))
    }

    /// Unwraps a content key wrapped to one of an alias's versions. Scope `kms:use`.
    #[oai(
        path = "/encryption/unwrap",
        method = "post",
        operation_id = "unwrapKey"
    )]
    async fn unwrap(
        &self,
        auth: AdminBearer,
        body: Json<UnwrapRequest>,
    ) -> Result<Json<ContentKey>, ApiError> {
        auth.0.require_scope(scope::USE)?;
        let alias = parse_alias("key", &body.key).map_err(problem)?;
        let enc = parse_enc("enc", &body.enc).map_err(problem)?;
        let input = &body.wrapped;
        let alg = parse_key_management("wrapped.alg", &input.alg).map_err(problem)?;
        let kid = edk_core::Kid::new(input.kid.as_str())
            .map_err(|err| problem(Error::invalid("wrapped.kid", err.to_string())))?;
        let encrypted_key =
            decode("wrapped.encrypted_key", &input.encrypted_key).map_err(problem)?;
        let epk = input
            .epk
            .as_ref()
            .map(|epk| parse_jwk("wrapped.epk", epk))
            .transpose()
            .map_err(problem)?;
        let wrapped = WrappedKey::new(alg, kid, encrypted_key, epk);
        let caller = admin_caller(&self.state, &auth.0).await?;
        let cek = self
            .state
            .kms()
            .unwrap_key(&caller, &alias, enc, &wrapped)
            .await
            .map_err(problem)?;
        Ok(Json(ContentKey { cek: encode(&cek) }))
    }

    /// The raw ECDH shared secret of an alias's active key and a peer public key. Scope
    /// `kms:use`.
    #[oai(
        path = "/encryption/key-agreement",
        method = "post",
        operation_id = "keyAgreement"
    )]
    async fn key_agreement(
        &self,
        auth: AdminBearer,
        body: Json<KeyAgreementRequest>,
    ) -> Result<Json<SharedSecret>, ApiError> {
        auth.0.require_scope(scope::USE)?;
        let alias = parse_alias("key", &body.key).map_err(problem)?;
        let peer = parse_jwk("peer_jwk", &body.peer_jwk).map_err(problem)?;
        let caller = admin_caller(&self.state, &auth.0).await?;
        let secret = self
            .state
            .kms()
            .key_agreement(&caller, &alias, &peer)
            .await
            .map_err(problem)?;
        Ok(Json(SharedSecret {
            shared_secret: encode(&secret),
        }))
    }
}
