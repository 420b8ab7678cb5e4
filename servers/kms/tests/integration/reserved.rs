//! Aliases reserved for EDK's own services (`as.*`, `audit.*`, `did.*`): the admin API reads
//! them but never creates, changes or uses their private keys; ordinary aliases are unaffected.

use edk_core::jose::{Algorithm, SigningKey};
use edk_kms::provider::KeySpec;
use edk_kms::{Caller, KeyAlias, Kms, NewKey};
use edk_tenancy::TenantDirectory;
use serde_json::{Value, json};

use crate::support::{Backend, Harness, expect_json, expect_problem};

/// Asserts a 403 problem naming `alias` as reserved for `service`.
async fn refused(response: reqwest::Response, alias: &str, service: &str) {
    let body = expect_problem(response, 403).await;
    assert_eq!(body["title"], "forbidden", "{body}");
    assert_eq!(
        body["detail"],
        format!("key alias `{alias}` is reserved for the `{service}` service"),
        "{body}"
    );
}

async fn refuses_the_reserved_aliases(backend: Backend) {
    let h = Harness::start(backend).await;
    let token = h.token().await;
    // The authorization server made its access-token key in process, as it does.
    let context = h.kms.tenancy().context(h.tenant_a).await.unwrap();
    let as_key: KeyAlias = "as.access-token-signing".parse().unwrap();
    let created = h
        .kms
        .kms()
        .create_key(
            &Caller::new(context, "edk-oauth"),
            &NewKey::new(as_key.clone(), KeySpec::signing(Algorithm::Es256)),
        )
        .await
        .unwrap();
    let kid = created.active().unwrap().kid.as_str().to_owned();

    // kms:use cannot sign with it, raw or as a JWS (an `at+jwt` access token).
    refused(
        h.post(
            "/signatures/raw/create",
            &token,
            &json!({ "key": "as.access-token-signing", "message": "aGk" }),
        )
        .await,
        "as.access-token-signing",
        "as",
    )
    .await;
    refused(
        h.post(
            "/signatures/jws/create",
            &token,
            &json!({ "key": "as.access-token-signing", "payload": "e30", "typ": "at+jwt" }),
        )
        .await,
        "as.access-token-signing",
        "as",
    )
    .await;
    // kms:write cannot rotate or delete it, by alias or by kid.
    refused(
        h.post("/keys/as.access-token-signing/rotate", &token, &json!({}))
            .await,
        "as.access-token-signing",
        "as",
    )
    .await;
    refused(
        h.delete("/keys/as.access-token-signing", &token).await,
        "as.access-token-signing",
        "as",
    )
    .await;
    refused(
        h.delete(&format!("/keys/{kid}"), &token).await,
        "as.access-token-signing",
        "as",
    )
    .await;
    // Reading it stays allowed, and it is unchanged.
    let read = expect_json(h.get("/keys/as.access-token-signing", &token).await, 200).await;
    assert_eq!(read["versions"].as_array().unwrap().len(), 1);
    assert_eq!(read["versions"][0]["kid"], kid.as_str());
    expect_json(
        h.get("/keys/as.access-token-signing/jwks", &token).await,
        200,
    )
    .await;

    // kms:write cannot claim a reserved name before its service does: create, import or
    // register, whether or not the alias exists.
    let private = SigningKey::generate(Algorithm::Es256).unwrap();
    refused(
        h.post(
            "/keys/import",
            &token,
            &json!({ "alias": "did.x-update", "usage": "sign", "algorithm": "ES256", "private_jwk": private.to_jwk().unwrap() }),
        )
        .await,
        "did.x-update",
        "did",
    )
    .await;
    refused(
        h.post(
            "/keys",
            &token,
            &json!({ "alias": "audit.audit-checkpoint", "usage": "sign", "algorithm": "ES256" }),
        )
        .await,
        "audit.audit-checkpoint",
        "audit",
    )
    .await;
    refused(
        h.post(
            "/providers/backup/keys",
            &token,
            &json!({ "alias": "did.web-root", "usage": "sign", "algorithm": "ES256" }),
        )
        .await,
        "did.web-root",
        "did",
    )
    .await;
    refused(
        h.post(
            "/keys/register",
            &token,
            &json!({ "alias": "as.access-token-signing-2", "public_jwk": private.public_jwk() }),
        )
        .await,
        "as.access-token-signing-2",
        "as",
    )
    .await;
    // Nothing was written.
    for alias in ["did.x-update", "audit.audit-checkpoint", "did.web-root"] {
        expect_problem(h.get(&format!("/keys/{alias}"), &token).await, 404).await;
    }
    let listed = expect_json(h.get("/keys", &token).await, 200).await;
    let aliases: Vec<&str> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alias"].as_str().unwrap())
        .collect();
    assert_eq!(aliases, ["as.access-token-signing"]);

    // Ordinary aliases work as before.
    let ordinary =
        json!({ "alias": "issuer.credential-signing", "usage": "sign", "algorithm": "ES256" });
    expect_json(h.post("/keys", &token, &ordinary).await, 201).await;
    let signed: Value = expect_json(
        h.post(
            "/signatures/raw/create",
            &token,
            &json!({ "key": "issuer.credential-signing", "message": "aGk" }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(signed["alg"], "ES256");

    // The refusals are in the audit chain, as the admin's.
    let events = expect_json(h.get("/audit/events", &token).await, 200).await;
    let refusals: Vec<(&str, &str)> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "failure:forbidden")
        .map(|e| {
            assert_eq!(e["actor"], "ops@example.test");
            (
                e["operation"].as_str().unwrap(),
                e["alias"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        refusals,
        [
            ("sign", "as.access-token-signing"),
            ("sign", "as.access-token-signing"),
            ("rotate", "as.access-token-signing"),
            ("delete_key", "as.access-token-signing"),
            ("delete_key", "as.access-token-signing"),
            ("import_key", "did.x-update"),
            ("create_key", "audit.audit-checkpoint"),
            ("create_key", "did.web-root"),
            ("register_public_key", "as.access-token-signing-2"),
        ]
    );
    h.stop().await;
}

#[tokio::test]
async fn the_admin_api_refuses_reserved_aliases_on_postgres() {
    refuses_the_reserved_aliases(Backend::Postgres).await;
}

#[tokio::test]
async fn the_admin_api_refuses_reserved_aliases_on_sqlite() {
    refuses_the_reserved_aliases(Backend::Sqlite).await;
}
