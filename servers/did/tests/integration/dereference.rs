//! DID URL dereferencing over the resolver's HTTP binding (DID Resolution §5 and its HTTP
//! binding): fragments, `service`/`serviceType` with `relativeRef` answered with 303,
//! did:webvh paths, the dereferencing result, and the errors, on SQLite and PostgreSQL.

use serde_json::{Value, json};

use crate::support::{Deployment, encode, http};

async fn get(
    deployment: &Deployment,
    path_and_query: &str,
    accept: Option<&str>,
) -> reqwest::Response {
    let mut request = http().get(deployment.url(&format!("/1.0/identifiers/{path_and_query}")));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    request.send().await.unwrap()
}

fn location(response: &reqwest::Response) -> &str {
    assert_eq!(response.status().as_u16(), 303, "{:?}", response.url());
    response.headers()["location"].to_str().unwrap()
}

async fn did_urls_dereference(deployment: &Deployment) {
    let acme = deployment
        .tenant("acme", "acme.example", "/tenants/acme")
        .await;
    let token = deployment.token(acme.id, "did:read did:write").await;
    let response = http()
        .post(deployment.url("/api/did/v1/identifiers"))
        .bearer_auth(&token)
        .json(&json!({
            "method": "webvh",
            "path": "issuer",
            "services": [{"id": "issuer", "type": "OID4VCI", "serviceEndpoint": "https://issuer.acme.example/v1/"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let created: Value = response.json().await.unwrap();
    let did = created["did"].as_str().unwrap().to_owned();
    let method = created["document"]["verificationMethod"][0].clone();
    let method_id = method["id"].as_str().unwrap().to_owned();
    let fragment = method_id.split_once('#').unwrap().1.to_owned();
    let base = format!(
        "https://{}/tenants/acme/issuer/",
        acme.authority.replace("%3A", ":")
    );

    // A fragment selects a verification method: encoded as a whole, or raw with `%23`.
    for path in [encode(&method_id), format!("{did}%23{fragment}")] {
        let response = get(deployment, &path, None).await;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/did+ld+json"
        );
        let node: Value = response.json().await.unwrap();
        assert_eq!(node["id"], method_id.as_str());
        assert_eq!(node["publicKeyJwk"], method["publicKeyJwk"]);
    }
    // ... or a service; the dereferencing result on request.
    let response = get(
        deployment,
        &encode(&format!("{did}#issuer")),
        Some("application/did-url-dereferencing"),
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/did-url-dereferencing"
    );
    let result: Value = response.json().await.unwrap();
    assert_eq!(result["contentStream"]["id"], format!("{did}#issuer"));
    assert_eq!(
        result["dereferencingMetadata"]["contentType"],
        "application/did"
    );
    assert_eq!(result["contentMetadata"]["versionNumber"], 1);

    // `service` and `serviceType`, with `relativeRef`: 303 to the URL, in the DID URL or as
    // query parameters of the binding.
    let encoded = encode(&did);
    for (path, expected) in [
        (
            format!("{encoded}?service=issuer"),
            "https://issuer.acme.example/v1/".to_owned(),
        ),
        (
            format!("{encoded}?serviceType=OID4VCI&relativeRef=credentials"),
            "https://issuer.acme.example/v1/credentials".to_owned(),
        ),
        (
            encode(&format!("{did}?service=issuer&relativeRef=%2Fstatus")),
            "https://issuer.acme.example/status".to_owned(),
        ),
        (
            format!("{did}%3Fservice=issuer%23top"),
            "https://issuer.acme.example/v1/#top".to_owned(),
        ),
        // did:webvh paths: `/whois` and files below the DID's base.
        (encode(&format!("{did}/whois")), format!("{base}whois.vp")),
        (
            format!("{did}%2Fcredentials%2Fschema.json"),
            format!("{base}credentials/schema.json"),
        ),
        (
            format!("{encoded}?service=files&relativeRef=%2Flogo.png"),
            format!("{base}logo.png"),
        ),
    ] {
        let response = get(deployment, &path, None).await;
        assert_eq!(location(&response), expected, "{path}");
        assert_eq!(response.text().await.unwrap(), "", "{path}");
    }
    let response = get(
        deployment,
        &encode(&format!("{did}/whois")),
        Some("application/did-url-dereferencing"),
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    let result: Value = response.json().await.unwrap();
    assert_eq!(result["contentStream"], format!("{base}whois.vp"));
    assert_eq!(
        result["dereferencingMetadata"]["contentType"],
        "text/uri-list"
    );

    // Errors: the dereferencing result with the DID Resolution code and status.
    for (path, status, code) in [
        (
            encode(&format!("{did}?hl=zQmSomeHash")),
            501,
            "FEATURE_NOT_SUPPORTED",
        ),
        (format!("{encoded}?service=nope"), 404, "NOT_FOUND"),
        (encode(&format!("{did}#nope")), 404, "NOT_FOUND"),
        (
            format!("{encoded}?service=files&relativeRef=%2F..%2Fsecret"),
            400,
            "INVALID_DID_URL",
        ),
        (format!("{encoded}?relativeRef=x"), 400, "INVALID_DID_URL"),
        (
            encode("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK/x"),
            501,
            "FEATURE_NOT_SUPPORTED",
        ),
    ] {
        let response = get(deployment, &path, Some("application/did-url-dereferencing")).await;
        assert_eq!(response.status().as_u16(), status, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/did-url-dereferencing",
            "{path}"
        );
        let result: Value = response.json().await.unwrap();
        assert_eq!(
            result["dereferencingMetadata"]["error"]["type"],
            format!("https://www.w3.org/ns/did#{code}"),
            "{path}: {result}"
        );
        assert!(result["contentStream"].is_null());
    }
    // The legacy result carries legacy strings.
    let response = get(
        deployment,
        &encode(&format!("{did}?hl=x")),
        Some("application/ld+json;profile=\"https://w3id.org/did-resolution\""),
    )
    .await;
    assert_eq!(response.status().as_u16(), 501);
    let result: Value = response.json().await.unwrap();
    assert_eq!(
        result["dereferencingMetadata"]["error"],
        "featureNotSupported"
    );
    // A versionNumber that is not a number is refused before resolution: a 400 problem.
    let response = get(deployment, &format!("{encoded}?versionNumber=abc"), None).await;
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn did_urls_dereference_on_sqlite() {
    let deployment = Deployment::sqlite().await;
    did_urls_dereference(&deployment).await;
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn did_urls_dereference_on_postgres() {
    let deployment = Deployment::postgres().await;
    did_urls_dereference(&deployment).await;
    deployment.close().await;
}
