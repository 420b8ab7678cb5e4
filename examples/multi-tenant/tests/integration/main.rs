//! Runs the compiled `multi-tenant` binary on a PostgreSQL database created for the test
//! (dropped at the end) with tenants `acme` and `globex` on `acme.localhost` and
//! `globex.localhost`, and checks over HTTP that nothing crosses between them: their
//! metadata, keys, offers, sessions, codes, nonces and access tokens each stay with their
//! tenant.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use edk_core::encoding::{b64url_decode, b64url_encode};
use edk_core::jose::{Algorithm, Header, JwkSet, JwksResolver, SigningKey, jws};
use edk_core::sd_jwt::SdJwt;
use edk_core::sd_jwt_vc::VcVerifyOptions;
use edk_core::{Clock as _, Limits, SystemClock};
use edk_testkit::TestDb;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

const ADMIN_ISSUER: &str = "https://operators.example";
const PRE_AUTHORIZED: &str = "urn:ietf:params:oauth:grant-type:pre-authorized_code";

/// A tenant as the example announced it.
struct Tenant {
    id: String,
    /// `https://<host>:<port>`: its credential issuer and authorization server identifier.
    identifier: String,
    /// `http://<host>:<port>`: where the test reaches it, without the TLS termination that
    /// would be in front of the application.
    base: String,
}

/// The running example with its two tenants; killed when dropped.
struct App {
    child: Child,
    http: reqwest::Client,
    admin_key: SigningKey,
    acme: Tenant,
    globex: Tenant,
    _dir: tempfile::TempDir,
}

