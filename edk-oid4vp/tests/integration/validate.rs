//! Presentation validation end to end, in process: SD-JWT VCs issued with edk-core and mdocs
//! with edk-mdoc, presented by a wallet to a request, sent back as `direct_post` or
//! `direct_post.jwt`, and validated; then each attack refused with its own error.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use edk_core::encoding::{HashAlg, b64url_encode};
use edk_core::jose::jwe::{DecryptingKey, KeyManagement};
use edk_core::jose::{Algorithm, Jwk, SigningKey};
use edk_core::sd_jwt::IssueOptions;
use edk_core::sd_jwt::{ClaimPath as SdPath, KeyBindingClaims, SdJwt};
use edk_core::sd_jwt_vc::SdJwtVcBuilder;
use edk_core::x5c::X5cResolver;
use edk_mdoc::{
    DeviceResponse, IssuerSigned, IssuerSignedBuilder, SessionTranscript, ValidityInfo,
};
use edk_oid4vp::{
    AuthorizationRequest, AuthorizationResponse, CredentialStatus, DcqlQuery, PresentationError,
    PresentationVerifier, ResponseLimits, StatusCheck, StatusReference, ValidationError,
    session_transcript,
};
use serde_json::{Value, json};

use crate::response::encrypted_request;
use crate::support::{NOW, Pki, clock, pid_query, pki, request};

const CLIENT: &str = "x509_san_dns:verifier.example";
const STATUS_URI: &str = "https://issuer.example/status/1";
const MDL: &str = "org.iso.18013.5.1.mDL";
const MDL_NS: &str = "org.iso.18013.5.1";

/// An issuer (an x5c PKI) and a holder key.
struct World {
    issuer: Pki,
    iaca: Pki,
    holder: SigningKey,
}

fn world() -> World {
    World {
        issuer: pki("issuer", &["issuer.example"]),
        iaca: crate::support::mdoc_pki("mdl issuer"),
        holder: SigningKey::generate(Algorithm::Es256).unwrap(),
    }
}

/// A status list the test controls: index → status.
#[derive(Debug, Default)]
struct Statuses {
    values: Mutex<BTreeMap<u64, u8>>,
    seen: Mutex<Vec<StatusReference>>,
}

#[async_trait]
impl StatusCheck for Statuses {
    async fn status(
        &self,
        reference: &StatusReference,
    ) -> Result<CredentialStatus, Box<dyn std::error::Error + Send + Sync>> {
        self.seen.lock().unwrap().push(reference.clone());
        if reference.uri != STATUS_URI {
            return Err("unknown status list".into());
        }
        let value = self
            .values
            .lock()
            .unwrap()
            .get(&reference.idx)
            .copied()
            .unwrap_or(0);
        Ok(CredentialStatus::from_value(value))
    }
}

