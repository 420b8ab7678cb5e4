//! `mso_mdoc` issuance over HTTP: an mDL configuration signed by the tenant's document signer
//! (a KMS key with an ISO 18013-5 DS certificate under the tenant's IACA root, both from the
//! KMS certificate API), bound to the wallet's proof key, with its status in the MSO;
//! verified by edk-mdoc and by npm `@animo-id/mdoc`, and revoked through the admin API.

use std::sync::Arc;
use std::time::Duration;

use edk_core::jose::{Algorithm, SigningKey};
use edk_core::status_list::{StatusListReference, StatusType};
use edk_core::{Clock as _, SystemClock};
use edk_kms::Caller;
use edk_kms::cert::{CertificateProfile, DistinguishedName};
use edk_kms::provider::KeySpec;
use edk_kms::{Kms as _, NewKey};
use edk_mdoc::{IssuerSigned, Limits, Verifier};
use edk_tenancy::TenantDirectory as _;
use serde_json::{Value, json};

use crate::flow::on_both_backends;
use crate::support::{Deployment, Tenant, http};

const MDL: &str = "org.iso.18013.5.1.mDL";
const MDL_NS: &str = "org.iso.18013.5.1";
const DAY: Duration = Duration::from_secs(86_400);

fn configuration(signing_algs: &Value, binding: &Value) -> Value {
    json!({
        "configuration": {
            "format": "mso_mdoc",
            "doctype": MDL,
            "scope": "mdl",
            "cryptographic_binding_methods_supported": binding,
            "credential_signing_alg_values_supported": signing_algs,
            "proof_types_supported": {
                "jwt": { "proof_signing_alg_values_supported": ["ES256"] }
            },
            "credential_metadata": {
                "display": [{ "name": "Mobile driving licence" }],
                "claims": [
                    { "path": [MDL_NS, "family_name"], "mandatory": true },
                    { "path": [MDL_NS, "birth_date"] },
                ],
            },
        },
        "settings": {
            "signing_key": "mdoc-signing",
            "lifetime_secs": 30 * 86_400,
            "status": { "purpose": "revocation" },
        },
    })
}

/// Creates the tenant's IACA root (`issuer.iaca`) and a DS certificate under it for the
/// document signer key (`issuer.mdoc-signing`); the IACA certificate (DER).
async fn document_signer(deployment: &Deployment, tenant: &Tenant) -> Vec<u8> {
    let context = deployment.tenancy.context(tenant.id).await.unwrap();
    let caller = Caller::new(context, "issuer");
    let iaca: edk_kms::KeyAlias = "issuer.iaca".parse().unwrap();
    let ds: edk_kms::KeyAlias = "issuer.mdoc-signing".parse().unwrap();
    deployment
        .kms
        .create_key(
            &caller,
            &NewKey::new(iaca.clone(), KeySpec::signing(Algorithm::Es256)),
        )
        .await
        .unwrap();
    // The issuer created its signing key at the first request; the DS certificate
    // certifies that key.
    deployment
        .kms
        .key(&caller, &edk_kms::KeyRef::Alias(ds.clone()))
        .await
        .unwrap();
    let root = deployment
        .certificates
        .issue(
            &caller,
            &iaca,
            &iaca,
            &CertificateProfile::iaca(
                DistinguishedName::parse("C=DE,O=Acme,CN=Acme IACA").unwrap(),
                DAY * 3650,
            ),
        )
        .await
        .unwrap();
    deployment
        .certificates
        .issue(
            &caller,
            &iaca,
            &ds,
            &CertificateProfile::document_signer(
                DistinguishedName::parse("C=DE,O=Acme,CN=Acme DS 1").unwrap(),
                DAY * 365,
            ),
        )
        .await
        .unwrap();
    root.certificate.der().to_vec()
}

