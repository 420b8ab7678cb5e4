//! SD-JWT VC Type Metadata over HTTP: a configuration whose `vct` is
//! `<credential issuer>/types/<name>` serves its Type Metadata there, its credentials carry
//! the document's `vct#integrity`, and a verifier with edk-core's resolver fetches, checks
//! and applies it.

use std::sync::Arc;

use async_trait::async_trait;
use edk_core::jose::{JwkSet, JwksResolver};
use edk_core::sd_jwt::SdJwt;
use edk_core::sd_jwt_vc::VcVerifyOptions;
use edk_core::sd_jwt_vc::type_metadata::{TypeMetadataFetcher, TypeMetadataResolver};
use edk_core::{Clock as _, Limits, SystemClock};
use serde_json::{Value, json};

use crate::flow::on_both_backends;
use crate::status::{credential, reachable};
use crate::support::{Deployment, Tenant, http};

/// Fetches `vct` URLs of the tenant's issuer over plain HTTP on loopback.
#[derive(Debug)]
struct IssuerFetcher {
    credential_issuer: String,
    issuer_base: String,
}

#[async_trait]
impl TypeMetadataFetcher for IssuerFetcher {
    async fn fetch(&self, vct: &str) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
        let path = vct
            .strip_prefix(&self.credential_issuer)
            .ok_or("not a type of this issuer")?;
        let response = http()
            .get(format!("{}{path}", self.issuer_base))
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(format!("{vct}: {}", response.status()).into());
        }
        Ok(response.bytes().await?.to_vec())
    }
}

fn document(vct: &str) -> Value {
    json!({
        "vct": vct,
        "name": "Identity",
        "display": [{ "locale": "en-US", "name": "Identity card" }],
        "claims": [
            { "path": ["given_name"], "sd": "always", "mandatory": true,
              "display": [{ "locale": "en-US", "label": "Given name" }] },
        ],
    })
}

async fn put(deployment: &Deployment, tenant: &Tenant, vct: &str, metadata: Value) -> (u16, Value) {
    deployment
        .admin(
            tenant,
            reqwest::Method::PUT,
            "/configurations/identity",
            Some(json!({
                "configuration": {
                    "format": "dc+sd-jwt",
                    "vct": vct,
                    "cryptographic_binding_methods_supported": ["jwk"],
                    "credential_signing_alg_values_supported": ["ES256"],
                    "proof_types_supported": {
                        "jwt": { "proof_signing_alg_values_supported": ["ES256"] }
                    },
                },
                "settings": { "type_metadata": metadata },
            })),
        )
        .await
}

async fn a_verifier_resolves_and_applies_the_type_metadata_the_issuer_serves(
    deployment: Deployment,
) {
    let tenant = deployment.tenant("acme").await;
    let vct = format!("{}/types/identity", tenant.credential_issuer);

    // Documents that do not describe the configuration's type are refused.
    let (code, body) = put(
        &deployment,
        &tenant,
        &vct,
        document("https://elsewhere.example/t"),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    let (code, body) = put(
        &deployment,
        &tenant,
        &vct,
        json!({ "vct": vct, "claims": [{ "path": [] }] }),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    let (code, body) = put(&deployment, &tenant, &vct, document(&vct)).await;
    assert_eq!(code, 200, "{body}");

    // Served at the vct URL.
    let response = http().get(reachable(&tenant, &vct)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        crate::support::header(&response, "content-type"),
        "application/json"
    );
    let served: Value = response.json().await.unwrap();
    assert_eq!(served, document(&vct));
    let missing = http()
        .get(reachable(
            &tenant,
            &format!("{}/types/other", tenant.credential_issuer),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);

    // A credential of the type carries the integrity; a verifier resolves and applies it.
    let (status, offer) = deployment
        .admin(
            &tenant,
            reqwest::Method::POST,
            "/offers",
            Some(json!({
                "credential_configuration_ids": ["identity"],
                "claims": { "identity": { "given_name": "Erika", "family_name": "Mustermann" } },
                "tx_code": { "digits": 6 },
            })),
        )
        .await;
    assert_eq!(status, 201, "{offer}");
    let identifier = format!("{}:identity", offer["session_id"].as_str().unwrap());
    let (_, response) = credential(&tenant, &offer, &identifier).await;
    let issued = SdJwt::parse(
        response["credentials"][0]["credential"].as_str().unwrap(),
        &Limits::default(),
    )
    .unwrap();
    let jwks: JwkSet = deployment.issuer_jwks(&tenant).await;
    let verified = issued
        .verify_vc(
            &JwksResolver::new(&jwks),
            &VcVerifyOptions::default(),
            SystemClock.unix_seconds(),
        )
        .await
        .unwrap();
    let integrity = verified.vct_integrity().unwrap().to_owned();
    let resolver = TypeMetadataResolver::new(Arc::new(IssuerFetcher {
        credential_issuer: tenant.credential_issuer.clone(),
        issuer_base: tenant.issuer_base.clone(),
    }));
    let resolved = resolver
        .resolve(verified.vct(), Some(&integrity))
        .await
        .unwrap();
    assert_eq!(resolved.metadata().name.as_deref(), Some("Identity"));
    resolved.check(&verified).unwrap();

    // Once the operator changes the document, credentials issued before no longer match it.
    let mut changed = document(&vct);
    changed["name"] = json!("Identity v2");
    assert_eq!(put(&deployment, &tenant, &vct, changed).await.0, 200);
    let fresh = TypeMetadataResolver::new(Arc::new(IssuerFetcher {
        credential_issuer: tenant.credential_issuer.clone(),
        issuer_base: tenant.issuer_base.clone(),
    }));
    assert!(
        fresh
            .resolve(verified.vct(), Some(&integrity))
            .await
            .is_err()
    );
    deployment.close().await;
}
on_both_backends!(a_verifier_resolves_and_applies_the_type_metadata_the_issuer_serves);
