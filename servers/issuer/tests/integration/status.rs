//! Token Status Lists over HTTP: credentials of a configuration with `settings.status` carry
//! a `status_list` reference; the operator revokes, suspends and reinstates them through the
//! admin API; the change shows in the list's next publication, which relying parties read
//! with edk-core (JWT and CWT forms) and npm `@sd-jwt/jwt-status-list`.

use edk_core::jose::{Jwk, VerifyingKey};
use edk_core::status_list::{
    StatusListCwt, StatusListPolicy, StatusListReference, StatusListToken, StatusType,
};
use edk_core::{Clock as _, SystemClock};
use serde_json::{Value, json};

use crate::flow::on_both_backends;
use crate::support::{Deployment, Tenant, header, http};

/// Stores configuration `id` (an SD-JWT VC) with status lists of `purpose` and `size`.
async fn configure(deployment: &Deployment, tenant: &Tenant, id: &str, status: Value) {
    let (code, body) = deployment
        .admin(
            tenant,
            reqwest::Method::PUT,
            &format!("/configurations/{id}"),
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
                "settings": { "lifetime_secs": 86400, "status": status },
            })),
        )
        .await;
    assert_eq!(code, 200, "{body}");
}

/// An offer of configuration `id` with `correlation_id`, redeemed: the credential's
/// `status.status_list` reference.
async fn issue(
    deployment: &Deployment,
    tenant: &Tenant,
    id: &str,
    correlation_id: &str,
) -> (String, StatusListReference) {
    let (code, offer) = deployment
        .admin(
            tenant,
            reqwest::Method::POST,
            "/offers",
            Some(json!({
                "credential_configuration_ids": [id],
                "claims": { id: { "given_name": "Erika" } },
                "tx_code": { "digits": 6 },
                "correlation_id": correlation_id,
            })),
        )
        .await;
    assert_eq!(code, 201, "{offer}");
    let session_id = offer["session_id"].as_str().unwrap().to_owned();
    let (_, response) = credential(tenant, &offer, &format!("{session_id}:{id}")).await;
    let sd_jwt = response["credentials"][0]["credential"].as_str().unwrap();
    let payload = jwt_payload(sd_jwt.split('~').next().unwrap());
    let reference = &payload["status"]["status_list"];
    (
        session_id,
        StatusListReference::new(
            usize::try_from(reference["idx"].as_u64().unwrap()).unwrap(),
            reference["uri"].as_str().unwrap(),
        )
        .unwrap(),
    )
}