impl App {
    async fn start(db: &TestDb) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let admin_key = SigningKey::generate(Algorithm::Es256).unwrap();
        Self::start_in(db, dir, admin_key).await
    }

    /// Stops the example and starts it again on the same database and key encryption key.
    async fn restart(self, db: &TestDb) -> Self {
        let Self {
            mut child,
            admin_key,
            _dir: dir,
            ..
        } = self;
        child.kill().await.unwrap();
        child.wait().await.unwrap();
        Self::start_in(db, dir, admin_key).await
    }

    async fn start_in(db: &TestDb, dir: tempfile::TempDir, admin_key: SigningKey) -> Self {
        edk_server::install_crypto_provider();
        let jwks = dir.path().join("operators.jwks.json");
        std::fs::write(
            &jwks,
            serde_json::to_vec(&JwkSet {
                keys: vec![admin_key.public_jwk()],
            })
            .unwrap(),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_multi-tenant"))
            .args(["--listen", "127.0.0.1:0", "--admin-issuer", ADMIN_ISSUER])
            .arg("--admin-jwks")
            .arg(&jwks)
            .arg("--kek-file")
            .arg(dir.path().join("kek"))
            .env("DATABASE_URL", db.url())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut tenants = Vec::new();
        let address = loop {
            let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
                .await
                .expect("the example printed nothing for 60 s")
                .unwrap()
                .expect("the example exited before listening");
            if let Some(address) = line.strip_prefix("listening on http://") {
                break address.parse::<SocketAddr>().unwrap();
            }
            let words: Vec<&str> = line.split(' ').collect();
            assert_eq!((words[0], words[3]), ("tenant", "at"), "{line}");
            tenants.push((
                words[1].to_owned(),
                words[2].to_owned(),
                words[4].to_owned(),
            ));
        };
        assert_eq!(
            tenants.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(),
            ["acme", "globex"]
        );
        let port = address.port();
        for (slug, _, base) in &tenants {
            assert_eq!(base, &format!("https://{slug}.localhost:{port}"));
        }
        // Both hosts are this process on loopback.
        let http = reqwest::Client::builder()
            .no_proxy()
            .resolve("acme.localhost", address)
            .resolve("globex.localhost", address)
            .build()
            .unwrap();
        let mut tenants = tenants.into_iter().map(|(_, id, identifier)| Tenant {
            id,
            base: identifier.replace("https://", "http://"),
            identifier,
        });
        Self {
            acme: tenants.next().unwrap(),
            globex: tenants.next().unwrap(),
            child,
            http,
            admin_key,
            _dir: dir,
        }
    }

    /// An operator's admin token for `tenant`.
    async fn admin_token(&self, tenant: &Tenant) -> String {
        let now = SystemClock.unix_seconds();
        let claims = json!({
            "iss": ADMIN_ISSUER, "aud": "edk-admin", "sub": "operator",
            "tenant": tenant.id, "scope": "oid4vci:read oid4vci:write",
            "iat": now, "exp": now + 600,
        });
        jws::sign(
            Header::new(Algorithm::Es256).with_typ("JWT"),
            claims.to_string().as_bytes(),
            &self.admin_key,
        )
        .await
        .unwrap()
    }

    /// `method` on the issuer admin API at `on`'s host with `as_tenant`'s admin token.
    async fn admin(
        &self,
        on: &Tenant,
        as_tenant: &Tenant,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/api/oid4vci/v1{path}", on.base))
            .bearer_auth(self.admin_token(as_tenant).await);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    /// An offer of `tenant`'s membership card (with a transaction code) made by its operator.
    async fn offer(&self, tenant: &Tenant, by_reference: bool) -> Value {
        let (status, body) = self
            .admin(
                tenant,
                tenant,
                reqwest::Method::POST,
                "/offers",
                Some(json!({
                    "credential_configuration_ids": ["membership"],
                    "claims": { "membership": { "member_name": "Erika Mustermann" } },
                    "tx_code": { "digits": 6 },
                    "by_reference": by_reference,
                })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// `tenant`'s SD-JWT VC issuer metadata: the public keys of its credential signing key.
    async fn issuer_keys(&self, tenant: &Tenant) -> JwkSet {
        let (status, metadata) = self
            .get_json(&format!("{}/.well-known/jwt-vc-issuer", tenant.base))
            .await;
        assert_eq!(status, 200, "{metadata}");
        assert_eq!(metadata["issuer"], tenant.identifier.as_str());
        let keys: JwkSet = serde_json::from_value(metadata["jwks"].clone()).unwrap();
        assert_eq!(keys.keys.len(), 1, "{metadata}");
        keys
    }

    async fn get_json(&self, url: &str) -> (u16, Value) {
        let response = self.http.get(url).send().await.unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    /// Redeems `offer`'s pre-authorized code at `at`'s token endpoint.
    async fn redeem(&self, at: &Tenant, offer: &Value) -> (u16, Value) {
        let code = offer["credential_offer"]["grants"][PRE_AUTHORIZED]["pre-authorized_code"]
            .as_str()
            .unwrap();
        let response = self
            .http
            .post(format!("{}/token", at.base))
            .form(&[
                ("grant_type", PRE_AUTHORIZED),
                ("pre-authorized_code", code),
                ("tx_code", offer["tx_code"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// A fresh `c_nonce` of `tenant`.
    async fn nonce(&self, tenant: &Tenant) -> String {
        let response = self
            .http
            .post(format!("{}/nonce", tenant.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["c_nonce"].as_str().unwrap().to_owned()
    }

    /// A credential request at `at` with `token` and a key proof for `aud` with `nonce`.
    async fn credential(&self, at: &Tenant, token: &Value, aud: &str, nonce: &str) -> (u16, Value) {
        let holder = SigningKey::generate(Algorithm::Es256).unwrap();
        let header = Header::new(Algorithm::Es256)
            .with_typ("openid4vci-proof+jwt")
            .with_jwk(&holder.public_jwk());
        let signing_input = format!(
            "{}.{}",
            b64url_encode(serde_json::to_vec(&header).unwrap()),
            b64url_encode(
                json!({ "aud": aud, "iat": SystemClock.unix_seconds(), "nonce": nonce })
                    .to_string()
            )
        );
        let signature = holder.sign_bytes(signing_input.as_bytes()).unwrap();
        let proof = format!("{signing_input}.{}", b64url_encode(signature));
        let response = self
            .http
            .post(format!("{}/credential", at.base))
            .bearer_auth(token["access_token"].as_str().unwrap())
            .json(&json!({
                "credential_identifier": token["authorization_details"][0]["credential_identifiers"][0],
                "proofs": { "jwt": [proof] },
            }))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }
}

/// The SD-JWT VC's claims when it verifies with `keys`.
async fn verify(credential: &str, keys: &JwkSet) -> Result<Value, Box<dyn std::error::Error>> {
    let claims = SdJwt::parse(credential, &Limits::DEFAULT)?
        .verify_vc(
            &JwksResolver::new(keys),
            &VcVerifyOptions::default(),
            SystemClock.unix_seconds(),
        )
        .await?
        .into_sd_jwt()
        .into_claims();
    Ok(Value::Object(claims))
}

/// The JOSE header of a JWS (an SD-JWT's issuer-signed part).
fn jws_header(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&b64url_decode(header).unwrap()).unwrap()
}

/// The payload of a JWS.
fn jws_payload(token: &str) -> Value {
    let payload = token.split(['.', '~']).nth(1).unwrap();
    serde_json::from_slice(&b64url_decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn two_tenants_on_two_hosts_share_nothing() {
    let db = TestDb::new().await;
    let app = App::start(&db).await;
    let (acme, globex) = (&app.acme, &app.globex);
    assert_ne!(acme.id, globex.id);

    // Each host serves its own tenant's issuer, naming its own authorization server.
    for tenant in [acme, globex] {
        let (status, metadata) = app
            .get_json(&format!(
                "{}/.well-known/openid-credential-issuer",
                tenant.base
            ))
            .await;
        assert_eq!(status, 200, "{metadata}");
        assert_eq!(metadata["credential_issuer"], tenant.identifier.as_str());
        assert_eq!(
            metadata["authorization_servers"],
            json!([tenant.identifier])
        );
        let host = tenant
            .base
            .split("//")
            .nth(1)
            .unwrap()
            .split(':')
            .next()
            .unwrap();
        assert_eq!(
            metadata["credential_configurations_supported"]["membership"]["vct"],
            format!("https://{host}/membership")
        );
        let (status, as_metadata) = app
            .get_json(&format!(
                "{}/.well-known/oauth-authorization-server",
                tenant.base
            ))
            .await;
        assert_eq!(status, 200, "{as_metadata}");
        assert_eq!(as_metadata["issuer"], tenant.identifier.as_str());
    }
    // A host nobody is bound to gets nobody's metadata.
    let (status, _) = app
        .get_json(&acme.base.replace("acme.localhost", "127.0.0.1"))
        .await;
    assert_eq!(status, 404);

    // Their authorization servers sign with different keys.
    let (_, acme_jwks) = app.get_json(&format!("{}/jwks.json", acme.base)).await;
    let (_, globex_jwks) = app.get_json(&format!("{}/jwks.json", globex.base)).await;
    let kids = |jwks: &Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(!kids(&acme_jwks).is_empty());
    assert!(!kids(&globex_jwks).is_empty());
    assert!(
        kids(&acme_jwks)
            .iter()
            .all(|kid| !kids(&globex_jwks).contains(kid)),
        "{acme_jwks} {globex_jwks}"
    );

    // Acme's operator makes an offer: Globex's operator cannot see its session, on either
    // host (the admin token says which tenant it acts for).
    let offer = app.offer(acme, false).await;
    let session = format!("/sessions/{}", offer["session_id"].as_str().unwrap());
    let (status, body) = app
        .admin(acme, acme, reqwest::Method::GET, &session, None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "offered");
    for host in [acme, globex] {
        let (status, body) = app
            .admin(host, globex, reqwest::Method::GET, &session, None)
            .await;
        assert_eq!(status, 404, "{body}");
        let (status, _) = app
            .admin(
                host,
                globex,
                reqwest::Method::POST,
                &format!("{session}/cancel"),
                None,
            )
            .await;
        assert_eq!(status, 404);
    }

    // Acme's pre-authorized code is unknown to Globex's authorization server.
    let (status, body) = app.redeem(globex, &offer).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let (status, token) = app.redeem(acme, &offer).await;
    assert_eq!(status, 200, "{token}");

    // Acme's access token is refused by Globex's credential endpoint, and Acme's nonce by
    // Globex; Acme's endpoint issues with both.
    let acme_nonce = app.nonce(acme).await;
    let (status, body) = app
        .credential(globex, &token, &globex.identifier, &app.nonce(globex).await)
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_token");
    let (status, body) = app
        .credential(acme, &token, &acme.identifier, &acme_nonce)
        .await;
    assert_eq!(status, 200, "{body}");
    let acme_credential = body["credentials"][0]["credential"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = app
        .admin(acme, acme, reqwest::Method::GET, &session, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "credential_issued");

    // Globex issues its own card, signed by another key, naming itself.
    let globex_offer = app.offer(globex, false).await;
    let (status, globex_token) = app.redeem(globex, &globex_offer).await;
    assert_eq!(status, 200, "{globex_token}");
    // A nonce of Acme's is not one of Globex's.
    let (status, body) = app
        .credential(globex, &globex_token, &globex.identifier, &acme_nonce)
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_nonce");
    let (status, body) = app
        .credential(
            globex,
            &globex_token,
            &globex.identifier,
            &app.nonce(globex).await,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let globex_credential = body["credentials"][0]["credential"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        jws_payload(&acme_credential)["iss"],
        acme.identifier.as_str()
    );
    assert_eq!(
        jws_payload(&globex_credential)["iss"],
        globex.identifier.as_str()
    );
    assert_ne!(
        jws_header(&acme_credential)["kid"],
        jws_header(&globex_credential)["kid"]
    );

    let (status, body) = app
        .get_json(&format!(
            "{}/.well-known/jwt-vc-issuer",
            acme.base.replace("acme.localhost", "127.0.0.1")
        ))
        .await;
    assert_eq!((status, body), (404, json!({ "error": "not_found" })));

    // Each tenant publishes its own credential keys: its credential verifies with them and
    // not with the other tenant's.
    let acme_keys = app.issuer_keys(acme).await;
    let globex_keys = app.issuer_keys(globex).await;
    assert_eq!(
        verify(&acme_credential, &acme_keys).await.unwrap()["iss"],
        acme.identifier.as_str()
    );
    assert_eq!(
        verify(&globex_credential, &globex_keys).await.unwrap()["iss"],
        globex.identifier.as_str()
    );
    assert!(verify(&acme_credential, &globex_keys).await.is_err());
    assert!(verify(&globex_credential, &acme_keys).await.is_err());

    // An offer by reference is served by its own tenant's host only.
    let offer = app.offer(acme, true).await;
    let uri = url::Url::parse(offer["credential_offer_uri"].as_str().unwrap()).unwrap();
    let (_, reference) = uri.query_pairs().next().unwrap();
    assert!(
        reference.starts_with(&format!("{}/offers/", acme.identifier)),
        "{reference}"
    );
    let reference = reference.replace("https://", "http://");
    let (status, _) = app
        .get_json(&reference.replace("acme.localhost", "globex.localhost"))
        .await;
    assert_eq!(status, 404);
    let (status, served) = app.get_json(&reference).await;
    assert_eq!(status, 200);
    assert_eq!(served["credential_issuer"], acme.identifier.as_str());

    drop(app);
    db.close().await;
}

#[tokio::test]
async fn a_restart_finds_the_same_tenants_and_keys() {
    let db = TestDb::new().await;
    let app = App::start(&db).await;
    let ids = (app.acme.id.clone(), app.globex.id.clone());
    let (_, jwks) = app.get_json(&format!("{}/jwks.json", app.acme.base)).await;

    // On another port: the bindings follow it.
    let app = app.restart(&db).await;
    assert_eq!((app.acme.id.clone(), app.globex.id.clone()), ids);
    let (_, after) = app.get_json(&format!("{}/jwks.json", app.acme.base)).await;
    assert_eq!(after, jwks);
    let offer = app.offer(&app.acme, false).await;
    let (status, token) = app.redeem(&app.acme, &offer).await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(
        jws_header(token["access_token"].as_str().unwrap())["kid"],
        jwks["keys"][0]["kid"]
    );
    drop(app);
    db.close().await;
}
