//! Creating, publishing, resolving, updating and deactivating DIDs over HTTP, on SQLite and
//! PostgreSQL.

use serde_json::{Value, json};

use crate::support::{Deployment, assert_problem, encode, http, python_resolve};

/// did:web at the root of a host-only binding: `/.well-known/did.json`.
async fn did_web_lifecycle(deployment: &Deployment) {
    let acme = deployment.tenant("acme", "acme.example", "").await;
    let token = deployment.token(acme.id, "did:read did:write").await;

    let response = http()
        .post(deployment.url("/1.0/create?method=web"))
        .bearer_auth(&token)
        .json(&json!({
            "jobId": "j1",
            "options": {"keys": [{"relationships": ["assertionMethod"]}]},
            "didDocument": {"service": [{"id": "issuer", "type": "OID4VCI", "serviceEndpoint": "https://issuer.acme.example"}]}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let created: Value = response.json().await.unwrap();
    let did = created["didState"]["did"].as_str().unwrap().to_owned();
    assert_eq!(did, format!("did:web:{}", acme.authority));
    assert_eq!(created["jobId"], "j1");
    assert_eq!(created["didState"]["state"], "finished");
    let document = &created["didState"]["didDocument"];
    assert_eq!(document["id"], did.as_str());
    let vm = &document["verificationMethod"][0];
    assert_eq!(vm["type"], "JsonWebKey");
    assert!(vm["publicKeyJwk"].get("d").is_none());
    assert_eq!(document["assertionMethod"][0], vm["id"]);
    assert!(document.get("authentication").is_none());

    // Published at /.well-known/did.json on the tenant's host, as application/did+json.
    let published = http()
        .get(format!("{}/.well-known/did.json", acme.base))
        .send()
        .await
        .unwrap();
    assert_eq!(published.status().as_u16(), 200);
    assert_eq!(published.headers()["content-type"], "application/did+json");
    let published: Value = published.json().await.unwrap();
    assert_eq!(&published, document);
    assert_eq!(
        published["service"][0]["id"],
        format!("{did}#issuer").as_str()
    );

    // Universal Resolver: every representation.
    let ld = deployment.resolve(&did, "application/did+ld+json").await;
    assert_eq!(ld.status().as_u16(), 200);
    assert_eq!(ld.headers()["content-type"], "application/did+ld+json");
    assert_eq!(ld.json::<Value>().await.unwrap()["id"], did.as_str());
    let plain = deployment.resolve(&did, "application/did+json").await;
    assert_eq!(plain.headers()["content-type"], "application/did+json");
    assert!(
        plain
            .json::<Value>()
            .await
            .unwrap()
            .get("@context")
            .is_none()
    );
    let result = deployment.resolve(&did, "application/did-resolution").await;
    assert_eq!(
        result.headers()["content-type"],
        "application/did-resolution"
    );
    let result: Value = result.json().await.unwrap();
    assert_eq!(result["didDocument"]["id"], did.as_str());
    assert_eq!(
        result["didResolutionMetadata"]["contentType"],
        "application/did"
    );
    let encoded = http()
        .get(deployment.url(&format!("/1.0/identifiers/{}", encode(&did))))
        .header("accept", "application/did-resolution")
        .send()
        .await
        .unwrap();
    assert_eq!(encoded.status().as_u16(), 200);

    // Update: services replaced, a second key added; the resolver sees it at once.
    let response = http()
        .post(deployment.url("/1.0/update"))
        .bearer_auth(&token)
        .json(&json!({
            "did": did,
            "options": {"addKeys": [{"algorithm": "EdDSA", "relationships": ["authentication"]}]},
            "didDocument": {"service": [{"id": "status", "type": "StatusList", "serviceEndpoint": "https://status.acme.example"}]}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(
        updated["didState"]["didDocument"]["verificationMethod"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(updated["didDocumentMetadata"]["updated"].is_string());
    let resolved: Value = deployment
        .resolve(&did, "application/did+ld+json")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resolved["service"][0]["type"], "StatusList");
    assert_eq!(resolved["service"].as_array().unwrap().len(), 1);

    // Admin views.
    let view: Value = http()
        .get(deployment.url(&format!("/api/did/v1/identifiers/{}", encode(&did))))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["method"], "web");
    assert_eq!(view["name"], "root");
    assert_eq!(
        view["document_url"],
        format!(
            "https://{}/.well-known/did.json",
            acme.authority.replace("%3A", ":")
        )
    );
    let aliases: Vec<&str> = view["verification_methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["alias"].as_str().unwrap())
        .collect();
    assert_eq!(aliases, ["did.root", "did.root-2"]);

    // Deactivate: did.json answers 410, the resolver 410 with deactivated metadata.
    let response = http()
        .post(deployment.url("/1.0/deactivate"))
        .bearer_auth(&token)
        .json(&json!({"did": did}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let deactivated: Value = response.json().await.unwrap();
    assert_eq!(deactivated["didDocumentMetadata"]["deactivated"], true);
    assert!(deactivated["didState"]["didDocument"].is_null());
    let gone = http()
        .get(format!("{}/.well-known/did.json", acme.base))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status().as_u16(), 410);
    let gone = deployment.resolve(&did, "application/did-resolution").await;
    assert_eq!(gone.status().as_u16(), 410);
    let gone: Value = gone.json().await.unwrap();
    assert_eq!(gone["didDocumentMetadata"]["deactivated"], true);
    assert!(gone["didDocument"].is_null());
    let doc_gone = deployment.resolve(&did, "application/did+ld+json").await;
    assert_eq!(doc_gone.status().as_u16(), 410);

    // A deactivated DID cannot change.
    let again = http()
        .post(deployment.url("/1.0/update"))
        .bearer_auth(&token)
        .json(&json!({"did": did, "didDocument": {"service": []}}))
        .send()
        .await
        .unwrap();
    assert_problem(again, 409).await;
}

/// did:webvh under a path-prefix binding, with a sub-path: log, parallel did:web, witness.
async fn did_webvh_lifecycle(deployment: &Deployment) {
    let other = deployment
        .tenant("other", "shared.example", "/tenants/other")
        .await;
    let token = deployment.token(other.id, "did:read did:write").await;

    let response = http()
        .post(deployment.url("/api/did/v1/identifiers"))
        .bearer_auth(&token)
        .json(&json!({
            "method": "webvh",
            "path": "issuer",
            "services": [{"id": "issuer", "type": "OID4VCI", "serviceEndpoint": "https://shared.example/issuer"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let created: Value = response.json().await.unwrap();
    let did = created["did"].as_str().unwrap().to_owned();
    assert!(did.starts_with("did:webvh:Qm"), "{did}");
    assert!(did.ends_with(&format!(":{}:tenants:other:issuer", other.authority)));
    assert_eq!(created["update_key"], "did.tenants-other-issuer-update");
    assert_eq!(created["log_entries"], 1);
    let log_url = format!("{}/issuer/did.jsonl", other.base);

    // The log, as text/jsonl, verified by our resolver and by PyPI did-webvh.
    let log = http().get(&log_url).send().await.unwrap();
    assert_eq!(log.status().as_u16(), 200);
    assert_eq!(log.headers()["content-type"], "text/jsonl");
    let log = log.text().await.unwrap();
    assert_eq!(log.lines().count(), 1);
    let theirs = python_resolve(&log, &did);
    assert_eq!(theirs["didDocument"]["id"], did.as_str(), "{theirs}");
    let ours: Value = deployment
        .resolve(&did, "application/did-resolution")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ours["didDocument"]["id"], did.as_str(), "{ours}");
    assert_eq!(ours["didDocumentMetadata"]["versionNumber"], 1);
    // The did:webvh document lists its parallel did:web (did:webvh §"Publishing a Parallel
    // did:web DID").
    let did_web = format!("did:web:{}:tenants:other:issuer", other.authority);
    assert_eq!(
        ours["didDocument"]["alsoKnownAs"],
        json!([did_web]),
        "{ours}"
    );

    // The parallel did:web at the same place; no witness file.
    let web: Value = http()
        .get(format!("{}/issuer/did.json", other.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(web["id"].as_str().unwrap().starts_with("did:web:"));
    assert!(web["alsoKnownAs"].as_array().unwrap().contains(&json!(did)));
    let witness = http()
        .get(format!("{}/issuer/did-witness.json", other.base))
        .send()
        .await
        .unwrap();
    assert_eq!(witness.status().as_u16(), 404);

    // Adding a verification method appends a signed entry.
    let added = http()
        .post(deployment.url(&format!(
            "/api/did/v1/identifiers/{}/verification-methods",
            encode(&did)
        )))
        .bearer_auth(&token)
        .json(&json!({"algorithm": "ES384", "relationships": ["assertionMethod"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status().as_u16(), 201);
    let added: Value = added.json().await.unwrap();
    assert_eq!(added["verification_methods"].as_array().unwrap().len(), 2);
    let listed: Value = http()
        .get(deployment.url(&format!(
            "/api/did/v1/identifiers/{}/verification-methods",
            encode(&did)
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, added);
    let log = http()
        .get(&log_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(log.lines().count(), 2);
    let theirs = python_resolve(&log, &did);
    assert_eq!(
        theirs["didDocument"]["verificationMethod"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{theirs}"
    );
    let ours: Value = deployment
        .resolve(&did, "application/did-resolution")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ours["didDocumentMetadata"]["versionNumber"], 2, "{ours}");
    let first = http()
        .get(deployment.url(&format!(
            "/1.0/identifiers/{}?versionNumber=1",
            encode(&did)
        )))
        .header("accept", "application/did-resolution")
        .send()
        .await
        .unwrap();
    assert_eq!(first.status().as_u16(), 200);
    let first: Value = first.json().await.unwrap();
    assert_eq!(
        first["didDocument"]["verificationMethod"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Deactivate: the log stays published and says so; resolvers report deactivated.
    let response = http()
        .post(deployment.url("/1.0/deactivate"))
        .bearer_auth(&token)
        .json(&json!({"did": did}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let log = http()
        .get(&log_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(log.lines().count(), 3);
    let theirs = python_resolve(&log, &did);
    assert_eq!(
        theirs["didDocumentMetadata"]["deactivated"], true,
        "{theirs}"
    );
    let gone = deployment.resolve(&did, "application/did-resolution").await;
    assert_eq!(gone.status().as_u16(), 410);
    let gone: Value = gone.json().await.unwrap();
    assert!(gone["didDocument"].is_null(), "{gone}");
    assert_eq!(gone["didDocumentMetadata"]["deactivated"], true);
    // Prior versions still resolve by versionNumber, versionId and versionTime, with
    // `deactivated: true` (did:webvh §"Deactivate (Revoke)"); the DID answers 410.
    let v1 = log.lines().next().unwrap();
    let v1: Value = serde_json::from_str(v1).unwrap();
    for query in [
        "versionNumber=1".to_owned(),
        format!("versionId={}", v1["versionId"].as_str().unwrap()),
        format!(
            "versionTime={}",
            encode(v1["versionTime"].as_str().unwrap())
        ),
    ] {
        let prior = http()
            .get(deployment.url(&format!("/1.0/identifiers/{}?{query}", encode(&did))))
            .header("accept", "application/did-resolution")
            .send()
            .await
            .unwrap();
        assert_eq!(prior.status().as_u16(), 410, "{query}");
        let prior: Value = prior.json().await.unwrap();
        assert_eq!(prior["didDocument"]["id"], did.as_str(), "{query}: {prior}");
        assert_eq!(prior["didDocumentMetadata"]["versionNumber"], 1, "{query}");
        assert_eq!(prior["didDocumentMetadata"]["deactivated"], true, "{query}");
    }
    let prior = http()
        .get(deployment.url(&format!(
            "/1.0/identifiers/{}?versionNumber=2",
            encode(&did)
        )))
        .header("accept", "application/did+ld+json")
        .send()
        .await
        .unwrap();
    assert_eq!(prior.status().as_u16(), 410);
    assert_eq!(prior.headers()["content-type"], "application/did+ld+json");
    let prior: Value = prior.json().await.unwrap();
    assert_eq!(prior["id"], did.as_str(), "{prior}");
    let web = http()
        .get(format!("{}/issuer/did.json", other.base))
        .send()
        .await
        .unwrap();
    assert_eq!(web.status().as_u16(), 410);
}

/// did:key and did:jwk from KMS keys: resolvable, but not updatable.
async fn key_dids(deployment: &Deployment) {
    let tenant = deployment.unbound_tenant("keys").await;
    let token = deployment.token(tenant, "did:read did:write").await;
    for (method, prefix) in [("key", "did:key:zDn"), ("jwk", "did:jwk:ey")] {
        let response = http()
            .post(deployment.url(&format!("/1.0/create?method={method}")))
            .bearer_auth(&token)
            .json(&json!({"options": {"name": format!("my-{method}")}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
        let created: Value = response.json().await.unwrap();
        let did = created["didState"]["did"].as_str().unwrap().to_owned();
        assert!(did.starts_with(prefix), "{did}");
        let resolved: Value = deployment
            .resolve(&did, "application/did-resolution")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(resolved["didDocument"], created["didState"]["didDocument"]);
        let update = http()
            .post(deployment.url("/1.0/update"))
            .bearer_auth(&token)
            .json(&json!({"did": did, "didDocument": {"service": []}}))
            .send()
            .await
            .unwrap();
        assert_problem(update, 422).await;
    }
    // did:web needs a DID binding.
    let response = http()
        .post(deployment.url("/api/did/v1/identifiers"))
        .bearer_auth(&token)
        .json(&json!({"method": "web"}))
        .send()
        .await
        .unwrap();
    assert_problem(response, 409).await;
    let list: Value = http()
        .get(deployment.url("/api/did/v1/identifiers"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["identifiers"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn did_web_lifecycle_on_sqlite() {
    let deployment = Deployment::sqlite().await;
    did_web_lifecycle(&deployment).await;
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn did_web_lifecycle_on_postgres() {
    let deployment = Deployment::postgres().await;
    did_web_lifecycle(&deployment).await;
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn did_webvh_lifecycle_on_sqlite() {
    let deployment = Deployment::sqlite().await;
    did_webvh_lifecycle(&deployment).await;
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn did_webvh_lifecycle_on_postgres() {
    let deployment = Deployment::postgres().await;
    did_webvh_lifecycle(&deployment).await;
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn did_key_and_did_jwk_on_sqlite() {
    let deployment = Deployment::sqlite().await;
    key_dids(&deployment).await;
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn did_key_and_did_jwk_on_postgres() {
    let deployment = Deployment::postgres().await;
    key_dids(&deployment).await;
    deployment.close().await;
}