fn b64(der: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// A PID SD-JWT VC for the holder, every claim selectively disclosable, status index `idx`.
async fn issue_pid(world: &World, idx: u64) -> SdJwt {
    SdJwtVcBuilder::new("urn:eudi:pid:1")
        .issuer("https://issuer.example")
        .issued_at(NOW - 86_400)
        .holder_key(&world.holder.public_jwk())
        .status(json!({ "status_list": { "idx": idx, "uri": STATUS_URI } }))
        .claim("family_name", "Dent")
        .claim("given_name", "Arthur")
        .claim("birthdate", "1952-03-11")
        .selectively_disclose(SdPath::new(["family_name"]))
        .selectively_disclose(SdPath::new(["given_name"]))
        .selectively_disclose(SdPath::new(["birthdate"]))
        .x5c(world.issuer.chain.iter().map(|der| b64(der)).collect())
        .issue(&world.issuer.leaf, &IssueOptions::default())
        .await
        .unwrap()
}

/// The holder's presentation of `disclose` bound to `aud` and `nonce` at `iat`, with `extra`
/// KB-JWT claims.
async fn present(
    world: &World,
    credential: &SdJwt,
    disclose: &[&str],
    aud: &str,
    nonce: &str,
    iat: i64,
    extra: &[(&str, Value)],
) -> String {
    let paths: Vec<SdPath> = disclose.iter().map(|name| SdPath::new([*name])).collect();
    let mut claims = KeyBindingClaims::new(aud, nonce, iat);
    for (name, value) in extra {
        claims = claims.with_claim(*name, value.clone());
    }
    credential
        .present(&paths, Some((&claims, &world.holder)))
        .await
        .unwrap()
        .to_string()
}

fn verifier(world: &World, statuses: &Arc<Statuses>) -> PresentationVerifier {
    let issuers = X5cResolver::new([world.issuer.root.clone()], clock()).unwrap();
    let mdoc = edk_mdoc::Verifier::new([world.iaca.root.clone()], clock()).unwrap();
    PresentationVerifier::new(Arc::new(issuers), clock())
        .with_mdoc_verifier(Arc::new(mdoc))
        .with_status_check(statuses.clone())
        .with_freshness(300, 30)
}

fn answer(id: &str, presentation: String, state: Option<&str>) -> AuthorizationResponse {
    AuthorizationResponse::VpToken {
        vp_token: BTreeMap::from([(id.to_owned(), vec![Value::String(presentation)])]),
        state: state.map(str::to_owned),
    }
}

/// A PID presentation answering `request` correctly.
async fn good_answer(world: &World, request: &AuthorizationRequest) -> AuthorizationResponse {
    let credential = issue_pid(world, 7).await;
    let presentation = present(
        world,
        &credential,
        &["family_name", "birthdate"],
        CLIENT,
        &request.nonce,
        NOW - 10,
        &[],
    )
    .await;
    answer("pid", presentation, request.state.as_deref())
}

#[tokio::test]
async fn an_sd_jwt_vc_presentation_is_validated_end_to_end() {
    let world = world();
    let statuses = Arc::new(Statuses::default());
    let request = request(CLIENT, pid_query());
    let response = good_answer(&world, &request).await;
    // Through the wire form.
    let body = response.to_form();
    let read = AuthorizationResponse::from_form(body.as_bytes(), &ResponseLimits::DEFAULT).unwrap();
    let verified = verifier(&world, &statuses)
        .verify(&request, &read, None)
        .await
        .unwrap();
    let claims = verified.claims();
    assert_eq!(claims["pid"][0]["family_name"], "Dent");
    assert_eq!(claims["pid"][0]["birthdate"], "1952-03-11");
    assert!(
        claims["pid"][0].get("given_name").is_none(),
        "not disclosed"
    );
    assert_eq!(
        verified.presentations["pid"][0].issuer.as_deref(),
        Some("https://issuer.example")
    );
    assert_eq!(
        *statuses.seen.lock().unwrap(),
        vec![StatusReference {
            uri: STATUS_URI.to_owned(),
            idx: 7
        }]
    );
}

#[tokio::test]
async fn a_direct_post_jwt_response_is_decrypted_and_validated() {
    let world = world();
    let statuses = Arc::new(Statuses::default());
    let key = DecryptingKey::generate(KeyManagement::EcdhEs).unwrap();
    let request = encrypted_request(&key, KeyManagement::EcdhEs, Some(vec!["A256GCM"]));
    let body = good_answer(&world, &request)
        .await
        .to_encrypted_form(&request)
        .unwrap();
    let (response, used) = AuthorizationResponse::from_encrypted_form(
        body.as_bytes(),
        &request,
        &key,
        &ResponseLimits::DEFAULT,
    )
    .await
    .unwrap();
    let verified = verifier(&world, &statuses)
        .verify(&request, &response, used.as_ref())
        .await
        .unwrap();
    assert_eq!(verified.claims()["pid"][0]["family_name"], "Dent");
}

async fn refuse(
    world: &World,
    statuses: &Arc<Statuses>,
    request: &AuthorizationRequest,
    response: &AuthorizationResponse,
) -> ValidationError {
    verifier(world, statuses)
        .verify(request, response, None)
        .await
        .unwrap_err()
}

#[tokio::test]
async fn key_binding_attacks_are_refused_each_with_its_error() {
    let world = world();
    let statuses = Arc::new(Statuses::default());
    let request = request(CLIENT, pid_query());
    let credential = issue_pid(&world, 7).await;
    let state = request.state.as_deref();
    let disclose = ["family_name", "birthdate"];

    // Wrong nonce.
    let p = present(
        &world,
        &credential,
        &disclose,
        CLIENT,
        "other-nonce",
        NOW,
        &[],
    )
    .await;
    let err = refuse(&world, &statuses, &request, &answer("pid", p, state)).await;
    assert!(
        matches!(err, ValidationError::NonceMismatch(ref id) if id == "pid"),
        "{err:?}"
    );

    // aud without the client identifier prefix.
    let p = present(
        &world,
        &credential,
        &disclose,
        "verifier.example",
        &request.nonce,
        NOW,
        &[],
    )
    .await;
    let err = refuse(&world, &statuses, &request, &answer("pid", p, state)).await;
    assert!(
        matches!(err, ValidationError::AudienceMismatch(_)),
        "{err:?}"
    );

    // iat older than the freshness window (300 s + 30 s leeway).
    let p = present(
        &world,
        &credential,
        &disclose,
        CLIENT,
        &request.nonce,
        NOW - 400,
        &[],
    )
    .await;
    let err = refuse(&world, &statuses, &request, &answer("pid", p, state)).await;
    assert!(
        matches!(err, ValidationError::StaleKeyBinding(_)),
        "{err:?}"
    );
    // ...and within it, accepted.
    let p = present(
        &world,
        &credential,
        &disclose,
        CLIENT,
        &request.nonce,
        NOW - 290,
        &[],
    )
    .await;
    verifier(&world, &statuses)
        .verify(&request, &answer("pid", p, state), None)
        .await
        .unwrap();

    // A KB-JWT signed by another key than the credential's cnf.
    let thief = World {
        issuer: pki("x", &["x.example"]),
        iaca: pki("y", &["y.example"]),
        holder: SigningKey::generate(Algorithm::Es256).unwrap(),
    };
    let p = present(
        &thief,
        &credential,
        &disclose,
        CLIENT,
        &request.nonce,
        NOW,
        &[],
    )
    .await;
    let err = refuse(&world, &statuses, &request, &answer("pid", p, state)).await;
    assert!(
        matches!(err, ValidationError::InvalidKeyBinding { .. }),
        "{err:?}"
    );

    // The KB-JWT of one presentation moved onto another disclosure set: sd_hash differs.
    let full = present(
        &world,
        &credential,
        &disclose,
        CLIENT,
        &request.nonce,
        NOW,
        &[],
    )
    .await;
    let kb = full.rsplit('~').next().unwrap();
    let fewer = credential
        .select(&[SdPath::new(["family_name"])])
        .unwrap()
        .to_string();
    let spliced = format!("{fewer}{kb}");
    let err = refuse(&world, &statuses, &request, &answer("pid", spliced, state)).await;
    assert!(matches!(err, ValidationError::SdHashMismatch(_)), "{err:?}");

    // No key binding at all where the query requires it.
    let unbound = credential
        .select(&[SdPath::new(["family_name"]), SdPath::new(["birthdate"])])
        .unwrap()
        .to_string();
    let err = refuse(&world, &statuses, &request, &answer("pid", unbound, state)).await;
    assert!(
        matches!(err, ValidationError::KeyBindingMissing(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_response_to_another_request_is_refused() {
    let world = world();
    let statuses = Arc::new(Statuses::default());
    let request = request(CLIENT, pid_query());
    let mut response = good_answer(&world, &request).await;
    if let AuthorizationResponse::VpToken { state, .. } = &mut response {
        *state = Some("st-of-another-session".to_owned());
    }
    let err = refuse(&world, &statuses, &request, &response).await;
    assert!(matches!(err, ValidationError::StateMismatch), "{err:?}");

    // A presentation made for another request (its nonce) under the right state.
    let mut other = request.clone();
    other.nonce = "the-other-requests-nonce".to_owned();
    let replay = good_answer(&world, &other).await;
    let err = refuse(&world, &statuses, &request, &replay).await;
    assert!(matches!(err, ValidationError::NonceMismatch(_)), "{err:?}");
}

#[tokio::test]
async fn revoked_and_suspended_credentials_are_refused_through_the_status_hook() {
    let world = world();
    let statuses = Arc::new(Statuses::default());
    let request = request(CLIENT, pid_query());
    let response = good_answer(&world, &request).await;
    statuses.values.lock().unwrap().insert(7, 1);
    let err = refuse(&world, &statuses, &request, &response).await;
    assert!(
        matches!(err, ValidationError::Revoked(ref id) if id == "pid"),
        "{err:?}"
    );
    statuses.values.lock().unwrap().insert(7, 2);
    let err = refuse(&world, &statuses, &request, &response).await;
    assert!(matches!(err, ValidationError::Suspended(_)), "{err:?}");
    statuses.values.lock().unwrap().insert(7, 0);
    verifier(&world, &statuses)
        .verify(&request, &response, None)
        .await
        .unwrap();

    // Without a status hook a credential with a status cannot be accepted.
    let issuers = X5cResolver::new([world.issuer.root.clone()], clock()).unwrap();
    let err = PresentationVerifier::new(Arc::new(issuers), clock())
        .verify(&request, &response, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ValidationError::StatusUnavailable(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_issuer_outside_the_trust_anchors_is_refused() {
    let world = world();
    let statuses = Arc::new(Statuses::default());
    let request = request(CLIENT, pid_query());
    let rogue = World {
        issuer: pki("issuer", &["issuer.example"]),
        iaca: pki("y", &["y.example"]),
        holder: SigningKey::from_jwk(&world.holder.to_jwk().unwrap(), None).unwrap(),
    };
    let response = good_answer(&rogue, &request).await;
    let err = refuse(&world, &statuses, &request, &response).await;
    assert!(
        matches!(err, ValidationError::UntrustedIssuer { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_presentation_missing_a_required_claim_is_refused() {
    let world = world();
    let statuses = Arc::new(Statuses::default());
    let request = request(CLIENT, pid_query());
    let credential = issue_pid(&world, 7).await;
    let p = present(
        &world,
        &credential,
        &["family_name"],
        CLIENT,
        &request.nonce,
        NOW,
        &[],
    )
    .await;
    let err = refuse(
        &world,
        &statuses,
        &request,
        &answer("pid", p, request.state.as_deref()),
    )
    .await;
    assert!(
        matches!(err, ValidationError::Dcql(PresentationError::ClaimMissing { ref id, ref path })
            if id == "pid" && path.to_string().contains("birthdate")),
        "{err:?}"
    );
    // An answer for a query the request does not have.
    let p = present(
        &world,
        &credential,
        &["family_name", "birthdate"],
        CLIENT,
        &request.nonce,
        NOW,
        &[],
    )
    .await;
    let err = refuse(
        &world,
        &statuses,
        &request,
        &answer("other", p, request.state.as_deref()),
    )
    .await;
    assert!(
        matches!(err, ValidationError::UnknownCredentialQuery(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_wallet_error_response_is_reported() {
    let world = world();
    let statuses = Arc::new(Statuses::default());
    let request = request(CLIENT, pid_query());
    let response = AuthorizationResponse::Error {
        error: "access_denied".to_owned(),
        error_description: None,
        state: request.state.clone(),
    };
    let err = refuse(&world, &statuses, &request, &response).await;
    assert!(
        matches!(err, ValidationError::WalletError { ref error, .. } if error == "access_denied")
    );
}

fn transaction_entry() -> String {
    b64url_encode(
        serde_json::to_vec(&json!({
            "type": "payment",
            "credential_ids": ["pid"],
            "amount": "42.00 EUR"
        }))
        .unwrap(),
    )
}

#[tokio::test]
async fn transaction_data_hashes_are_checked() {
    let world = world();
    let statuses = Arc::new(Statuses::default());
    let mut request = request(CLIENT, pid_query());
    let entry = transaction_entry();
    request.transaction_data = Some(vec![entry.clone()]);
    request.validate().unwrap();
    let credential = issue_pid(&world, 7).await;
    let disclose = ["family_name", "birthdate"];
    let state = request.state.as_deref();
    let hash = HashAlg::Sha256.digest_b64url(entry.as_bytes());

    let p = present(
        &world,
        &credential,
        &disclose,
        CLIENT,
        &request.nonce,
        NOW,
        &[("transaction_data_hashes", json!([hash]))],
    )
    .await;
    verifier(&world, &statuses)
        .verify(&request, &answer("pid", p, state), None)
        .await
        .unwrap();

    for extra in [
        vec![],
        vec![(
            "transaction_data_hashes",
            json!([HashAlg::Sha256.digest_b64url(b"other")]),
        )],
        vec![
            (
                "transaction_data_hashes",
                json!([HashAlg::Sha384.digest_b64url(entry.as_bytes())]),
            ),
            ("transaction_data_hashes_alg", json!("sha-384")),
        ],
    ] {
        let p = present(
            &world,
            &credential,
            &disclose,
            CLIENT,
            &request.nonce,
            NOW,
            &extra,
        )
        .await;
        let err = refuse(&world, &statuses, &request, &answer("pid", p, state)).await;
        assert!(
            matches!(err, ValidationError::TransactionData { .. }),
            "{extra:?}: {err:?}"
        );
    }
}

// --- mso_mdoc ---

fn mdl_query() -> DcqlQuery {
    DcqlQuery::from_json(&json!({
        "credentials": [{
            "id": "mdl",
            "format": "mso_mdoc",
            "meta": { "doctype_value": MDL },
            "claims": [
                { "path": [MDL_NS, "family_name"] },
                { "path": [MDL_NS, "age_over_18"], "values": [true] }
            ]
        }]
    }))
    .unwrap()
}

async fn issue_mdl(world: &World, device: &Jwk, status_idx: Option<u64>) -> IssuerSigned {
    let from = crate::support_time(NOW - 86_400);
    let validity = ValidityInfo {
        signed: from,
        valid_from: from,
        valid_until: from + Duration::from_secs(365 * 86_400),
        expected_update: None,
    };
    let mut builder = IssuerSignedBuilder::new(MDL, device, validity).unwrap();
    if let Some(idx) = status_idx {
        builder = builder.status_list(idx, STATUS_URI);
    }
    builder
        .claims(
            MDL_NS,
            json!({ "family_name": "Mustermann", "given_name": "Erika", "age_over_18": true })
                .as_object()
                .unwrap(),
        )
        .unwrap()
        .sign(&world.iaca.leaf, &world.iaca.chain)
        .await
        .unwrap()
}

async fn device_response(
    world: &World,
    issued: &IssuerSigned,
    disclose: &[(&str, &str)],
    transcript: &SessionTranscript,
) -> String {
    let document = edk_mdoc::present(issued, disclose, &world.holder, transcript)
        .await
        .unwrap();
    b64url_encode(DeviceResponse::new(vec![document]).to_cbor().unwrap())
}

#[tokio::test]
async fn an_mdoc_device_response_is_validated_over_the_openid4vp_transcript() {
    let world = world();
    let statuses = Arc::new(Statuses::default());
    let key = DecryptingKey::generate(KeyManagement::EcdhEs).unwrap();
    let mut request = encrypted_request(&key, KeyManagement::EcdhEs, None);
    request.dcql_query = mdl_query();
    let issued = issue_mdl(&world, &world.holder.public_jwk(), Some(3)).await;
    // The wallet's transcript: client id with prefix, nonce, the thumbprint of the key it
    // encrypts to, the response URI.
    let thumbprint = edk_core::encoding::b64url_decode(key.public_jwk().thumbprint()).unwrap();
    let transcript = SessionTranscript::openid4vp(
        CLIENT,
        &request.nonce,
        Some(&thumbprint),
        "https://verifier.example/response",
    );
    // The wallet-side helper gives the same transcript for the key a response is encrypted to.
    let encryption_key = AuthorizationResponse::encryption_key(&request).unwrap();
    assert_eq!(
        session_transcript(&request, Some(&encryption_key)).unwrap(),
        transcript
    );
    let disclose = [(MDL_NS, "family_name"), (MDL_NS, "age_over_18")];
    let p = device_response(&world, &issued, &disclose, &transcript).await;
    let body = answer("mdl", p, request.state.as_deref())
        .to_encrypted_form(&request)
        .unwrap();
    let (response, used) = AuthorizationResponse::from_encrypted_form(
        body.as_bytes(),
        &request,
        &key,
        &ResponseLimits::DEFAULT,
    )
    .await
    .unwrap();
    let verified = verifier(&world, &statuses)
        .verify(&request, &response, used.as_ref())
        .await
        .unwrap();
    assert_eq!(
        verified.claims()["mdl"][0][MDL_NS]["family_name"],
        "Mustermann"
    );
    assert_eq!(
        verified.presentations["mdl"][0]
            .status
            .as_ref()
            .unwrap()
            .idx,
        3
    );
    assert_eq!(
        verified.presentations["mdl"][0].credential.authorities,
        vec![edk_oid4vp::Authority {
            kind: edk_oid4vp::TrustedAuthorityType::Aki,
            values: vec![crate::support::subject_key_id(&world.iaca.root)],
        }]
    );

    // The same device response checked with another key's thumbprint: another transcript,
    // so the device signature does not verify.
    let other_key = DecryptingKey::generate(KeyManagement::EcdhEs)
        .unwrap()
        .public_jwk();
    let err = verifier(&world, &statuses)
        .verify(&request, &response, Some(&other_key))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ValidationError::Mdoc {
                source: edk_mdoc::Error::InvalidDeviceSignature,
                ..
            }
        ),
        "{err:?}"
    );

    // Revoked through the hook.
    statuses.values.lock().unwrap().insert(3, 1);
    let err = verifier(&world, &statuses)
        .verify(&request, &response, used.as_ref())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ValidationError::Revoked(ref id) if id == "mdl"),
        "{err:?}"
    );
}

#[tokio::test]
async fn mdoc_presentations_are_checked_against_the_query_and_the_transcript() {
    let world = world();
    let statuses = Arc::new(Statuses::default());
    let mut request = request(CLIENT, mdl_query());
    request.dcql_query = mdl_query();
    let issued = issue_mdl(&world, &world.holder.public_jwk(), None).await;
    let transcript = SessionTranscript::openid4vp(
        CLIENT,
        &request.nonce,
        None,
        "https://verifier.example/response",
    );
    let state = request.state.as_deref();

    let ok = device_response(
        &world,
        &issued,
        &[(MDL_NS, "family_name"), (MDL_NS, "age_over_18")],
        &transcript,
    )
    .await;
    verifier(&world, &statuses)
        .verify(&request, &answer("mdl", ok, state), None)
        .await
        .unwrap();

    // A required element left out.
    let partial = device_response(&world, &issued, &[(MDL_NS, "family_name")], &transcript).await;
    let err = refuse(&world, &statuses, &request, &answer("mdl", partial, state)).await;
    assert!(
        matches!(
            err,
            ValidationError::Dcql(PresentationError::ClaimMissing { .. })
        ),
        "{err:?}"
    );

    // Signed over another nonce.
    let other = SessionTranscript::openid4vp(
        CLIENT,
        "another-nonce",
        None,
        "https://verifier.example/response",
    );
    let replay = device_response(
        &world,
        &issued,
        &[(MDL_NS, "family_name"), (MDL_NS, "age_over_18")],
        &other,
    )
    .await;
    let err = refuse(&world, &statuses, &request, &answer("mdl", replay, state)).await;
    assert!(
        matches!(
            err,
            ValidationError::Mdoc {
                source: edk_mdoc::Error::InvalidDeviceSignature,
                ..
            }
        ),
        "{err:?}"
    );

    // Signed over the client id without its prefix.
    let unprefixed = SessionTranscript::openid4vp(
        "verifier.example",
        &request.nonce,
        None,
        "https://verifier.example/response",
    );
    let p = device_response(
        &world,
        &issued,
        &[(MDL_NS, "family_name"), (MDL_NS, "age_over_18")],
        &unprefixed,
    )
    .await;
    let err = refuse(&world, &statuses, &request, &answer("mdl", p, state)).await;
    assert!(
        matches!(
            err,
            ValidationError::Mdoc {
                source: edk_mdoc::Error::InvalidDeviceSignature,
                ..
            }
        ),
        "{err:?}"
    );

    // Not base64url CBOR.
    let err = refuse(
        &world,
        &statuses,
        &request,
        &answer("mdl", "!!".to_owned(), state),
    )
    .await;
    assert!(matches!(err, ValidationError::Malformed { .. }), "{err:?}");
}

#[test]
fn the_session_transcript_is_the_specifications_test_vector() {
    let mut request = request("x509_san_dns:example.com", pid_query());
    request.response_uri = Some(url::Url::parse("https://example.com/response").unwrap());
    request.nonce = "exc7gBkxjx1rdc9udRrveKvSsJIq80avlXeLHhGwqtA".to_owned();
    let jwk: Jwk = serde_json::from_value(json!({
        "kty": "EC",
        "crv": "P-256",
        "x": "DxiH5Q4Yx3UrukE2lWCErq8N8bqC9CHLLrAwLz5BmE0",
        "y": "XtLM4-3h5o3HUH0MHVJV0kyq0iBlrBwlh8qEDMZ4-Pc"
    }))
    .unwrap();
    let transcript = session_transcript(&request, Some(&jwk)).unwrap();
    let hex: String = transcript
        .to_cbor()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert_eq!(
        hex,
        "83f6f682714f70656e494434565048616e646f7665725820048bc053c00442af9b8eed494cefdd9d95240d254b046b11b68013722aad38ac"
    );
}

#[tokio::test]
async fn over_the_digital_credentials_api_presentations_are_bound_to_the_origin() {
    let world = world();
    let statuses = Arc::new(Statuses::default());
    let mut request = request(CLIENT, pid_query());
    request.response_mode = edk_oid4vp::ResponseMode::DcApi;
    request.response_uri = None;
    request.state = None;
    request.client_id = None;
    request.validate().unwrap();
    let origin = "https://verifier.example";
    let credential = issue_pid(&world, 7).await;
    let disclose = ["family_name", "birthdate"];

    let p = present(
        &world,
        &credential,
        &disclose,
        "origin:https://verifier.example",
        &request.nonce,
        NOW,
        &[],
    )
    .await;
    let verified = verifier(&world, &statuses)
        .verify_dc_api(&request, &answer("pid", p, None), origin, None)
        .await
        .unwrap();
    assert_eq!(verified.claims()["pid"][0]["family_name"], "Dent");

    // Bound to another origin.
    let p = present(
        &world,
        &credential,
        &disclose,
        "origin:https://evil.example",
        &request.nonce,
        NOW,
        &[],
    )
    .await;
    let err = verifier(&world, &statuses)
        .verify_dc_api(&request, &answer("pid", p, None), origin, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ValidationError::AudienceMismatch(_)),
        "{err:?}"
    );

    // Without a client_id, the redirect-based check has nothing to bind to.
    let p = present(
        &world,
        &credential,
        &disclose,
        "origin:https://verifier.example",
        &request.nonce,
        NOW,
        &[],
    )
    .await;
    let err = verifier(&world, &statuses)
        .verify(&request, &answer("pid", p, None), None)
        .await
        .unwrap_err();
    assert!(matches!(err, ValidationError::NoClientId), "{err:?}");
}

#[tokio::test]
async fn trusted_authorities_match_the_issuers_authority_key_identifier() {
    let world = world();
    let statuses = Arc::new(Statuses::default());
    let query_with = |aki: &str| {
        DcqlQuery::from_json(&json!({
            "credentials": [{
                "id": "pid",
                "format": "dc+sd-jwt",
                "meta": { "vct_values": ["urn:eudi:pid:1"] },
                "trusted_authorities": [{ "type": "aki", "values": [aki] }],
                "claims": [{ "path": ["family_name"] }, { "path": ["birthdate"] }]
            }]
        }))
        .unwrap()
    };
    let root_id = crate::support::subject_key_id(&world.issuer.root);
    let request = request(CLIENT, query_with(&root_id));
    let response = good_answer(&world, &request).await;
    verifier(&world, &statuses)
        .verify(&request, &response, None)
        .await
        .unwrap();

    let other = crate::support::subject_key_id(&world.iaca.root);
    let mut elsewhere = request.clone();
    elsewhere.dcql_query = query_with(&other);
    let err = refuse(&world, &statuses, &elsewhere, &response).await;
    assert!(
        matches!(err, ValidationError::Dcql(PresentationError::UntrustedIssuer(ref id)) if id == "pid"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_vp_token_in_the_clear_is_refused_where_encryption_was_asked() {
    let world = world();
    let statuses = Arc::new(Statuses::default());
    let key = DecryptingKey::generate(KeyManagement::EcdhEs).unwrap();
    let request = encrypted_request(&key, KeyManagement::EcdhEs, None);
    let response = good_answer(&world, &request).await;
    let err = refuse(&world, &statuses, &request, &response).await;
    assert!(
        matches!(err, ValidationError::ResponseNotEncrypted),
        "{err:?}"
    );
    // An error response may come in the clear (§8.3).
    let error = AuthorizationResponse::Error {
        error: "access_denied".to_owned(),
        error_description: None,
        state: request.state.clone(),
    };
    let err = refuse(&world, &statuses, &request, &error).await;
    assert!(
        matches!(err, ValidationError::WalletError { .. }),
        "{err:?}"
    );
}
