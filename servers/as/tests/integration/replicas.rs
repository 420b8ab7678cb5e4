//! Two server instances on one PostgreSQL: every flow works with each step on the other one.

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::support::{Deployment, Tenant, http};

struct Alternating<'a> {
    deployment: &'a Deployment,
    tenant: &'a Tenant,
    next: std::cell::Cell<usize>,
}

impl Alternating<'_> {
    /// The base URL of the next replica, alternating.
    fn url(&self, path: &str) -> String {
        let index = self.next.get();
        self.next.set(index + 1);
        let replica = &self.deployment.replicas[index % self.deployment.replicas.len()];
        let prefix = self
            .tenant
            .base
            .rsplit_once('/')
            .map(|(_, slug)| slug)
            .unwrap();
        format!("{}/{prefix}{path}", replica.http.url(""))
    }

    async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> (u16, Value) {
        let mut request = http()
            .post(self.url(path))
            .header("host", &self.tenant.host)
            .form(form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get_location(&self, path: &str, query: &[(&str, &str)]) -> String {
        let response = http()
            .get(self.url(path))
            .header("host", &self.tenant.host)
            .query(query)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 303);
        response.headers()["location"].to_str().unwrap().to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flow_works_with_each_step_on_the_other_instance() {
    let deployment = Deployment::postgres(2).await;
    let tenant = deployment.tenant("acme").await;
    let token = deployment
        .admin_token(tenant.id, "oauth2:read oauth2:write")
        .await;
    let calls = Alternating {
        deployment: &deployment,
        tenant: &tenant,
        next: std::cell::Cell::new(0),
    };

    // Admin on one instance, use on the other.
    let created: Value = http()
        .post(format!(
            "{}/api/oauth2/v1/clients",
            deployment.replicas[0].http.url("")
        ))
        .bearer_auth(&token)
        .json(&json!({
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
            "redirect_uris": ["https://client.example/cb"], "scopes": ["read"],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["client"]["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let auth = Some((id.as_str(), secret.as_str()));

    for _ in 0..2 {
        let (status, body) = calls
            .post("/token", &[("grant_type", "client_credentials")], auth)
            .await;
        assert_eq!(status, 200, "{body}");
    }

    // PAR on one, authorize on the other, token on the first, refresh twice, alternating.
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let (status, par) = calls
        .post(
            "/par",
            &[
                ("response_type", "code"),
                ("redirect_uri", "https://client.example/cb"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("scope", "read"),
            ],
            auth,
        )
        .await;
    assert_eq!(status, 201, "{par}");
    let location = calls
        .get_location(
            "/authorize",
            &[
                ("client_id", &id),
                ("request_uri", par["request_uri"].as_str().unwrap()),
            ],
        )
        .await;
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let (status, tokens) = calls
        .post(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "https://client.example/cb"),
                ("code_verifier", &verifier),
            ],
            auth,
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    let mut refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let mut access = String::new();
    for _ in 0..2 {
        let (status, body) = calls
            .post(
                "/token",
                &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                auth,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        refresh = body["refresh_token"].as_str().unwrap().to_owned();
        access = body["access_token"].as_str().unwrap().to_owned();
    }
    let (_, active) = calls.post("/introspect", &[("token", &access)], auth).await;
    assert_eq!(active["active"], true);
    let (status, _) = calls.post("/revoke", &[("token", &access)], auth).await;
    assert_eq!(status, 200);
    let (_, inactive) = calls.post("/introspect", &[("token", &access)], auth).await;
    assert_eq!(inactive, json!({"active": false}));
    // The code works once across instances; its replay revokes the refresh token family.
    let (status, _) = calls
        .post(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "https://client.example/cb"),
                ("code_verifier", &verifier),
            ],
            auth,
        )
        .await;
    assert_eq!(status, 400);
    let (status, body) = calls
        .post(
            "/token",
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
            auth,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // A pre-authorized code minted on one instance, its tx_code tried wrongly on the other,
    // redeemed on the first.
    let minted: Value = http()
        .post(format!(
            "{}/api/oauth2/v1/pre-authorized-codes",
            deployment.replicas[1].http.url("")
        ))
        .bearer_auth(&token)
        .json(&json!({"subject": "holder", "tx_code_digits": 6}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = minted["pre-authorized_code"].as_str().unwrap();
    let tx = minted["tx_code"].as_str().unwrap();
    let wrong = if tx == "000000" { "111111" } else { "000000" };
    let grant = "urn:ietf:params:oauth:grant-type:pre-authorized_code";
    let (status, body) = calls
        .post(
            "/token",
            &[
                ("grant_type", grant),
                ("pre-authorized_code", code),
                ("tx_code", wrong),
            ],
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = calls
        .post(
            "/token",
            &[
                ("grant_type", grant),
                ("pre-authorized_code", code),
                ("tx_code", tx),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // A DPoP nonce issued by one instance is accepted by the other.
    let key = edk_core::jose::SigningKey::generate(edk_core::jose::Algorithm::Es256).unwrap();
    let proof = |nonce: Option<String>| {
        let key = &key;
        let htu = format!("{}/token", tenant.issuer);
        async move {
            let mut claims = json!({"jti": uuid::Uuid::new_v4().to_string(), "htm": "POST", "htu": htu, "iat": edk_core::Clock::unix_seconds(&edk_core::SystemClock)});
            if let Some(nonce) = nonce {
                claims["nonce"] = json!(nonce);
            }
            let header = edk_core::jose::Header::new(edk_core::jose::Algorithm::Es256)
                .with_typ("dpop+jwt")
                .with_jwk(&key.public_jwk());
            edk_core::jose::jws::sign(header, claims.to_string().as_bytes(), key)
                .await
                .unwrap()
        }
    };
    let response = http()
        .post(calls.url("/token"))
        .header("host", &tenant.host)
        .header("dpop", proof(None).await)
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let nonce = response.headers()["dpop-nonce"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "use_dpop_nonce");
    let response = http()
        .post(calls.url("/token"))
        .header("host", &tenant.host)
        .header("dpop", proof(Some(nonce)).await)
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    deployment.close().await;
}
