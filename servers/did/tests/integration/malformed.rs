//! Malformed and unauthorised input: clear 4xx (problem+json on the admin surface, a
//! resolution result with the DID Resolution status on the resolver), never 5xx.

use serde_json::{Value, json};

use crate::support::{Deployment, assert_problem, http};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_admin_and_registrar_requests_are_refused_with_problems() {
    let deployment = Deployment::sqlite().await;
    let acme = deployment.tenant("acme", "acme.example", "/acme").await;
    let write = deployment.token(acme.id, "did:read did:write").await;
    let read = deployment.token(acme.id, "did:read").await;
    let create = deployment.url("/api/did/v1/identifiers");

    // No token, bad token, missing scope.
    let none = http().get(&create).send().await.unwrap();
    assert_problem(none, 401).await;
    let bad = http()
        .get(&create)
        .bearer_auth("x.y.z")
        .send()
        .await
        .unwrap();
    assert_problem(bad, 401).await;
    let scope = http()
        .post(&create)
        .bearer_auth(&read)
        .json(&json!({"method": "web"}))
        .send()
        .await
        .unwrap();
    assert_problem(scope, 403).await;

    let cases: Vec<(Value, u16)> = vec![
        (json!({"method": "example"}), 422),
        (json!({"method": "web", "path": "../etc"}), 400),
        (json!({"method": "web", "path": "A/B"}), 400),
        (json!({"method": "web", "path": "a/.well-known"}), 400),
        (json!({"method": "web", "name": "Bad Name"}), 400),
        (
            json!({"method": "web", "keys": [{"algorithm": "RS256"}]}),
            400,
        ),
        (
            json!({"method": "web", "keys": [{"alias": "kms.other"}]}),
            400,
        ),
        (json!({"method": "web", "keys": [{"alias": "nodot"}]}), 400),
        (
            json!({"method": "web", "keys": [{"relationships": ["owner"]}]}),
            400,
        ),
        (
            json!({"method": "web", "keys": [{"alias": "did.x"}, {"alias": "did.x"}]}),
            400,
        ),
        (
            json!({"method": "web", "services": [{"id": "a b", "type": "T", "serviceEndpoint": "https://x.example"}]}),
            400,
        ),
        (
            json!({"method": "web", "services": [{"id": "a", "type": "T", "serviceEndpoint": 7}]}),
            400,
        ),
        (
            json!({"method": "web", "services": [{"id": "a", "type": "T", "serviceEndpoint": "https://x.example"}, {"id": "a", "type": "T", "serviceEndpoint": "https://x.example"}]}),
            400,
        ),
        (json!({"method": "key", "path": "x"}), 400),
        (json!({"method": "web", "secret": {"d": "..."}}), 400),
        (json!({"path": "x"}), 400),
    ];
    for (body, status) in cases {
        let response = http()
            .post(&create)
            .bearer_auth(&write)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{body}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{body}"
        );
    }
    let not_json = http()
        .post(&create)
        .bearer_auth(&write)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_problem(not_json, 400).await;

    // The registrar: secrets are refused, unknown DIDs are 404, a second DID at one path 409.
    let secret = http()
        .post(deployment.url("/1.0/create?method=web"))
        .bearer_auth(&write)
        .json(&json!({"secret": {"verificationMethod": []}}))
        .send()
        .await
        .unwrap();
    assert_problem(secret, 400).await;
    let missing_method = http()
        .post(deployment.url("/1.0/create"))
        .bearer_auth(&write)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_problem(missing_method, 400).await;
    for path in ["/1.0/update", "/1.0/deactivate"] {
        for did in ["did:web:nowhere.example", "not a did", ""] {
            let response = http()
                .post(deployment.url(path))
                .bearer_auth(&write)
                .json(&json!({"did": did}))
                .send()
                .await
                .unwrap();
            assert_problem(response, 404).await;
        }
    }
    let first = http()
        .post(deployment.url("/1.0/create?method=web"))
        .bearer_auth(&write)
        .json(&json!({"options": {"path": "one"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status().as_u16(), 201);
    let first: Value = first.json().await.unwrap();
    let twice = http()
        .post(deployment.url("/1.0/create?method=web"))
        .bearer_auth(&write)
        .json(&json!({"options": {"path": "one", "name": "another"}}))
        .send()
        .await
        .unwrap();
    assert_problem(twice, 409).await;
    let bad_remove = http()
        .post(deployment.url("/1.0/update"))
        .bearer_auth(&write)
        .json(&json!({"did": first["didState"]["did"], "options": {"removeKeys": ["did.unknown"]}}))
        .send()
        .await
        .unwrap();
    assert_problem(bad_remove, 400).await;
    let unknown = http()
        .get(deployment.url("/api/did/v1/identifiers/did%3Aweb%3Anowhere.example"))
        .bearer_auth(&read)
        .send()
        .await
        .unwrap();
    assert_problem(unknown, 404).await;
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resolver_answers_with_did_resolution_status_codes() {
    let deployment = Deployment::sqlite().await;
    let cases = [
        (
            "not-a-did",
            "application/did-resolution",
            400,
            "INVALID_DID",
        ),
        (
            "did:key:zzzz",
            "application/did-resolution",
            400,
            "INVALID_DID",
        ),
        (
            "did:example:123",
            "application/did-resolution",
            501,
            "METHOD_NOT_SUPPORTED",
        ),
        (
            "did:web:nowhere.example",
            "application/did-resolution",
            404,
            "NOT_FOUND",
        ),
        (
            "did:webvh:QmdummyscidQmdummyscidQmdummyscidQmdummyscid12:nowhere.example",
            "application/did-resolution",
            404,
            "NOT_FOUND",
        ),
        (
            "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
            "text/html",
            406,
            "REPRESENTATION_NOT_SUPPORTED",
        ),
    ];
    for (did, accept, status, code) in cases {
        let response = deployment.resolve(did, accept).await;
        assert_eq!(response.status().as_u16(), status, "{did}");
        assert_eq!(
            response.headers()["content-type"],
            "application/did-resolution",
            "{did}"
        );
        let body: Value = response.json().await.unwrap();
        let error = body["didResolutionMetadata"]["error"]["type"]
            .as_str()
            .unwrap_or_default();
        assert!(error.ends_with(code), "{did}: {body}");
        assert!(body["didDocument"].is_null());
    }
    // Legacy errors are strings.
    let legacy = deployment
        .resolve(
            "did:web:nowhere.example",
            "application/ld+json;profile=\"https://w3id.org/did-resolution\"",
        )
        .await;
    assert_eq!(legacy.status().as_u16(), 404);
    let legacy: Value = legacy.json().await.unwrap();
    assert_eq!(legacy["didResolutionMetadata"]["error"], "notFound");
    assert_eq!(legacy["@context"], "https://w3id.org/did-resolution/v1");
    // Options: a bad versionTime is INVALID_OPTIONS, a version of a did:key notFound.
    let key = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";
    let bad_time = http()
        .get(deployment.url(&format!("/1.0/identifiers/{key}?versionTime=yesterday")))
        .header("accept", "application/did-resolution")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_time.status().as_u16(), 400);
    let version = http()
        .get(deployment.url(&format!("/1.0/identifiers/{key}?versionId=2")))
        .header("accept", "application/did-resolution")
        .send()
        .await
        .unwrap();
    assert_eq!(version.status().as_u16(), 404);
    // The default representation is the document as JSON-LD.
    let default = http()
        .get(deployment.url(&format!("/1.0/identifiers/{key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(default.status().as_u16(), 200);
    assert_eq!(default.headers()["content-type"], "application/did+ld+json");
    // Methods.
    let methods: Value = http()
        .get(deployment.url("/1.0/methods"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(methods, json!(["jwk", "key", "web", "webvh"]));
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_files_answer_only_get_for_known_files() {
    let deployment = Deployment::sqlite().await;
    let acme = deployment.tenant("acme", "acme.example", "").await;
    for path in [
        "/.well-known/did.json",
        "/did.json",
        "/x/did.jsonl",
        "/x/did-witness.json",
        "/x/other.json",
        "/.well-known/did.json/extra",
        "/%2e%2e/did.json",
    ] {
        let response = http()
            .get(format!("{}{path}", acme.base))
            .send()
            .await
            .unwrap();
        assert_problem(response, 404).await;
    }
    let post = http()
        .post(format!("{}/.well-known/did.json", acme.base))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 405);
    deployment.close().await;
}
