//! Recorded Key Vault and Entra ID answers (`tests/vectors/azure-key-vault`, see its README):
//! the Azure provider against them, replayed, and the testkit's Key Vault server against
//! their shapes.

use std::time::Duration;

use edk_core::encoding::b64url_decode;
use edk_core::jose::jwe::{JweHeader, KeyManagement};
use edk_core::jose::{Algorithm, Jwk};
use edk_core::{ErrorKind, HasKind as _, Kid, TenantId};
use edk_kms::provider::azure::{
    AzureCredentialsConfig, AzureKeyVaultProvider, AzureKeyVaultProviderConfig,
};
use edk_kms::provider::remote::RemoteOptions;
use edk_kms::provider::{KeyHandle, KeyProvider, KeyUsage, ProviderId};
use edk_testkit::azure_key_vault::AzureKeyVaultServer;
use edk_testkit::scripted::{ScriptedAnswer, ScriptedServer};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Map, Value, json};

const PROVIDER: &str = "azure-vault-prod";
const TOKEN_PATH: &str = "/contoso.onmicrosoft.com/oauth2/v2.0/token";

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/vectors/azure-key-vault/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn answer(fixture: &Value) -> ScriptedAnswer {
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(recorded) = fixture["headers"].as_object() {
        for (name, value) in recorded {
            headers.push((name.clone(), value.as_str().unwrap().to_owned()));
        }
    }
    ScriptedAnswer {
        status: u16::try_from(fixture["status"].as_u64().unwrap()).unwrap(),
        headers,
        body: fixture["body"].to_string(),
    }
}

/// The fixture's answer at its own request's method and path.
fn route(fixture: &Value) -> (Method, String, ScriptedAnswer) {
    let method = fixture["request"]["method"].as_str().unwrap();
    (
        Method::from_bytes(method.as_bytes()).unwrap(),
        fixture["request"]["path"].as_str().unwrap().to_owned(),
        answer(fixture),
    )
}

fn token_route() -> (Method, String, ScriptedAnswer) {
    route(&fixture("token-client-credentials.json"))
}

fn provider(server: &ScriptedServer, remote: RemoteOptions) -> AzureKeyVaultProvider {
    let url = server.url();
    let mut config = AzureKeyVaultProviderConfig::new(
        ProviderId::new(PROVIDER).unwrap(),
        url.clone(),
        AzureCredentialsConfig::ClientSecret {
            tenant_id: "contoso.onmicrosoft.com".to_owned(),
            client_id: "6731de76-14a6-49ae-97bc-6eba6914391e".to_owned(),
            client_secret: Some(SecretString::from("recorded".to_owned())),
            client_secret_file: None,
            authority_host: Some(url),
        },
    );
    config.remote = remote;
    config.verify_challenge_resource = false;
    AzureKeyVaultProvider::with_client(config, server.client()).unwrap()
}

fn fast() -> RemoteOptions {
    RemoteOptions {
        max_attempts: 2,
        initial_backoff_millis: 1,
        max_backoff_millis: 5,
        ..RemoteOptions::default()
    }
}

