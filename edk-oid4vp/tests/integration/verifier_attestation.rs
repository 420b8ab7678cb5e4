//! `verifier_attestation:` clients (OpenID4VP 1.0 §5.9.3, Appendix A): the verifier signs its
//! Request Object with the key an attester vouched for and carries the Verifier Attestation
//! JWT in the header `jwt`; the wallet trusts the attester's key and refuses each broken
//! rule with its own error.

use std::sync::Arc;

use edk_core::jose::{Algorithm, Header, JwksResolver, SigningKey, jws};
use edk_oid4vp::{
    AuthorizationRequest, RequestObjectError, RequestObjectKey, RequestObjectVerifier, SignOptions,
    VerifierAttestation, sign_request_object,
};
use serde_json::{Value, json};
use url::Url;

use crate::support::{NOW, clock, pid_query, pki, request};

const ATTESTER: &str = "https://attester.example";
const SUB: &str = "verifier.example";
const CLIENT: &str = "verifier_attestation:verifier.example";

/// An attester and the verifier's request signing key.
struct Parties {
    attester: SigningKey,
    verifier: SigningKey,
}

fn parties() -> Parties {
    Parties {
        attester: SigningKey::generate(Algorithm::Es256).unwrap(),
        verifier: SigningKey::generate(Algorithm::Es256).unwrap(),
    }
}

/// The claims of an attestation of `key` for `SUB`, valid for an hour.
fn claims(key: &SigningKey) -> Value {
    json!({
        "iss": ATTESTER,
        "sub": SUB,
        "iat": NOW - 60,
        "exp": NOW + 3600,
        "cnf": { "jwk": key.public_jwk() },
    })
}

/// `claims` signed by `attester` with `typ`.
async fn attestation(attester: &SigningKey, typ: &str, claims: &Value) -> String {
    let header = Header::new(Algorithm::Es256)
        .with_typ(typ)
        .with_kid("attester-1");
    jws::sign(header, &serde_json::to_vec(claims).unwrap(), attester)
        .await
        .unwrap()
}

/// A wallet trusting `attester` for `ATTESTER`.
fn wallet(attester: &SigningKey) -> RequestObjectVerifier {
    RequestObjectVerifier::new(Vec::<Vec<u8>>::new(), clock())
        .unwrap()
        .with_trusted_attester(ATTESTER, [&attester.public_jwk().with_kid("attester-1")])
}

async fn sign(request: &AuthorizationRequest, jwt: &str, key: &SigningKey) -> String {
    sign_request_object(
        request,
        &RequestObjectKey::VerifierAttestation(jwt.to_owned()),
        key,
        clock().as_ref(),
        &SignOptions {
            lifetime: Some(300),
            ..SignOptions::default()
        },
    )
    .await
    .unwrap()
}

/// Signs `request` with `key` and the header `jwt`, bypassing the signer's checks.
async fn sign_raw(request: &AuthorizationRequest, jwt: &str, key: &SigningKey) -> String {
    let mut header = Header::new(Algorithm::Es256).with_typ("oauth-authz-req+jwt");
    header.extra.insert("jwt".to_owned(), json!(jwt));
    let claims = request.to_request_object_claims(None, None).unwrap();
    jws::sign(header, &serde_json::to_vec(&claims).unwrap(), key)
        .await
        .unwrap()
}

async fn refused(wallet: &RequestObjectVerifier, token: &str) -> RequestObjectError {
    wallet.verify(token, Some(CLIENT), None).await.unwrap_err()
}

#[tokio::test]
async fn verifier_attestation_request_objects_round_trip() {
    let parties = parties();
    let jwt = attestation(
        &parties.attester,
        "verifier-attestation+jwt",
        &claims(&parties.verifier),
    )
    .await;
    let request = request(CLIENT, pid_query());
    let token = sign(&request, &jwt, &parties.verifier).await;
    let parsed = jws::Jws::parse(&token, &Default::default()).unwrap();
    assert_eq!(parsed.header().typ.as_deref(), Some("oauth-authz-req+jwt"));
    assert_eq!(parsed.header().extra["jwt"], json!(jwt));
    let read = wallet(&parties.attester)
        .verify(&token, Some(CLIENT), None)
        .await
        .unwrap();
    assert_eq!(read, request);

    let attestation = VerifierAttestation::read(&jwt).unwrap();
    assert_eq!(attestation.issuer, ATTESTER);
    assert_eq!(attestation.subject, SUB);
    assert_eq!(attestation.expires_at, NOW + 3600);
    assert_eq!(attestation.key, parties.verifier.public_jwk());

    // Attesters can also be given as any key resolver.
    let resolver = JwksResolver::from_keys([&parties.attester.public_jwk().with_kid("attester-1")])
        .for_issuer(ATTESTER);
    let by_resolver = RequestObjectVerifier::new(Vec::<Vec<u8>>::new(), clock())
        .unwrap()
        .with_attester_resolver(Arc::new(resolver));
    assert_eq!(
        by_resolver
            .verify(&token, Some(CLIENT), None)
            .await
            .unwrap(),
        request
    );
}

