use std::sync::Arc;

use serde_json::{Value, json};

use edk::bootstrap::{BOOTSTRAP_ISSUER, DataDir};
use edk::{Edk, EdkConfig};
use edk_core::FixedClock;
use edk_core::encoding::b64url_encode;
use edk_core::jose::{Algorithm, Header, JwkSet, SigningKey, jws};
use edk_server::TrustedIssuer;

use crate::support::Running;

const NOW: i64 = 1_700_000_000;
const OTHER_ISSUER: &str = "https://operator.test";

/// A running `edk` on a fixed clock, its local tenant not yet bound, that also trusts the
/// admin tokens `other_key` signs.
struct Harness {
    running: Running,
    other_key: SigningKey,
}

impl std::ops::Deref for Harness {
    type Target = Running;

    fn deref(&self) -> &Running {
        &self.running
    }
}

impl Harness {
    async fn start() -> Self {
        Self::start_on(None).await
    }

    async fn start_on(database: Option<edk_tenancy::DatabaseConfig>) -> Self {
        let mut config = EdkConfig {
            database,
            ..EdkConfig::default()
        };
        let other_key = SigningKey::generate(Algorithm::Es256).unwrap();
        config.auth.issuers.push(TrustedIssuer::with_jwks(
            OTHER_ISSUER,
            JwkSet {
                keys: vec![other_key.public_jwk()],
            },
        ));
        let clock = Arc::new(FixedClock::at_unix(NOW));
        Self {
            running: Running::start(&config, clock, false).await,
            other_key,
        }
    }

    async fn stop(self) {
        self.running.stop().await;
    }

    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.server.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }
}

#[tokio::test]
async fn bootstrap_token_lists_providers() {
    let h = Harness::start().await;
    let response = h.get("/api/kms/v1/providers", Some(&h.token)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "providers": [{ "id": "software", "hardware_backed": false }] })
    );
}

#[tokio::test]
async fn software_provider_capabilities_are_served() {
    let h = Harness::start().await;
    let response = h
        .get(
            "/api/kms/v1/providers/software/capabilities",
            Some(&h.token),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["signing_algorithms"]
            .as_array()
            .unwrap()
            .contains(&json!("ES256"))
    );
    assert_eq!(body["storage"], "in-handle");
    assert_eq!(body["exportability"], "exportable");
    assert_eq!(body["hardware_backed"], false);
}

#[tokio::test]
async fn unknown_provider_is_a_404_problem() {
    let h = Harness::start().await;
    let response = h
        .get("/api/kms/v1/providers/nope/capabilities", Some(&h.token))
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "https://edk.dev/problems/not-found");
}

#[tokio::test]
async fn malformed_provider_id_is_a_400_problem() {
    let h = Harness::start().await;
    let response = h
        .get(
            "/api/kms/v1/providers/bad%20id/capabilities",
            Some(&h.token),
        )
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}