/// The handle the KMS would hold for the bundle's key: the tenant of its tags, the thumbprint
/// of its public key, `<name>/<version>` of its `kid`.
fn handle_of(bundle: &Value, usage: KeyUsage) -> (TenantId, KeyHandle) {
    let tenant: TenantId = bundle["tags"]["edk-tenant"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let key = &bundle["key"];
    let public: Jwk = serde_json::from_value(match key["kty"].as_str().unwrap() {
        "EC" => json!({ "kty": "EC", "crv": key["crv"], "x": key["x"], "y": key["y"] }),
        _ => json!({ "kty": "RSA", "n": key["n"], "e": key["e"] }),
    })
    .unwrap();
    let kid = key["kid"].as_str().unwrap();
    let mut parts = kid.rsplit('/');
    let version = parts.next().unwrap();
    let name = parts.next().unwrap();
    let handle = KeyHandle::new(
        ProviderId::new(PROVIDER).unwrap(),
        tenant,
        Kid::new(public.thumbprint()).unwrap(),
        usage,
        format!("{name}/{version}"),
    );
    (tenant, handle)
}

/// The `GET` route of a key bundle's own version.
fn get_route(bundle: &Value) -> (Method, String, ScriptedAnswer) {
    let kid = bundle["key"]["kid"].as_str().unwrap();
    let path = kid.split_once(".net").unwrap().1.to_owned();
    let answer = ScriptedAnswer {
        status: 200,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: bundle.to_string(),
    };
    (Method::GET, path, answer)
}

fn b64(value: &Value) -> Vec<u8> {
    b64url_decode(value.as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_signs_wraps_and_unwraps_with_recorded_answers() {
    let ec = fixture("get-key-ec-p256.json");
    let rsa = fixture("create-key-rsa-wrap.json");
    let sign = fixture("sign-es256.json");
    let wrap = fixture("wrapkey-rsa-oaep-256.json");
    let unwrap = fixture("unwrapkey-rsa-oaep-256.json");
    let server = ScriptedServer::routed_https(vec![
        token_route(),
        route(&ec),
        get_route(&rsa["body"]),
        route(&sign),
        route(&wrap),
        route(&unwrap),
    ])
    .await;
    let provider = provider(&server, fast());

    let (tenant, handle) = handle_of(&ec["body"], KeyUsage::Sign(Algorithm::Es256));
    let signer = provider.signer(&tenant, &handle).await.unwrap();
    // The recorded signature is over the message's digest and verifies with the recorded key.
    let signature = signer
        .sign(sign["message"].as_str().unwrap().as_bytes())
        .await
        .unwrap();
    assert_eq!(signature, b64(&sign["body"]["value"]));
    // The same handle for another message: the recorded signature does not verify, and the
    // provider refuses to hand it out.
    let err = signer.sign(b"another message").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal);

    let (tenant, handle) = handle_of(&rsa["body"], KeyUsage::Decrypt(KeyManagement::RsaOaep256));
    let wrapped = provider
        .wrap(&tenant, &handle, &b64(&wrap["request"]["body"]["value"]))
        .await
        .unwrap();
    assert_eq!(wrapped, b64(&wrap["body"]["value"]));
    let decrypter = provider.decrypter(&tenant, &handle).await.unwrap();
    let header: JweHeader =
        serde_json::from_value(json!({ "alg": "RSA-OAEP-256", "enc": "A256GCM" })).unwrap();
    let cek = decrypter
        .content_key(&header, &b64(&unwrap["request"]["body"]["value"]))
        .await
        .unwrap();
    assert_eq!(cek.as_slice(), b64(&unwrap["body"]["value"]));

    // A handle whose kid is not the recorded key's thumbprint finds nothing.
    let other = KeyHandle::new(
        ProviderId::new(PROVIDER).unwrap(),
        tenant,
        Kid::new("not-the-thumbprint").unwrap(),
        KeyUsage::Sign(Algorithm::Es256),
        handle.reference().to_owned(),
    );
    let err = provider.signer(&tenant, &other).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_refusals_are_classified() {
    let ec = fixture("get-key-ec-p256.json");
    let (tenant, handle) = handle_of(&ec["body"], KeyUsage::Sign(Algorithm::Es256));

    let not_found = ScriptedServer::routed_https(vec![
        token_route(),
        route(&fixture("error-key-not-found.json")),
    ])
    .await;
    let err = provider(&not_found, fast())
        .signer(&tenant, &handle)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    // A request without a token draws Key Vault's challenge; a 401 to the token the challenge
    // led to makes the provider start again once with fresh credentials, then give up with a
    // clear error.
    let unauthorized = ScriptedServer::routed_https(vec![
        token_route(),
        route(&fixture("error-unauthorized.json")),
    ])
    .await;
    let err = provider(&unauthorized, fast())
        .signer(&tenant, &handle)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "Key Vault refused the bearer token (401 Unauthorized)"
    );
    assert_eq!(
        unauthorized.requests(),
        6,
        "challenge, token, refused; then again with fresh credentials"
    );

    // The token endpoint refuses the client: unavailable, without Entra ID's description.
    let refused = ScriptedServer::routed_https(vec![
        route(&fixture("error-token-invalid-client.json")),
        route(&fixture("error-unauthorized.json")),
    ])
    .await;
    let err = provider(&refused, fast())
        .signer(&tenant, &handle)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(
        std::error::Error::source(&err).unwrap().to_string(),
        "Entra ID refused the credentials"
    );
    assert!(!format!("{err:?}").contains("AADSTS"));

    // 429 with `Retry-After: 1`: retried after the wait (capped by the largest backoff), then
    // unavailable when the attempts are spent.
    let mut throttled = fixture("error-throttled.json");
    throttled["request"]["method"] = json!("GET");
    throttled["request"]["path"] = fixture("get-key-ec-p256.json")["request"]["path"].clone();
    let server = ScriptedServer::routed_https(vec![token_route(), route(&throttled)]).await;
    let remote = RemoteOptions {
        max_attempts: 2,
        initial_backoff_millis: 1,
        max_backoff_millis: 300,
        ..RemoteOptions::default()
    };
    let started = std::time::Instant::now();
    let err = provider(&server, remote)
        .signer(&tenant, &handle)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(
        server.requests(),
        2,
        "two attempts (a client's first request carries no token: the challenge would name the scope)"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the Retry-After wait, capped at the largest backoff"
    );
}

/// Field names and JSON types, recursively; an array by its first item; `tags` free-form.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(name, value)| {
                    let shape = if name == "tags" {
                        json!("object")
                    } else {
                        shape(value)
                    };
                    (name.clone(), shape)
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("boolean"),
        Value::Null => json!("null"),
    }
}