/// Redeems `offer` and requests the credential `identifier` with a fresh holder key.
pub(crate) async fn credential(
    tenant: &Tenant,
    offer: &Value,
    identifier: &str,
) -> (String, Value) {
    use edk_core::jose::{Algorithm, SigningKey};
    let response = crate::support::redeem(tenant, offer, None).await;
    assert_eq!(response.status().as_u16(), 200);
    let token: Value = response.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let c_nonce = crate::support::nonce(tenant).await;
    let response = http()
        .post(format!("{}/credential", tenant.issuer_base))
        .bearer_auth(&token)
        .json(&json!({
            "credential_identifier": identifier,
            "proofs": { "jwt": [crate::support::key_proof(&holder, &tenant.credential_issuer, Some(&c_nonce))] },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    (token, response.json().await.unwrap())
}

fn jwt_payload(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// Where `uri` (under the credential issuer identifier) is reached over plain HTTP.
pub(crate) fn reachable(tenant: &Tenant, uri: &str) -> String {
    format!(
        "{}{}",
        tenant.issuer_base,
        uri.strip_prefix(&tenant.credential_issuer).unwrap()
    )
}

/// The tenant's keys in its JWT VC Issuer Metadata.
async fn issuer_keys(tenant: &Tenant) -> Vec<Jwk> {
    let metadata: Value = http()
        .get(format!(
            "{}/.well-known/jwt-vc-issuer/acme",
            tenant.issuer_origin
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    serde_json::from_value(metadata["jwks"]["keys"].clone()).unwrap()
}

/// The key that signs the tenant's status lists, found by `kid` in its JWT VC Issuer
/// Metadata.
pub(crate) async fn status_key(tenant: &Tenant, kid: &str) -> Jwk {
    issuer_keys(tenant)
        .await
        .into_iter()
        .find(|key| key.kid.as_deref() == Some(kid))
        .unwrap_or_else(|| panic!("no key {kid} in the issuer metadata"))
}

/// Fetches the list's JWT and reads the status of `reference` with edk-core: the status and
/// the response's `ETag`.
pub(crate) async fn status_of(
    tenant: &Tenant,
    reference: &StatusListReference,
) -> (StatusType, String) {
    let response = http()
        .get(reachable(tenant, &reference.uri))
        .header("accept", "application/statuslist+jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        header(&response, "content-type"),
        "application/statuslist+jwt"
    );
    let etag = header(&response, "etag").to_owned();
    let cache = header(&response, "cache-control").to_owned();
    assert!(cache.starts_with("public, max-age="), "{cache}");
    let token = response.text().await.unwrap();
    let kid = edk_core::jose::jws::Jws::parse(&token, &edk_core::Limits::default())
        .unwrap()
        .header()
        .kid
        .clone()
        .unwrap();
    let key = VerifyingKey::from_jwk(&status_key(tenant, &kid).await).unwrap();
    let verified = StatusListToken::verify(
        &token,
        &key,
        &reference.uri,
        &StatusListPolicy::default(),
        SystemClock.unix_seconds(),
    )
    .unwrap();
    assert_eq!(
        verified.claims().iss.as_deref(),
        Some(tenant.credential_issuer.as_str())
    );
    (verified.status(reference).unwrap(), etag)
}

async fn set_status(deployment: &Deployment, tenant: &Tenant, body: Value) -> (u16, Value) {
    deployment
        .admin(
            tenant,
            reqwest::Method::POST,
            "/credentials/status",
            Some(body),
        )
        .await
}

async fn publish(deployment: &Deployment, tenant: &Tenant) -> u64 {
    let (code, body) = deployment
        .admin(tenant, reqwest::Method::POST, "/status-lists/publish", None)
        .await;
    assert_eq!(code, 200, "{body}");
    body["published"].as_u64().unwrap()
}

async fn an_operator_revokes_suspends_and_reinstates_what_relying_parties_then_read(
    deployment: Deployment,
) {
    let tenant = deployment.tenant("acme").await;
    configure(
        &deployment,
        &tenant,
        "identity",
        json!({ "purpose": "suspension", "list_size": 64 }),
    )
    .await;
    let (session_id, reference) = issue(&deployment, &tenant, "identity", "case-1").await;
    let (_, other) = issue(&deployment, &tenant, "identity", "case-2").await;
    assert!(
        reference
            .uri
            .starts_with(&format!("{}/status-lists/", tenant.credential_issuer))
    );
    assert_eq!(
        other.uri, reference.uri,
        "one list serves the configuration"
    );
    assert_ne!(other.idx, reference.idx);
    assert!(reference.idx < 64 && other.idx < 64);

    // First fetch: published on demand, valid.
    let (status, etag) = status_of(&tenant, &reference).await;
    assert_eq!(status, StatusType::Valid);
    let not_modified = http()
        .get(reachable(&tenant, &reference.uri))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status().as_u16(), 304);
    let published_at = SystemClock.unix_seconds();

    // The admin API lists the credentials without claims.
    let (code, listed) = deployment
        .admin(
            &tenant,
            reqwest::Method::GET,
            &format!("/credentials?session_id={session_id}"),
            None,
        )
        .await;
    assert_eq!(code, 200, "{listed}");
    let credentials = listed["credentials"].as_array().unwrap();
    assert_eq!(credentials.len(), 1);
    assert_eq!(credentials[0]["status"], "valid");
    assert_eq!(credentials[0]["index"], json!(reference.idx));
    assert_eq!(credentials[0]["correlation_id"], "case-1");
    assert!(!listed.to_string().contains("Erika"));

    // Suspension is batched: the token changes at the next publication, not before.
    let (code, changed) = set_status(
        &deployment,
        &tenant,
        json!({ "action": "suspend", "target": "correlation", "id": "case-1" }),
    )
    .await;
    assert_eq!(code, 200, "{changed}");
    assert_eq!(changed["credentials"][0]["status"], "suspended");
    assert_eq!(status_of(&tenant, &reference).await.0, StatusType::Valid);
    assert_eq!(publish(&deployment, &tenant).await, 1);
    assert_eq!(
        publish(&deployment, &tenant).await,
        0,
        "nothing changed since"
    );
    let (status, suspended_etag) = status_of(&tenant, &reference).await;
    assert_eq!(status, StatusType::Suspended);
    assert_ne!(suspended_etag, etag);
    assert_eq!(status_of(&tenant, &other).await.0, StatusType::Valid);

    // Reinstated, then revoked for good.
    let (code, _) = set_status(
        &deployment,
        &tenant,
        json!({ "action": "reinstate", "target": "session", "id": session_id }),
    )
    .await;
    assert_eq!(code, 200);
    publish(&deployment, &tenant).await;
    assert_eq!(status_of(&tenant, &reference).await.0, StatusType::Valid);
    let credential_id = credentials[0]["credential_id"].as_str().unwrap();
    let (code, _) = set_status(
        &deployment,
        &tenant,
        json!({ "action": "revoke", "target": "credential", "id": credential_id }),
    )
    .await;
    assert_eq!(code, 200);
    publish(&deployment, &tenant).await;
    assert_eq!(status_of(&tenant, &reference).await.0, StatusType::Invalid);
    let (code, refused) = set_status(
        &deployment,
        &tenant,
        json!({ "action": "reinstate", "target": "credential", "id": credential_id }),
    )
    .await;
    assert_eq!(code, 409, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("revocation is final")
    );

    // Another tenant can neither change acme's credentials nor read its lists.
    let globex = deployment.tenant("globex").await;
    let (code, _) = set_status(
        &deployment,
        &globex,
        json!({ "action": "revoke", "target": "correlation", "id": "case-2" }),
    )
    .await;
    assert_eq!(code, 404);
    let list_id = reference.uri.rsplit('/').next().unwrap();
    let foreign = http()
        .get(format!("{}/status-lists/{list_id}", globex.issuer_base))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status().as_u16(), 404);

    // The CWT form says the same.
    let response = http()
        .get(reachable(&tenant, &reference.uri))
        .header("accept", "application/statuslist+cwt")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        header(&response, "content-type"),
        "application/statuslist+cwt"
    );
    let cwt = response.bytes().await.unwrap();
    let jwks: Vec<VerifyingKey> = issuer_keys(&tenant)
        .await
        .iter()
        .map(|jwk| VerifyingKey::from_jwk(jwk).unwrap())
        .collect();
    let verified = jwks
        .iter()
        .find_map(|key| {
            StatusListCwt::verify(
                &cwt,
                key,
                &reference.uri,
                &StatusListPolicy::default(),
                SystemClock.unix_seconds(),
            )
            .ok()
        })
        .expect("a key of the issuer verifies the CWT");
    assert_eq!(verified.status(&reference).unwrap(), StatusType::Invalid);
    assert_eq!(verified.status(&other).unwrap(), StatusType::Valid);

    // A relying party with npm @sd-jwt/jwt-status-list reads the same.
    let token = http()
        .get(reachable(&tenant, &reference.uri))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let kid = edk_core::jose::jws::Jws::parse(&token, &edk_core::Limits::default())
        .unwrap()
        .header()
        .kid
        .clone()
        .unwrap();
    let answer = crate::interop::wallet(
        "status_list.mjs",
        json!({
            "token": token,
            "jwk": status_key(&tenant, &kid).await,
            "uri": reference.uri,
            "indices": [reference.idx, other.idx],
        }),
    )
    .await;
    assert_eq!(answer["statuses"], json!([1, 0]));
    assert_eq!(answer["bits"], 2);

    // History: the token of the first publication still says valid.
    let historical = http()
        .get(format!(
            "{}?time={published_at}",
            reachable(&tenant, &reference.uri)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(historical.status().as_u16(), 200);
    assert!(header(&historical, "cache-control").contains("immutable"));
    let historical = historical.text().await.unwrap();
    let key = VerifyingKey::from_jwk(&status_key(&tenant, &kid).await).unwrap();
    let verified = StatusListToken::verify(
        &historical,
        &key,
        &reference.uri,
        &StatusListPolicy::default(),
        SystemClock.unix_seconds(),
    )
    .unwrap();
    assert!(verified.claims().iat <= published_at);

    // Refusals in the protocol's format.
    for (query, accept, expected) in [
        ("?time=yesterday", "application/statuslist+jwt", 400),
        ("?time=1", "application/statuslist+jwt", 404),
        ("", "text/html", 406),
    ] {
        let response = http()
            .get(format!("{}{query}", reachable(&tenant, &reference.uri)))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), expected, "{query} {accept}");
        assert_eq!(
            header(&response, "content-type"),
            "application/problem+json"
        );
    }
    let unknown = http()
        .get(format!(
            "{}/status-lists/0123456789abcdef",
            tenant.issuer_base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);

    // Aggregation lists the tenant's lists.
    let aggregation: Value = http()
        .get(format!("{}/status-lists", tenant.issuer_base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(aggregation["status_lists"], json!([reference.uri]));
    deployment.close().await;
}
on_both_backends!(an_operator_revokes_suspends_and_reinstates_what_relying_parties_then_read);