/// Redeems `offer`, proves `holder` and asks for the `mdl` credential: the HTTP status and
/// the body.
async fn request(tenant: &Tenant, offer: &Value, holder: &SigningKey) -> (u16, Value) {
    let response = crate::support::redeem(tenant, offer, None).await;
    assert_eq!(response.status().as_u16(), 200);
    let token: Value = response.json().await.unwrap();
    let c_nonce = crate::support::nonce(tenant).await;
    let response = http()
        .post(format!("{}/credential", tenant.issuer_base))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .json(&json!({
            "credential_configuration_id": "mdl",
            "proofs": { "jwt": [crate::support::key_proof(holder, &tenant.credential_issuer, Some(&c_nonce))] },
        }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn offer(deployment: &Deployment, tenant: &Tenant, claims: Value) -> Value {
    let (status, offer) = deployment
        .admin(
            tenant,
            reqwest::Method::POST,
            "/offers",
            Some(json!({
                "credential_configuration_ids": ["mdl"],
                "claims": { "mdl": claims },
                "tx_code": { "digits": 6 },
            })),
        )
        .await;
    assert_eq!(status, 201, "{offer}");
    offer
}

fn mdl_claims() -> Value {
    json!({
        MDL_NS: {
            "family_name": "Mustermann",
            "given_name": "Erika",
            "birth_date": "1964-08-12",
            "age_over_18": true,
        }
    })
}

async fn an_mdoc_is_signed_by_the_document_signer_bound_to_the_proof_key_and_revocable(
    deployment: Deployment,
) {
    let tenant = deployment.tenant("acme").await;

    // The configuration's rules: mdocs bind a COSE device key, and are signed with COSE
    // algorithms EDK has.
    for bad in [
        configuration(&json!([-7]), &json!(["jwk"])),
        configuration(&json!([-257]), &json!(["cose_key"])),
    ] {
        let (code, body) = deployment
            .admin(
                &tenant,
                reqwest::Method::PUT,
                "/configurations/mdl",
                Some(bad),
            )
            .await;
        assert_eq!(code, 400, "{body}");
    }
    let (code, body) = deployment
        .admin(
            &tenant,
            reqwest::Method::PUT,
            "/configurations/mdl",
            Some(configuration(&json!([-7]), &json!(["cose_key"]))),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let metadata: Value = http()
        .get(format!(
            "{}/.well-known/openid-credential-issuer/acme",
            tenant.issuer_origin
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let advertised = &metadata["credential_configurations_supported"]["mdl"];
    assert_eq!(advertised["format"], "mso_mdoc");
    assert_eq!(advertised["doctype"], MDL);
    assert_eq!(
        advertised["credential_signing_alg_values_supported"],
        json!([-7])
    );

    // Without a document signer certificate nothing is issued, and the wallet is told to
    // come back rather than that its request was wrong.
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let early = offer(&deployment, &tenant, mdl_claims()).await;
    let (code, body) = request(&tenant, &early, &holder).await;
    assert_eq!(code, 503, "{body}");

    let iaca = document_signer(&deployment, &tenant).await;

    // Claims that are not grouped by name space are refused in the protocol's format.
    let flat = offer(&deployment, &tenant, json!({ "family_name": "Mustermann" })).await;
    let (code, body) = request(&tenant, &flat, &holder).await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error"], "invalid_credential_request");

    let issued = offer(&deployment, &tenant, mdl_claims()).await;
    let (code, body) = request(&tenant, &issued, &holder).await;
    assert_eq!(code, 200, "{body}");
    let encoded = body["credentials"][0]["credential"].as_str().unwrap();
    let issuer_signed = IssuerSigned::from_base64url(encoded, &Limits::DEFAULT).unwrap();

    // edk-mdoc: the chain to the IACA root, the digests, the doctype; the device key is the
    // proof key; the status is in the MSO.
    let verifier = Verifier::new([iaca.clone()], Arc::new(SystemClock)).unwrap();
    let document = verifier
        .verify_issuer_signed(&issuer_signed, MDL)
        .await
        .unwrap();
    assert_eq!(
        document.device_key.to_public(),
        holder.public_jwk().to_public()
    );
    assert_eq!(
        document.name_spaces[MDL_NS]["family_name"],
        ciborium::Value::Text("Mustermann".into())
    );
    let validity = document.mso.validity_info;
    assert_eq!(
        validity
            .valid_until
            .duration_since(validity.valid_from)
            .unwrap(),
        DAY * 30
    );
    let status = document.mso.status.clone().expect("a status in the MSO");
    assert!(
        status
            .uri
            .starts_with(&format!("{}/status-lists/", tenant.credential_issuer)),
        "{}",
        status.uri
    );
    assert!(matches!(
        verifier
            .verify_issuer_signed(&issuer_signed, "org.iso.23220.photoid.1")
            .await,
        Err(edk_mdoc::Error::DocTypeMismatch { .. })
    ));

    // An independent mdoc library agrees.
    let now = chrono::DateTime::<chrono::Utc>::from_timestamp(SystemClock.unix_seconds(), 0)
        .unwrap()
        .to_rfc3339();
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let answer = crate::interop::wallet(
        "mdoc.mjs",
        json!({
            "action": "verify_issuer_signed",
            "issuer_signed": encoded,
            "doc_type": MDL,
            "trusted": [hex(&iaca)],
            "now": now,
        }),
    )
    .await;
    assert_eq!(answer["failed"], json!([]), "{answer:#}");
    assert_eq!(answer["claims"][MDL_NS]["given_name"], "Erika");
    assert_eq!(answer["claims"][MDL_NS]["birth_date"], "1964-08-12");

    // Revoked by session through the admin API, read as revoked after the next publication.
    let reference =
        StatusListReference::new(usize::try_from(status.idx).unwrap(), status.uri).unwrap();
    let (code, body) = deployment
        .admin(
            &tenant,
            reqwest::Method::POST,
            "/credentials/status",
            Some(json!({
                "action": "revoke",
                "target": "session",
                "id": issued["session_id"],
            })),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = deployment
        .admin(
            &tenant,
            reqwest::Method::POST,
            "/status-lists/publish",
            None,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let (read, _) = crate::status::status_of(&tenant, &reference).await;
    assert_eq!(read, StatusType::Invalid);
}

on_both_backends!(an_mdoc_is_signed_by_the_document_signer_bound_to_the_proof_key_and_revocable);

/// The same certificates name the signing key of SD-JWT VCs whose configuration says
/// `key_identification: x5c`: the header carries the KMS chain, leaf first.
async fn an_sd_jwt_vc_named_by_x5c_carries_the_kms_certificate_chain(deployment: Deployment) {
    let tenant = deployment.tenant("acme").await;
    let (code, body) = deployment
        .admin(
            &tenant,
            reqwest::Method::PUT,
            "/configurations/mdl",
            Some(json!({
                "configuration": {
                    "format": "dc+sd-jwt",
                    "vct": "https://credentials.example.com/identity",
                    "cryptographic_binding_methods_supported": ["jwk"],
                    "credential_signing_alg_values_supported": ["ES256"],
                    "proof_types_supported": {
                        "jwt": { "proof_signing_alg_values_supported": ["ES256"] }
                    },
                },
                "settings": { "signing_key": "mdoc-signing", "key_identification": { "kind": "x5c" } },
            })),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    // The first request creates the signing key; it has no certificate yet.
    let early = offer(&deployment, &tenant, json!({ "given_name": "Erika" })).await;
    assert_eq!(request(&tenant, &early, &holder).await.0, 503);
    let iaca = document_signer(&deployment, &tenant).await;
    let issued = offer(&deployment, &tenant, json!({ "given_name": "Erika" })).await;
    let (code, body) = request(&tenant, &issued, &holder).await;
    assert_eq!(code, 200, "{body}");
    let sd_jwt = body["credentials"][0]["credential"].as_str().unwrap();
    let jws = sd_jwt.split('~').next().unwrap();
    let header = edk_core::jose::jws::Jws::parse(jws, &edk_core::Limits::default())
        .unwrap()
        .header()
        .clone();
    let x5c = header.x5c.expect("an x5c header");
    assert_eq!(x5c.len(), 2);
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(&x5c[1])
            .unwrap(),
        iaca
    );
}

on_both_backends!(an_sd_jwt_vc_named_by_x5c_carries_the_kms_certificate_chain);
