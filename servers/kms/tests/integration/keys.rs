use edk_core::encoding::b64url_encode;
use edk_core::jose::{Algorithm, SigningKey};
use edk_kms::{Caller, KeyAlias, Kms};
use edk_tenancy::TenantDirectory;
use serde_json::{Value, json};

use crate::support::{Backend, Harness, expect_json, expect_problem};

fn es256(alias: &str) -> Value {
    json!({ "alias": alias, "usage": "sign", "algorithm": "ES256" })
}

/// Creates, reads, signs, verifies, rotates and deletes a key over HTTP.
async fn key_lifecycle(backend: Backend) {
    let h = Harness::start(backend).await;
    let token = h.token().await;

    let created = expect_json(
        h.post("/keys", &token, &es256("issuer.credential-signing"))
            .await,
        201,
    )
    .await;
    assert_eq!(created["alias"], "issuer.credential-signing");
    assert_eq!(created["provider"], "software");
    assert_eq!(created["versions"][0]["state"], "active");
    let kid = created["versions"][0]["kid"].as_str().unwrap().to_owned();
    expect_problem(
        h.post("/keys", &token, &es256("issuer.credential-signing"))
            .await,
        409,
    )
    .await;

    let listed = expect_json(h.get("/keys", &token).await, 200).await;
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1);
    let by_kid = expect_json(h.get(&format!("/keys/{kid}"), &token).await, 200).await;
    assert_eq!(by_kid["alias"], "issuer.credential-signing");

    let message = b64url_encode(b"hello");
    let signed = expect_json(
        h.post(
            "/signatures/raw/create",
            &token,
            &json!({ "key": "issuer.credential-signing", "message": message }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(signed["kid"], kid.as_str());
    assert_eq!(signed["alg"], "ES256");
    let verify = json!({
        "key": "issuer.credential-signing",
        "alg": "ES256",
        "message": message,
        "signature": signed["signature"],
    });
    let verified = expect_json(h.post("/signatures/raw/verify", &token, &verify).await, 200).await;
    assert_eq!(verified["kid"], kid.as_str());
    let mut tampered = verify.clone();
    tampered["message"] = b64url_encode(b"hellO").into();
    expect_problem(
        h.post("/signatures/raw/verify", &token, &tampered).await,
        400,
    )
    .await;

    let rotated = expect_json(
        h.post("/keys/issuer.credential-signing/rotate", &token, &json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(rotated["versions"].as_array().unwrap().len(), 2);
    assert_eq!(rotated["versions"][1]["state"], "retired");
    let history = expect_json(
        h.get("/keys/issuer.credential-signing/rotations", &token)
            .await,
        200,
    )
    .await;
    assert_eq!(history["rotations"].as_array().unwrap().len(), 1);
    assert_eq!(history["rotations"][0]["actor"], "ops@example.test");
    // The retired version still verifies what it signed.
    expect_json(h.post("/signatures/raw/verify", &token, &verify).await, 200).await;
    let jwks = expect_json(
        h.get("/keys/issuer.credential-signing/jwks", &token).await,
        200,
    )
    .await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);

    let deleted = h.delete("/keys/issuer.credential-signing", &token).await;
    assert_eq!(deleted.status(), 204);
    expect_problem(h.get("/keys/issuer.credential-signing", &token).await, 404).await;
    h.stop().await;
}

#[tokio::test]
async fn key_lifecycle_on_postgres() {
    key_lifecycle(Backend::Postgres).await;
}

#[tokio::test]
async fn key_lifecycle_on_sqlite() {
    key_lifecycle(Backend::Sqlite).await;
}

#[tokio::test]
async fn jws_round_trip_with_the_tenants_keys() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = h.token().await;
    expect_json(
        h.post(
            "/keys",
            &token,
            &json!({ "alias": "issuer.token-signing", "usage": "sign", "algorithm": "EdDSA" }),
        )
        .await,
        201,
    )
    .await;
    let payload = b64url_encode(br#"{"sub":"alice"}"#);
    let signed = expect_json(
        h.post(
            "/signatures/jws/create",
            &token,
            &json!({ "key": "issuer.token-signing", "payload": payload, "typ": "JWT" }),
        )
        .await,
        200,
    )
    .await;
    let jws = signed["jws"].as_str().unwrap();
    let verified = expect_json(
        h.post("/signatures/jws/verify", &token, &json!({ "jws": jws }))
            .await,
        200,
    )
    .await;
    assert_eq!(verified["payload"], payload);
    assert_eq!(verified["header"]["alg"], "EdDSA");
    assert_eq!(verified["header"]["typ"], "JWT");

    // A JWS whose signature does not verify is the caller's bad input: 400, not 401.
    let (signing_input, signature) = jws.rsplit_once('.').unwrap();
    let mut signature = edk_core::encoding::b64url_decode(signature).unwrap();
    signature[0] ^= 1;
    let tampered = format!("{signing_input}.{}", b64url_encode(&signature));
    let problem = expect_problem(
        h.post(
            "/signatures/jws/verify",
            &token,
            &json!({ "jws": tampered }),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(problem["type"], "https://edk.dev/problems/invalid-request");
    assert_eq!(problem["detail"], "invalid signature");
    h.stop().await;
}

#[tokio::test]
async fn encryption_round_trips() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = h.token().await;
    expect_json(
        h.post(
            "/keys",
            &token,
            &json!({ "alias": "verifier.request-decryption", "usage": "decrypt", "algorithm": "ECDH-ES" }),
        )
        .await,
        201,
    )
    .await;
    let plaintext = b64url_encode(b"secret response");
    let encrypted = expect_json(
        h.post(
            "/encryption/encrypt",
            &token,
            &json!({ "key": "verifier.request-decryption", "alg": "ECDH-ES", "enc": "A256GCM", "plaintext": plaintext }),
        )
        .await,
        200,
    )
    .await;
    let decrypted = expect_json(
        h.post(
            "/encryption/decrypt",
            &token,
            &json!({ "key": "verifier.request-decryption", "jwe": encrypted["jwe"] }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(decrypted["plaintext"], plaintext);

    h.stop().await;
}

#[tokio::test]
async fn provider_scoped_keys_stay_in_their_provider() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = h.token().await;
    let created = expect_json(
        h.post(
            "/providers/backup/keys",
            &token,
            &es256("issuer.backup-signing"),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(created["provider"], "backup");
    let listed = expect_json(h.get("/providers/backup/keys", &token).await, 200).await;
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1);
    let other = expect_json(h.get("/providers/software/keys", &token).await, 200).await;
    assert_eq!(other["keys"], json!([]));
    expect_json(
        h.get("/providers/backup/keys/issuer.backup-signing", &token)
            .await,
        200,
    )
    .await;
    expect_problem(
        h.get("/providers/software/keys/issuer.backup-signing", &token)
            .await,
        404,
    )
    .await;
    expect_problem(
        h.delete("/providers/software/keys/issuer.backup-signing", &token)
            .await,
        404,
    )
    .await;
    let mut mismatch = es256("issuer.other");
    mismatch["provider"] = "software".into();
    expect_problem(
        h.post("/providers/backup/keys", &token, &mismatch).await,
        400,
    )
    .await;
    assert_eq!(
        h.delete("/providers/backup/keys/issuer.backup-signing", &token)
            .await
            .status(),
        204
    );
    h.stop().await;
}

#[tokio::test]
async fn imported_and_registered_keys() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = h.token().await;
    let private = SigningKey::generate(Algorithm::Es256).unwrap();
    let imported = expect_json(
        h.post(
            "/keys/import",
            &token,
            &json!({ "alias": "issuer.status-list-signing", "usage": "sign", "algorithm": "ES256", "private_jwk": private.to_jwk().unwrap() }),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(
        imported["versions"][0]["kid"],
        private.public_jwk().thumbprint()
    );
    assert!(imported["versions"][0]["public_jwk"].get("d").is_none());

    let external = SigningKey::generate(Algorithm::Es256).unwrap();
    let registered = expect_json(
        h.post(
            "/keys/register",
            &token,
            &json!({ "alias": "verifier.partner", "public_jwk": external.public_jwk() }),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(registered["external"], true);
    // A registered key verifies but never signs.
    expect_problem(
        h.post(
            "/signatures/raw/create",
            &token,
            &json!({ "key": "verifier.partner", "message": "aGk" }),
        )
        .await,
        400,
    )
    .await
    .get("detail")
    .map(|_| ())
    .unwrap_or(());
    h.stop().await;
}

#[tokio::test]
async fn a_key_in_use_cannot_be_deleted() {
    let h = Harness::start(Backend::Postgres).await;
    let token = h.token().await;
    expect_json(
        h.post("/keys", &token, &es256("issuer.backup-signing"))
            .await,
        201,
    )
    .await;
    let alias: KeyAlias = "issuer.backup-signing".parse().unwrap();
    let context = h.kms.tenancy().context(h.tenant_a).await.unwrap();
    let caller = Caller::new(context, "did-service");
    h.kms
        .kms()
        .hold_key(&caller, &alias, "did:web:example.test")
        .await
        .unwrap();
    expect_problem(h.delete("/keys/issuer.backup-signing", &token).await, 409).await;
    expect_json(h.get("/keys/issuer.backup-signing", &token).await, 200).await;
    h.kms
        .kms()
        .release_key(&caller, &alias, "did:web:example.test")
        .await
        .unwrap();
    assert_eq!(
        h.delete("/keys/issuer.backup-signing", &token)
            .await
            .status(),
        204
    );
    h.stop().await;
}

async fn decrypt_key(h: &Harness, token: &str, alias: &str, alg: &str) -> Value {
    expect_json(
        h.post(
            "/keys",
            token,
            &json!({ "alias": alias, "usage": "decrypt", "algorithm": alg }),
        )
        .await,
        201,
    )
    .await
}

/// A content key wrapped to an alias unwraps to the same bytes; a tampered or misdirected
/// wrapping is refused with a problem.
#[tokio::test]
async fn key_wrapping_round_trips_and_refuses_tampering() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = h.token().await;
    let cek = b64url_encode([7_u8; 32]);
    for (index, alg) in ["ECDH-ES+A256KW", "ECDH-ES+A128KW"].into_iter().enumerate() {
        let wrapping = format!("wallet.key-wrapping-{index}");
        let other = format!("wallet.other-{index}");
        decrypt_key(&h, &token, &wrapping, alg).await;
        decrypt_key(&h, &token, &other, alg).await;
        let wrapped = expect_json(
            h.post(
                "/encryption/wrap",
                &token,
                &json!({ "key": wrapping, "alg": alg, "enc": "A256GCM", "cek": cek }),
            )
            .await,
            200,
        )
        .await;
        assert_eq!(wrapped["alg"], alg);
        assert_ne!(wrapped["encrypted_key"], cek);
        assert_eq!(wrapped["epk"]["kty"], "EC");
        let unwrapped = expect_json(
            h.post(
                "/encryption/unwrap",
                &token,
                &json!({ "key": wrapping, "enc": "A256GCM", "wrapped": wrapped }),
            )
            .await,
            200,
        )
        .await;
        assert_eq!(unwrapped["cek"], cek, "{alg}");

        let mut tampered = wrapped.clone();
        let mut bytes =
            edk_core::encoding::b64url_decode(wrapped["encrypted_key"].as_str().unwrap()).unwrap();
        bytes[0] ^= 1;
        tampered["encrypted_key"] = json!(b64url_encode(&bytes));
        let refused = h
            .post(
                "/encryption/unwrap",
                &token,
                &json!({ "key": wrapping, "enc": "A256GCM", "wrapped": tampered }),
            )
            .await;
        let problem = expect_problem(refused, 400).await;
        assert_eq!(problem["type"], "https://edk.dev/problems/invalid-request");
        assert_eq!(problem["detail"], "decryption failed");

        let misdirected = h
            .post(
                "/encryption/unwrap",
                &token,
                &json!({ "key": other, "enc": "A256GCM", "wrapped": wrapped }),
            )
            .await;
        let problem = expect_problem(misdirected, 400).await;
        assert_eq!(problem["type"], "https://edk.dev/problems/invalid-request");
        assert_eq!(problem["detail"], "decryption failed");
    }
    h.stop().await;
}

/// ECDH between two of the tenant's keys gives the same secret from either side, and a
/// different one with another peer; a peer on another curve is refused.
#[tokio::test]
async fn key_agreement_is_symmetric() {
    let h = Harness::start(Backend::Sqlite).await;
    let token = h.token().await;
    let alice = decrypt_key(&h, &token, "agreement.alice", "ECDH-ES").await;
    let bob = decrypt_key(&h, &token, "agreement.bob", "ECDH-ES").await;
    let carol = decrypt_key(&h, &token, "agreement.carol", "ECDH-ES").await;
    let public = |key: &Value| key["versions"][0]["public_jwk"].clone();
    let agree = |alias: &'static str, peer: Value| {
        let token = token.clone();
        let h = &h;
        async move {
            expect_json(
                h.post(
                    "/encryption/key-agreement",
                    &token,
                    &json!({ "key": alias, "peer_jwk": peer }),
                )
                .await,
                200,
            )
            .await["shared_secret"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let alice_bob = agree("agreement.alice", public(&bob)).await;
    let bob_alice = agree("agreement.bob", public(&alice)).await;
    let alice_carol = agree("agreement.alice", public(&carol)).await;
    assert_eq!(alice_bob, bob_alice);
    assert_ne!(alice_bob, alice_carol);
    assert_eq!(
        edk_core::encoding::b64url_decode(&alice_bob).unwrap().len(),
        32
    );

    let ed25519 = SigningKey::generate(Algorithm::EdDsa).unwrap().public_jwk();
    let refused = h
        .post(
            "/encryption/key-agreement",
            &token,
            &json!({ "key": "agreement.alice", "peer_jwk": ed25519 }),
        )
        .await;
    let problem = expect_problem(refused, 400).await;
    assert_eq!(problem["type"], "https://edk.dev/problems/invalid-request");
    assert_eq!(
        problem["detail"],
        "invalid key: the peer key is not a P-256 public key"
    );
    h.stop().await;
}