#[tokio::test]
async fn admin_api_requires_a_token() {
    let h = Harness::start().await;
    let response = h.get("/api/kms/v1/providers", None).await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn admin_api_requires_the_kms_read_scope() {
    let h = Harness::start().await;
    let claims = json!({
        "iss": OTHER_ISSUER,
        "aud": "edk-admin",
        "tenant": "0190c7a4-8e2b-7cde-9f00-0123456789ab",
        "scope": "kms:write",
        "exp": NOW + 60,
    });
    let token = jws::sign(
        Header::new(Algorithm::Es256),
        claims.to_string().as_bytes(),
        &h.other_key,
    )
    .await
    .unwrap();
    let response = h.get("/api/kms/v1/providers", Some(&token)).await;
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn dot_segments_do_not_escape_the_anonymous_prefixes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let h = Harness::start().await;
    for path in [
        "/health/../api/kms/v1/providers",
        "/health/%2e%2e/api/kms/v1/providers",
        "/docs/../api/kms/v1/providers",
    ] {
        // Sent raw: an HTTP client would normalise the path first.
        let mut stream = tokio::net::TcpStream::connect(h.server.addr())
            .await
            .unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: edk\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status_line = response.lines().next().unwrap();
        assert_eq!(status_line, "HTTP/1.1 404 Not Found", "{path}: {response}");
        assert!(
            response.contains(r#""type":"https://edk.dev/problems/not-found""#),
            "{path}: {response}"
        );
    }
}

#[tokio::test]
async fn health_metrics_and_docs_are_anonymous() {
    let h = Harness::start().await;
    for path in [
        "/health/live",
        "/health/ready",
        "/metrics",
        "/openapi.json",
        "/docs",
    ] {
        let response = h.get(path, None).await;
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn data_dir_is_private_and_mints_the_token_once() {
    edk_server::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let clock = Arc::new(FixedClock::at_unix(NOW));
    let client = reqwest::Client::builder().build().unwrap();
    let config = EdkConfig::default();
    let first = DataDir::open(&path).unwrap();
    assert!(first.is_first_start());
    assert_eq!(first.bootstrap_issuer().issuer, BOOTSTRAP_ISSUER);
    let edk = Edk::start(&config, &first, clock.clone(), &client)
        .await
        .unwrap();
    assert!(edk.bootstrap_token().is_some());
    let token = edk.bootstrap_token().unwrap().to_owned();
    assert!(
        !format!("{edk:?}").contains(&token),
        "Debug prints the bootstrap token"
    );
    let tenant = edk.default_tenant();
    edk.shutdown().await;

    let again = DataDir::open(&path).unwrap();
    assert!(!again.is_first_start());
    let edk = Edk::start(&config, &again, clock, &client).await.unwrap();
    assert!(edk.bootstrap_token().is_none());
    assert_eq!(edk.default_tenant(), tenant, "the default tenant is kept");
    edk.shutdown().await;
    assert_eq!(
        first.bootstrap_issuer().jwks,
        again.bootstrap_issuer().jwks,
        "the admin key is kept"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in ["kek", "admin-key.jwk"] {
            let mode = std::fs::metadata(path.join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        let kek = std::fs::read_to_string(path.join("kek")).unwrap();
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(kek.trim())
            .unwrap();
        assert_eq!(bytes.len(), 32);
    }
}

#[tokio::test]
async fn bootstrap_token_creates_keys_and_signs_with_them() {
    let h = Harness::start().await;
    let created = h
        .client
        .post(h.server.url("/api/kms/v1/keys"))
        .bearer_auth(&h.token)
        .json(
            &json!({ "alias": "issuer.credential-signing", "usage": "sign", "algorithm": "ES256" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let signed = h
        .client
        .post(h.server.url("/api/kms/v1/signatures/raw/create"))
        .bearer_auth(&h.token)
        .json(&json!({ "key": "issuer.credential-signing", "message": b64url_encode(b"hi") }))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 200);
    let body: Value = signed.json().await.unwrap();
    assert_eq!(body["alg"], "ES256");
    let listed: Value = h
        .get("/api/kms/v1/keys", Some(&h.token))
        .await
        .json()
        .await
        .unwrap();
    // The servers' own keys (the audit checkpoint key of the housekeeping jobs, say) may have
    // been made meanwhile: count the admin's.
    let aliases: Vec<&str> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|key| key["alias"].as_str())
        .filter(|alias| {
            !["audit.", "as.", "did."]
                .iter()
                .any(|own| alias.starts_with(own))
        })
        .collect();
    assert_eq!(aliases, ["issuer.credential-signing"]);
    h.stop().await;
}

/// The bootstrap token registers an OAuth client; the default tenant's authorization server,
/// bound to `localhost` on the listening port, issues it a JWT access token that verifies
/// with the published JWKS; another host finds no authorization server.
#[tokio::test]
async fn default_tenants_authorization_server_issues_tokens() {
    let h = Harness::start().await;
    let port = h.server.addr().port();
    h.edk.bind_default_tenant(port).await.unwrap();
    h.edk.bind_default_tenant(port).await.unwrap();
    let created = h
        .client
        .post(h.server.url("/api/oauth2/v1/clients"))
        .bearer_auth(&h.token)
        .json(&json!({
            "client_id": "backend",
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["client_credentials"],
            "scopes": ["kms:use"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let secret = created["client_secret"].as_str().unwrap();

    let local = format!("http://localhost:{port}");
    let metadata: Value = h
        .client
        .get(format!("{local}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["issuer"],
        format!("http://localhost:{port}"),
        "a loopback binding advertises http, so local wallets can use edk as it is"
    );
    assert_eq!(
        metadata["token_endpoint"],
        format!("http://localhost:{port}/token")
    );
    let token = h
        .client
        .post(format!("{local}/token"))
        .basic_auth("backend", Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "kms:use")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);
    let token: Value = token.json().await.unwrap();
    let access_token = token["access_token"].as_str().unwrap();
    let jwks: JwkSet = h
        .client
        .get(format!("{local}/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let verified = edk_core::jose::Jws::parse(access_token, &edk_core::Limits::default())
        .unwrap()
        .verify_with(
            &edk_core::jose::JwksResolver::new(&jwks),
            &edk_core::jose::VerifyPolicy::default().with_typ("at+jwt"),
            None,
        )
        .await;
    assert!(verified.is_ok(), "{verified:?}");

    let elsewhere = h
        .client
        .post(h.server.url("/token"))
        .basic_auth("backend", Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 404);
    h.stop().await;
}

/// The bootstrap token publishes a did:web and a did:webvh for the default tenant; the files
/// are served on `localhost:<port>` and the Universal Resolver resolves both without a token.
#[tokio::test]
async fn default_tenant_publishes_and_resolves_dids() {
    let h = Harness::start().await;
    let port = h.server.addr().port();
    h.edk.bind_default_tenant(port).await.unwrap();
    let mut dids = Vec::new();
    for method in ["web", "webvh"] {
        let created = h
            .client
            .post(h.server.url("/api/did/v1/identifiers"))
            .bearer_auth(&h.token)
            .json(&json!({ "method": method, "path": format!("issuer-{method}") }))
            .send()
            .await
            .unwrap();
        let status = created.status();
        let created: Value = created.json().await.unwrap();
        assert_eq!(status, 201, "{method}: {created}");
        dids.push(created["did"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        dids[0],
        format!("did:web:edk.localhost%3A{port}:issuer-web")
    );
    assert!(dids[1].starts_with("did:webvh:"), "{}", dids[1]);

    let local = format!("http://localhost:{port}");
    let did_host = format!("edk.localhost:{port}");
    let document = h
        .client
        .get(format!("{local}/issuer-web/did.json"))
        .header("host", &did_host)
        .send()
        .await
        .unwrap();
    assert_eq!(document.status(), 200);
    assert_eq!(document.headers()["content-type"], "application/did+json");
    let document: Value = document.json().await.unwrap();
    assert_eq!(document["id"], dids[0]);
    let log = h
        .client
        .get(format!("{local}/issuer-webvh/did.jsonl"))
        .header("host", &did_host)
        .send()
        .await
        .unwrap();
    assert_eq!(log.status(), 200);
    assert_eq!(log.text().await.unwrap().lines().count(), 1);

    for did in &dids {
        let resolved = h
            .client
            .get(h.server.url(&format!("/1.0/identifiers/{did}")))
            .header("accept", "application/did-resolution")
            .send()
            .await
            .unwrap();
        assert_eq!(resolved.status(), 200, "{did}");
        let resolved: Value = resolved.json().await.unwrap();
        assert_eq!(resolved["didDocument"]["id"], did.as_str());
    }
    let unknown = h
        .get(
            &format!("/1.0/identifiers/did:web:edk.localhost%3A{port}:nobody"),
            None,
        )
        .await;
    assert_eq!(unknown.status(), 404);
    // Not published on the authorization server's host.
    let elsewhere = h
        .client
        .get(format!("{local}/issuer-web/did.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 404);
    // The registrar needs a token.
    let anonymous = h
        .client
        .post(h.server.url("/1.0/create?method=key"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    h.stop().await;
}

/// `database.backend: postgres` puts the platform and the tenants on PostgreSQL: the default
/// tenant's keys and clients land in its schema there, and the data directory holds no
/// database files.
#[tokio::test]
async fn edk_runs_on_postgres_by_configuration() {
    let db = edk_testkit::TestDb::new().await;
    let database: edk_tenancy::DatabaseConfig = serde_json::from_value(json!({
        "backend": "postgres", "platform_url": db.url(),
    }))
    .unwrap();
    let h = Harness::start_on(Some(database)).await;
    let created = h
        .client
        .post(h.server.url("/api/kms/v1/keys"))
        .bearer_auth(&h.token)
        .json(
            &json!({ "alias": "issuer.credential-signing", "usage": "sign", "algorithm": "ES256" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let ready = h.get("/health/ready", None).await;
    assert_eq!(ready.status(), 200);
    let report: Value = ready.json().await.unwrap();
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|check| check["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["database", "kms"]);
    let schemas: Vec<(String, i64)> = sqlx::query_as(
        "SELECT table_schema::text, COUNT(*) FROM information_schema.tables \
         WHERE table_schema LIKE 'tenant_%' GROUP BY table_schema ORDER BY table_schema",
    )
    .fetch_all(&db.pool())
    .await
    .unwrap();
    let mut expected = [h.edk.default_tenant(), h.edk.platform_realm()]
        .map(|tenant| format!("tenant_{}", tenant.as_uuid().simple()));
    expected.sort();
    assert_eq!(
        schemas
            .iter()
            .map(|(schema, _)| schema.clone())
            .collect::<Vec<_>>(),
        expected,
        "the default tenant and the platform's operator realm"
    );
    assert!(schemas.iter().all(|(_, tables)| *tables > 0));
    assert!(!h.data().join("db").exists());
    h.stop().await;
    db.close().await;
}

/// `edk` runs the housekeeping scheduler: every job of the tenancy, the in-process KMS, the
/// authorization server and the credential issuer runs (its runs are counted in `/metrics`).
#[tokio::test]
async fn housekeeping_jobs_run_and_are_counted() {
    let h = Harness::start().await;
    let mut metrics = String::new();
    // Platform jobs run once; per-tenant jobs once for each of the two tenants (the default
    // tenant and the platform's operator realm).
    let wanted = [
        ("tenancy.purge_deleted", 1),
        ("tenancy.purge_event_payloads", 1),
        ("kms.rotate_due", 2),
        ("kms.audit_checkpoint", 2),
        ("oauth.purge_expired", 2),
        ("oid4vci.purge_expired", 2),
    ];
    let ran = |metrics: &str, (job, runs): (&str, u32)| {
        metrics.contains(&format!("scheduler_job_runs_total{{job=\"{job}\"}} {runs}"))
    };
    for _ in 0..100 {
        metrics = h.get("/metrics", None).await.text().await.unwrap();
        if wanted.iter().all(|job| ran(&metrics, *job)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for job in wanted {
        assert!(
            ran(&metrics, job),
            "{job:?} did not run as often: {metrics}"
        );
    }
    h.stop().await;
}

/// The default tenant's credential issuer shares `localhost` with its authorization server:
/// the bootstrap token stores a configuration and makes an offer, the wallet redeems the
/// pre-authorized code at `/token`, fetches a nonce and gets a key-bound SD-JWT VC.
#[tokio::test]
async fn default_tenants_credential_issuer_issues_with_its_authorization_server() {
    let h = Harness::start().await;
    let port = h.server.addr().port();
    h.edk.bind_default_tenant(port).await.unwrap();
    let local = format!("http://localhost:{port}");
    let stored = h
        .client
        .put(h.server.url("/api/oid4vci/v1/configurations/identity"))
        .bearer_auth(&h.token)
        .json(&json!({ "configuration": {
            "format": "dc+sd-jwt",
            "vct": "https://credentials.example.com/identity",
            "cryptographic_binding_methods_supported": ["jwk"],
            "proof_types_supported": { "jwt": { "proof_signing_alg_values_supported": ["ES256"] } },
        } }))
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 200);
    let metadata: Value = h
        .client
        .get(format!("{local}/.well-known/openid-credential-issuer"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["credential_issuer"], local.as_str());
    assert_eq!(metadata["authorization_servers"], json!([local]));
    assert_eq!(
        metadata["credential_endpoint"],
        format!("{local}/credential")
    );

    let offer: Value = h
        .client
        .post(h.server.url("/api/oid4vci/v1/offers"))
        .bearer_auth(&h.token)
        .json(&json!({
            "credential_configuration_ids": ["identity"],
            "claims": { "identity": { "given_name": "Erika" } },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let grant = "urn:ietf:params:oauth:grant-type:pre-authorized_code";
    let code = offer["credential_offer"]["grants"][grant]["pre-authorized_code"]
        .as_str()
        .unwrap();
    let token: Value = h
        .client
        .post(format!("{local}/token"))
        .form(&[("grant_type", grant), ("pre-authorized_code", code)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access_token = token["access_token"].as_str().unwrap();
    let nonce: Value = h
        .client
        .post(format!("{local}/nonce"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    // A wallet's proof names its key by `jwk` alone (no `kid`).
    let header = Header::new(Algorithm::Es256)
        .with_typ("openid4vci-proof+jwt")
        .with_jwk(&holder.public_jwk());
    let signing_input = format!(
        "{}.{}",
        b64url_encode(serde_json::to_vec(&header).unwrap()),
        b64url_encode(json!({ "aud": local, "iat": NOW, "nonce": nonce["c_nonce"] }).to_string())
    );
    let signature = holder.sign_bytes(signing_input.as_bytes()).unwrap();
    let proof = format!("{signing_input}.{}", b64url_encode(signature));
    let response = h
        .client
        .post(format!("{local}/credential"))
        .bearer_auth(access_token)
        .json(&json!({
            "credential_identifier": token["authorization_details"][0]["credential_identifiers"][0],
            "proofs": { "jwt": [proof] },
        }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let credential = body["credentials"][0]["credential"].as_str().unwrap();
    let jwks: JwkSet = h
        .get(
            "/api/kms/v1/keys/issuer.credential-signing/jwks",
            Some(&h.token),
        )
        .await
        .json()
        .await
        .unwrap();
    let claims = edk_core::sd_jwt::SdJwt::parse(credential, &edk_core::Limits::DEFAULT)
        .unwrap()
        .verify_vc(
            &edk_core::jose::JwksResolver::new(&jwks),
            &edk_core::sd_jwt_vc::VcVerifyOptions::default(),
            NOW,
        )
        .await
        .unwrap()
        .into_sd_jwt()
        .into_claims();
    assert_eq!(claims["iss"], local.as_str());
    assert_eq!(claims["given_name"], "Erika");
    h.stop().await;
}

/// The default tenant's verifier shares `localhost` with its authorization server and issuer:
/// the bootstrap token makes a request by value, a response for no request is refused in
/// OpenID4VP's format, and a wallet's error answer fails the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_tenants_verifier_makes_requests_and_answers_wallets() {
    let h = Harness::start().await;
    let port = h.server.addr().port();
    h.edk.bind_default_tenant(port).await.unwrap();
    let local = format!("http://localhost:{port}");
    let made: Value = h
        .client
        .post(h.server.url("/api/oid4vp/v1/requests"))
        .bearer_auth(&h.token)
        .json(&json!({
            "client_id_prefix": "redirect_uri",
            "dcql_query": { "credentials": [{
                "id": "identity", "format": "dc+sd-jwt",
                "meta": { "vct_values": ["https://credentials.example.com/identity"] },
            }] },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uri = made["authorization_request_uri"].as_str().unwrap();
    let pairs: std::collections::BTreeMap<String, String> = reqwest::Url::parse(uri)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(pairs["client_id"], format!("redirect_uri:{local}/response"));
    let session = made["session_id"].as_str().unwrap();

    // The response_uri is the verifier's, beside the authorization server and the issuer.
    let refused = h
        .client
        .post(format!("{local}/response"))
        .form(&[
            ("vp_token", r#"{"identity":["x"]}"#),
            ("state", "not-a-request"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"], "invalid_request");
    let answered = h
        .client
        .post(format!("{local}/response"))
        .form(&[
            ("error", "access_denied"),
            ("state", pairs["state"].as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 200);
    let status: Value = h
        .client
        .get(h.server.url(&format!("/api/oid4vp/v1/sessions/{session}")))
        .bearer_auth(&h.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(status["error"]["error"], "access_denied", "{status}");
    h.stop().await;
}