struct Exchange {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn exchange(request: reqwest::RequestBuilder) -> Exchange {
    let response = request.send().await.unwrap();
    Exchange {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.json().await.unwrap(),
    }
}

fn same_shape(got: &Exchange, name: &str) {
    let recorded = fixture(name);
    assert_eq!(u64::from(got.status), recorded["status"], "{name}: status");
    assert_eq!(shape(&got.body), shape(&recorded["body"]), "{name}: body");
    if let Some(headers) = recorded["headers"].as_object() {
        for header in headers.keys() {
            assert!(
                got.headers.contains_key(header.as_str()),
                "{name}: {header}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_server_answers_in_the_recorded_shapes() {
    let server = AzureKeyVaultServer::start().await;
    server.add_client("edk-kms", "secret");
    let client = server.client();
    let base = server.url();
    let url = |path: &str| format!("{base}{path}?api-version=7.4");

    let refused = exchange(client.post(format!("{base}{TOKEN_PATH}")).form(&[
        ("grant_type", "client_credentials"),
        ("client_id", "edk-kms"),
        ("client_secret", "wrong"),
        ("scope", "https://vault.azure.net/.default"),
    ]))
    .await;
    same_shape(&refused, "error-token-invalid-client.json");
    let token = exchange(client.post(format!("{base}{TOKEN_PATH}")).form(&[
        ("grant_type", "client_credentials"),
        ("client_id", "edk-kms"),
        ("client_secret", "secret"),
        ("scope", "https://vault.azure.net/.default"),
    ]))
    .await;
    same_shape(&token, "token-client-credentials.json");
    let bearer = token.body["access_token"].as_str().unwrap().to_owned();

    let recorded = fixture("create-key-rsa-wrap.json");
    let created = exchange(
        client
            .post(url("/keys/wrapping/create"))
            .bearer_auth(&bearer)
            .json(&recorded["request"]["body"]),
    )
    .await;
    same_shape(&created, "create-key-rsa-wrap.json");
    let wrapping = created.body["key"]["kid"]
        .as_str()
        .unwrap()
        .split_once(&base)
        .unwrap()
        .1
        .to_owned();
    let ec = exchange(
        client
            .post(url("/keys/signing/create"))
            .bearer_auth(&bearer)
            .json(&json!({ "kty": "EC", "crv": "P-256", "key_ops": ["sign", "verify"] })),
    )
    .await;
    let signing = ec.body["key"]["kid"]
        .as_str()
        .unwrap()
        .split_once(&base)
        .unwrap()
        .1
        .to_owned();
    let read = exchange(client.get(url(&signing)).bearer_auth(&bearer)).await;
    same_shape(&read, "get-key-ec-p256.json");

    let sign = fixture("sign-es256.json");
    let signed = exchange(
        client
            .post(url(&format!("{signing}/sign")))
            .bearer_auth(&bearer)
            .json(&sign["request"]["body"]),
    )
    .await;
    same_shape(&signed, "sign-es256.json");
    let wrap = fixture("wrapkey-rsa-oaep-256.json");
    let wrapped = exchange(
        client
            .post(url(&format!("{wrapping}/wrapkey")))
            .bearer_auth(&bearer)
            .json(&wrap["request"]["body"]),
    )
    .await;
    same_shape(&wrapped, "wrapkey-rsa-oaep-256.json");
    let unwrapped = exchange(
        client
            .post(url(&format!("{wrapping}/unwrapkey")))
            .bearer_auth(&bearer)
            .json(&json!({ "alg": "RSA-OAEP-256", "value": wrapped.body["value"] })),
    )
    .await;
    same_shape(&unwrapped, "unwrapkey-rsa-oaep-256.json");
    assert_eq!(unwrapped.body["value"], wrap["request"]["body"]["value"]);

    // The wrapping key does not sign: its key_ops are wrapKey and unwrapKey.
    let forbidden = exchange(
        client
            .post(url(&format!("{wrapping}/sign")))
            .bearer_auth(&bearer)
            .json(&fixture("error-forbidden-operation.json")["request"]["body"]),
    )
    .await;
    same_shape(&forbidden, "error-forbidden-operation.json");
    let unauthorized = exchange(client.get(url(&signing))).await;
    same_shape(&unauthorized, "error-unauthorized.json");
    let no_version = exchange(client.get(format!("{base}{signing}")).bearer_auth(&bearer)).await;
    same_shape(&no_version, "error-missing-api-version.json");
    server.throttle(1);
    let throttled = exchange(client.get(url(&signing)).bearer_auth(&bearer)).await;
    same_shape(&throttled, "error-throttled.json");

    let name = signing.split('/').nth(2).unwrap().to_owned();
    let deleted = exchange(
        client
            .delete(url(&format!("/keys/{name}")))
            .bearer_auth(&bearer),
    )
    .await;
    same_shape(&deleted, "delete-key.json");
    let gone = exchange(client.get(url(&signing)).bearer_auth(&bearer)).await;
    same_shape(&gone, "error-key-not-found.json");
}