#[tokio::test]
async fn an_attestation_with_another_typ_is_refused() {
    let parties = parties();
    let jwt = attestation(&parties.attester, "JWT", &claims(&parties.verifier)).await;
    let request = request(CLIENT, pid_query());
    let err = sign_request_object(
        &request,
        &RequestObjectKey::VerifierAttestation(jwt.clone()),
        &parties.verifier,
        clock().as_ref(),
        &SignOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RequestObjectError::AttestationType),
        "{err:?}"
    );
    let token = sign_raw(&request, &jwt, &parties.verifier).await;
    let err = refused(&wallet(&parties.attester), &token).await;
    assert!(
        matches!(err, RequestObjectError::AttestationType),
        "{err:?}"
    );
    assert_eq!(err.error_code(), "invalid_request_object");
}

#[tokio::test]
async fn an_attestation_from_an_unknown_attester_or_badly_signed_is_refused() {
    let parties = parties();
    let request = request(CLIENT, pid_query());

    // Signed by a key the wallet does not trust, under the trusted issuer's name.
    let stranger = SigningKey::generate(Algorithm::Es256).unwrap();
    let jwt = attestation(
        &stranger,
        "verifier-attestation+jwt",
        &claims(&parties.verifier),
    )
    .await;
    let token = sign(&request, &jwt, &parties.verifier).await;
    let err = refused(&wallet(&parties.attester), &token).await;
    assert!(
        matches!(err, RequestObjectError::AttestationSignature(_)),
        "{err:?}"
    );
    assert_eq!(err.error_code(), "invalid_client");

    // An issuer the wallet does not know.
    let mut unknown = claims(&parties.verifier);
    unknown["iss"] = json!("https://elsewhere.example");
    let jwt = attestation(&parties.attester, "verifier-attestation+jwt", &unknown).await;
    let token = sign(&request, &jwt, &parties.verifier).await;
    let err = refused(&wallet(&parties.attester), &token).await;
    assert!(
        matches!(err, RequestObjectError::UntrustedAttester { ref issuer, .. }
            if issuer == "https://elsewhere.example"),
        "{err:?}"
    );

    // A tampered attestation (its claims changed after signing).
    let jwt = attestation(
        &parties.attester,
        "verifier-attestation+jwt",
        &claims(&parties.verifier),
    )
    .await;
    let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
    let mut forged = claims(&parties.verifier);
    forged["exp"] = json!(NOW + 10 * 365 * 86_400);
    parts[1] = edk_core::encoding::b64url_encode(serde_json::to_vec(&forged).unwrap());
    let token = sign(&request, &parts.join("."), &parties.verifier).await;
    let err = refused(&wallet(&parties.attester), &token).await;
    assert!(
        matches!(err, RequestObjectError::AttestationSignature(_)),
        "{err:?}"
    );

    // A wallet trusting no attester refuses every such request.
    let none = RequestObjectVerifier::new(Vec::<Vec<u8>>::new(), clock()).unwrap();
    let token = sign(&request, &jwt, &parties.verifier).await;
    let err = refused(&none, &token).await;
    assert!(
        matches!(err, RequestObjectError::NoTrustedAttesters),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_expired_or_not_yet_valid_attestation_is_refused() {
    let parties = parties();
    let request = request(CLIENT, pid_query());
    let wallet = wallet(&parties.attester);
    for (claim, value) in [
        ("exp", NOW - 3600),
        ("nbf", NOW + 3600),
        ("iat", NOW + 3600),
    ] {
        let mut stale = claims(&parties.verifier);
        stale[claim] = json!(value);
        let jwt = attestation(&parties.attester, "verifier-attestation+jwt", &stale).await;
        let err = sign_request_object(
            &request,
            &RequestObjectKey::VerifierAttestation(jwt.clone()),
            &parties.verifier,
            clock().as_ref(),
            &SignOptions::default(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, RequestObjectError::AttestationExpired),
            "{claim}: {err:?}"
        );
        let token = sign_raw(&request, &jwt, &parties.verifier).await;
        let err = refused(&wallet, &token).await;
        assert!(
            matches!(err, RequestObjectError::AttestationExpired),
            "{claim}: {err:?}"
        );
    }

    // Without exp: malformed.
    let mut endless = claims(&parties.verifier);
    endless.as_object_mut().unwrap().remove("exp");
    let jwt = attestation(&parties.attester, "verifier-attestation+jwt", &endless).await;
    let token = sign_raw(&request, &jwt, &parties.verifier).await;
    let err = refused(&wallet, &token).await;
    assert!(
        matches!(err, RequestObjectError::AttestationMalformed(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_attestation_for_another_client_is_refused() {
    let parties = parties();
    let mut other = claims(&parties.verifier);
    other["sub"] = json!("other.example");
    let jwt = attestation(&parties.attester, "verifier-attestation+jwt", &other).await;
    let request = request(CLIENT, pid_query());
    let err = sign_request_object(
        &request,
        &RequestObjectKey::VerifierAttestation(jwt.clone()),
        &parties.verifier,
        clock().as_ref(),
        &SignOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RequestObjectError::AttestationSubjectMismatch { .. }),
        "{err:?}"
    );
    let token = sign_raw(&request, &jwt, &parties.verifier).await;
    let err = refused(&wallet(&parties.attester), &token).await;
    assert!(
        matches!(err, RequestObjectError::AttestationSubjectMismatch { ref sub, ref client_id }
            if sub == "other.example" && client_id == SUB),
        "{err:?}"
    );
    assert_eq!(err.error_code(), "invalid_client");
}

#[tokio::test]
async fn a_request_object_not_signed_by_the_attested_key_is_refused() {
    let parties = parties();
    let jwt = attestation(
        &parties.attester,
        "verifier-attestation+jwt",
        &claims(&parties.verifier),
    )
    .await;
    let request = request(CLIENT, pid_query());
    // Someone who copied the attestation signs with a key of their own.
    let thief = SigningKey::generate(Algorithm::Es256).unwrap();
    let token = sign(&request, &jwt, &thief).await;
    let err = refused(&wallet(&parties.attester), &token).await;
    assert!(
        matches!(err, RequestObjectError::NotSignedByAttestedKey(_)),
        "{err:?}"
    );

    // Without the header jwt.
    let claims = request.to_request_object_claims(None, None).unwrap();
    let header = Header::new(Algorithm::Es256).with_typ("oauth-authz-req+jwt");
    let token = jws::sign(
        header,
        &serde_json::to_vec(&claims).unwrap(),
        &parties.verifier,
    )
    .await
    .unwrap();
    let err = refused(&wallet(&parties.attester), &token).await;
    assert!(
        matches!(
            err,
            RequestObjectError::KeyReference("verifier_attestation", "jwt")
        ),
        "{err:?}"
    );

    // A key reference of another prefix is refused by the signer.
    let err = sign_request_object(
        &request,
        &RequestObjectKey::Kid("did:example:1#0".to_owned()),
        &parties.verifier,
        clock().as_ref(),
        &SignOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            RequestObjectError::KeyReference("verifier_attestation", "jwt")
        ),
        "{err:?}"
    );
    let x509 = pki("verifier", &["verifier.example"]);
    let err = sign_request_object(
        &crate::support::request("x509_san_dns:verifier.example", pid_query()),
        &RequestObjectKey::VerifierAttestation(jwt),
        &x509.leaf,
        clock().as_ref(),
        &SignOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RequestObjectError::KeyReference("x509_san_dns", "x5c")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_response_uri_outside_the_attested_redirect_uris_is_refused() {
    let parties = parties();
    let mut restricted = claims(&parties.verifier);
    restricted["redirect_uris"] = json!(["https://verifier.example/response"]);
    let jwt = attestation(&parties.attester, "verifier-attestation+jwt", &restricted).await;
    let wallet = wallet(&parties.attester);

    // The attested response_uri is accepted.
    let request = request(CLIENT, pid_query());
    let token = sign(&request, &jwt, &parties.verifier).await;
    assert_eq!(
        wallet.verify(&token, Some(CLIENT), None).await.unwrap(),
        request
    );

    // Another one is refused, by the signer and by the wallet.
    let mut elsewhere = request.clone();
    elsewhere.response_uri = Some(Url::parse("https://attacker.example/response").unwrap());
    let err = sign_request_object(
        &elsewhere,
        &RequestObjectKey::VerifierAttestation(jwt.clone()),
        &parties.verifier,
        clock().as_ref(),
        &SignOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RequestObjectError::UriNotAttested(ref uri)
            if uri == "https://attacker.example/response"),
        "{err:?}"
    );
    let token = sign_raw(&elsewhere, &jwt, &parties.verifier).await;
    let err = refused(&wallet, &token).await;
    assert!(
        matches!(err, RequestObjectError::UriNotAttested(_)),
        "{err:?}"
    );
    assert_eq!(err.error_code(), "invalid_client");
}
