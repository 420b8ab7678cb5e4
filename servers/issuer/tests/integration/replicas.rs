//! Two replicas of the issuer (each with its tenant AS) on one PostgreSQL database, with the
//! same KMS key material: every step of a pre-authorized flow is served by the other replica,
//! and the single-use artefacts (the offer by reference, the `c_nonce`, the pre-authorized
//! code, the deferred transaction) are redeemed exactly once when both replicas are asked at
//! the same time.
//!
//! The tenant is bound to the first replica's ports; the second replica is reached on its own
//! ports with the `Host` of those bindings, as a load balancer in front of both would do.

use std::time::Duration;

use edk_core::jose::{Algorithm, SigningKey};
use edk_oid4vci::offer::{OfferReference, parse_offer_uri};
use edk_tenancy::BackgroundTask;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Deployment, PRE_AUTHORIZED, Tenant, http, key_proof, python_verify};

/// One replica as the wallet reaches it for the tenant.
struct Replica<'a> {
    deployment: &'a Deployment,
    issuer_origin: String,
    issuer_base: String,
    as_base: String,
    issuer_host: String,
    as_host: String,
}

impl<'a> Replica<'a> {
    /// `deployment` serving the tenant `slug`, whose bindings name `bound`'s ports.
    fn of(deployment: &'a Deployment, bound: &Deployment, slug: &str) -> Self {
        let issuer_port = deployment.issuer_http.addr().port();
        let as_port = deployment.as_http.addr().port();
        Self {
            deployment,
            issuer_origin: format!("http://localhost:{issuer_port}"),
            issuer_base: format!("http://localhost:{issuer_port}/{slug}"),
            as_base: format!("http://localhost:{as_port}/{slug}"),
            issuer_host: format!("localhost:{}", bound.issuer_http.addr().port()),
            as_host: format!("localhost:{}", bound.as_http.addr().port()),
        }
    }

    fn issuer(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        http()
            .request(method, format!("{}{path}", self.issuer_base))
            .header("host", &self.issuer_host)
    }

    /// The issuer metadata at the path-inserted well-known URL.
    async fn metadata(&self, slug: &str) -> Value {
        let response = http()
            .get(format!(
                "{}/.well-known/openid-credential-issuer/{slug}",
                self.issuer_origin
            ))
            .header("host", &self.issuer_host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.json().await.unwrap()
    }

    /// The offer behind `handle`: status and body.
    async fn fetch_offer(&self, handle: &str) -> (u16, Value) {
        answer(
            self.issuer(Method::GET, &format!("/offers/{handle}"))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// The token request redeeming `offer`'s pre-authorized code: status and body.
    async fn redeem(&self, offer: &Value) -> (u16, Value) {
        let code = offer["credential_offer"]["grants"][PRE_AUTHORIZED]["pre-authorized_code"]
            .as_str()
            .unwrap();
        let response = http()
            .post(format!("{}/token", self.as_base))
            .header("host", &self.as_host)
            .form(&[
                ("grant_type", PRE_AUTHORIZED),
                ("pre-authorized_code", code),
                ("tx_code", offer["tx_code"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap();
        answer(response).await
    }

    /// A fresh `c_nonce`.
    async fn nonce(&self) -> String {
        let (status, body) =
            answer(self.issuer(Method::POST, "/nonce").send().await.unwrap()).await;
        assert_eq!(status, 200, "{body}");
        body["c_nonce"].as_str().unwrap().to_owned()
    }

    /// A request with `token` and the JSON `body` to `path`: status and body.
    async fn call(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        answer(
            self.issuer(Method::POST, path)
                .bearer_auth(token)
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}

async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Two replicas on one database, each listening for the other's events, and a tenant bound
/// to the first.
struct Pair {
    first: Deployment,
    second: Deployment,
    listeners: Vec<BackgroundTask>,
    tenant: Tenant,
}

impl Pair {
    async fn new() -> Self {
        let (first, second) = Deployment::postgres_replicas().await;
        let mut listeners = Vec::new();
        for deployment in [&first, &second] {
            let mut listener = deployment.tenancy.start(&Default::default());
            listener.wait_connected(0).await;
            listeners.push(listener);
        }
        let tenant = first.tenant("acme").await;
        Self {
            first,
            second,
            listeners,
            tenant,
        }
    }

    fn replicas(&self) -> [Replica<'_>; 2] {
        [
            Replica::of(&self.first, &self.first, "acme"),
            Replica::of(&self.second, &self.first, "acme"),
        ]
    }

    async fn close(self) {
        for listener in self.listeners {
            listener.shutdown().await;
        }
        self.second.close().await;
        self.first.close().await;
    }
}

fn holder_x(holder: &SigningKey) -> Value {
    serde_json::to_value(holder.public_jwk()).unwrap()["x"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_step_of_a_pre_authorized_flow_is_served_by_the_other_replica() {
    let pair = Pair::new().await;
    let tenant = &pair.tenant;
    let [a, b] = pair.replicas();
    let issuer = &tenant.credential_issuer;

    // The second replica reads the tenant's metadata before and right after the first
    // replica's admin API writes a configuration.
    let before = b.metadata("acme").await;
    assert_eq!(before["credential_issuer"], issuer.as_str());
    assert!(
        before["credential_configurations_supported"]
            .get("identity")
            .is_none(),
        "{before}"
    );
    a.deployment.configure(tenant).await;
    let metadata = b.metadata("acme").await;
    assert_eq!(
        metadata["credential_configurations_supported"]["identity"]["vct"],
        "https://credentials.example.com/identity"
    );
    assert_eq!(metadata, a.metadata("acme").await);

    // The offer by reference, created on the first, served once by the second.
    let offer = a.deployment.offer(tenant, true).await;
    let OfferReference::Uri(reference) =
        parse_offer_uri(offer["credential_offer_uri"].as_str().unwrap()).unwrap()
    else {
        panic!("expected an offer by reference: {offer}")
    };
    let handle = reference
        .strip_prefix(&format!("{issuer}/offers/"))
        .unwrap();
    let (status, served) = b.fetch_offer(handle).await;
    assert_eq!(status, 200, "{served}");
    assert_eq!(served, offer["credential_offer"]);
    assert_eq!(a.fetch_offer(handle).await.0, 404);

    // The token from the first replica's AS, the nonce from the second, the credential from
    // the first.
    let (status, token) = a.redeem(&offer).await;
    assert_eq!(status, 200, "{token}");
    let access_token = token["access_token"].as_str().unwrap();
    let session_id = offer["session_id"].as_str().unwrap();
    let identifier = format!("{session_id}:identity");
    assert_eq!(
        token["authorization_details"][0]["credential_identifiers"],
        json!([identifier])
    );
    let c_nonce = b.nonce().await;
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let (status, issued) = a
        .call(
            "/credential",
            access_token,
            &json!({
                "credential_identifier": identifier,
                "proofs": { "jwt": [key_proof(&holder, issuer, Some(&c_nonce))] },
            }),
        )
        .await;
    assert_eq!(status, 200, "{issued}");
    let credentials = issued["credentials"].as_array().unwrap();
    assert_eq!(credentials.len(), 1, "{issued}");

    let jwks = a.deployment.issuer_jwks(tenant).await;
    assert_eq!(jwks, b.deployment.issuer_jwks(tenant).await);
    let payload = python_verify(
        credentials[0]["credential"].as_str().unwrap().to_owned(),
        serde_json::to_value(&jwks.keys[0]).unwrap(),
    )
    .await;
    assert_eq!(payload["iss"], issuer.as_str());
    assert_eq!(payload["vct"], "https://credentials.example.com/identity");
    assert_eq!(payload["given_name"], "Erika");
    assert_eq!(payload["family_name"], "Mustermann");
    assert_eq!(payload["cnf"]["jwk"]["x"], holder_x(&holder));

    // The notification on the second replica reaches the first one's event bus and the
    // session the first one reads.
    let mut events = a.deployment.tenancy.events().subscribe();
    let (status, body) = b
        .call(
            "/notification",
            access_token,
            &json!({
                "notification_id": issued["notification_id"],
                "event": "credential_accepted",
            }),
        )
        .await;
    assert_eq!((status, body), (204, Value::Null));
    let event = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let edk_tenancy::Event::Custom { topic, payload } = events.recv().await.unwrap()
                && topic == edk_oid4vci::issuer::NOTIFICATION_TOPIC
            {
                return payload;
            }
        }
    })
    .await
    .expect("the notification event never reached the first replica");
    assert_eq!(
        event,
        json!({ "tenant": tenant.id, "session_id": session_id, "event": "credential_accepted" })
    );
    let session = a.deployment.session(tenant, session_id).await;
    assert_eq!(session["status"], "notified");
    assert_eq!(
        session["notifications"].as_array().unwrap().len(),
        1,
        "{session}"
    );
    pair.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_by_reference_is_served_once_by_either_replica() {
    let pair = Pair::new().await;
    let tenant = &pair.tenant;
    let replicas = pair.replicas();
    pair.first.configure(tenant).await;
    let offer = pair.second.offer(tenant, true).await;
    let OfferReference::Uri(reference) =
        parse_offer_uri(offer["credential_offer_uri"].as_str().unwrap()).unwrap()
    else {
        panic!("expected an offer by reference: {offer}")
    };
    let handle = reference
        .strip_prefix(&format!("{}/offers/", tenant.credential_issuer))
        .unwrap();

    let answers =
        futures::future::join_all((0..16).map(|i| replicas[i % 2].fetch_offer(handle))).await;
    let served: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(served.len(), 1, "{answers:?}");
    assert_eq!(served[0], &offer["credential_offer"]);
    assert!(
        answers
            .iter()
            .all(|(status, _)| *status == 200 || *status == 404),
        "{answers:?}"
    );
    for replica in &replicas {
        assert_eq!(replica.fetch_offer(handle).await.0, 404);
    }
    pair.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_authorized_code_is_redeemed_once_across_replicas() {
    let pair = Pair::new().await;
    let tenant = &pair.tenant;
    let replicas = pair.replicas();
    pair.first.configure(tenant).await;
    let offer = pair.first.offer(tenant, false).await;

    let answers = futures::future::join_all((0..16).map(|i| replicas[i % 2].redeem(&offer))).await;
    let tokens: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(tokens.len(), 1, "{answers:?}");
    assert!(tokens[0]["access_token"].is_string(), "{}", tokens[0]);
    for (status, body) in answers.iter().filter(|(status, _)| *status != 200) {
        assert_eq!(
            (*status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{body}"
        );
    }
    for replica in &replicas {
        let (status, body) = replica.redeem(&offer).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
    }
    pair.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_is_redeemed_once_across_replicas() {
    let pair = Pair::new().await;
    let tenant = &pair.tenant;
    let replicas = pair.replicas();
    pair.first.configure(tenant).await;
    let offer = pair.first.offer(tenant, false).await;
    let (status, token) = replicas[1].redeem(&offer).await;
    assert_eq!(status, 200, "{token}");
    let access_token = token["access_token"].as_str().unwrap();
    let identifier = format!("{}:identity", offer["session_id"].as_str().unwrap());
    let c_nonce = replicas[0].nonce().await;

    let holders: Vec<SigningKey> = (0..32)
        .map(|_| SigningKey::generate(Algorithm::Es256).unwrap())
        .collect();
    let requests: Vec<Value> = holders
        .iter()
        .map(|holder| {
            json!({
                "credential_identifier": identifier,
                "proofs": { "jwt": [key_proof(holder, &tenant.credential_issuer, Some(&c_nonce))] },
            })
        })
        .collect();
    let answers = futures::future::join_all(
        requests
            .iter()
            .enumerate()
            .map(|(i, body)| replicas[i % 2].call("/credential", access_token, body)),
    )
    .await;
    let winners: Vec<usize> = answers
        .iter()
        .enumerate()
        .filter(|(_, (status, _))| *status == 200)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(status, _)| *status != 200) {
        assert_eq!(
            (*status, body["error"].as_str()),
            (400, Some("invalid_nonce")),
            "{body}"
        );
    }
    let winner = winners[0];
    let credentials = answers[winner].1["credentials"].as_array().unwrap();
    assert_eq!(credentials.len(), 1);
    let jwks = pair.first.issuer_jwks(tenant).await;
    let payload = python_verify(
        credentials[0]["credential"].as_str().unwrap().to_owned(),
        serde_json::to_value(&jwks.keys[0]).unwrap(),
    )
    .await;
    assert_eq!(payload["cnf"]["jwk"]["x"], holder_x(&holders[winner]));

    // The same session goes on with a fresh nonce from either replica.
    for replica in &replicas {
        let c_nonce = replica.nonce().await;
        let (status, body) = replica
            .call(
                "/credential",
                access_token,
                &json!({
                    "credential_identifier": identifier,
                    "proofs": { "jwt": [key_proof(&holders[0], &tenant.credential_issuer, Some(&c_nonce))] },
                }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    pair.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_transaction_is_handed_out_once_across_replicas() {
    let pair = Pair::new().await;
    let tenant = &pair.tenant;
    let [a, b] = pair.replicas();
    a.deployment.configure(tenant).await;
    let (status, offer) = a
        .deployment
        .admin(
            tenant,
            Method::POST,
            "/offers",
            Some(json!({
                "credential_configuration_ids": ["identity"],
                "claims": { "identity": { "given_name": "Erika", "family_name": "Mustermann" } },
                "tx_code": { "digits": 6 },
                "deferred": true,
            })),
        )
        .await;
    assert_eq!(status, 201, "{offer}");
    let session_id = offer["session_id"].as_str().unwrap();
    let (status, token) = b.redeem(&offer).await;
    assert_eq!(status, 200, "{token}");
    let access_token = token["access_token"].as_str().unwrap();
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let c_nonce = b.nonce().await;
    let (status, pending) = a
        .call(
            "/credential",
            access_token,
            &json!({
                "credential_identifier": format!("{session_id}:identity"),
                "proofs": { "jwt": [key_proof(&holder, &tenant.credential_issuer, Some(&c_nonce))] },
            }),
        )
        .await;
    assert_eq!(status, 202, "{pending}");
    let poll = json!({ "transaction_id": pending["transaction_id"] });
    assert_eq!(
        b.call("/deferred_credential", access_token, &poll).await,
        (202, pending.clone())
    );

    let (status, settled) = b
        .deployment
        .admin(
            tenant,
            Method::POST,
            &format!("/sessions/{session_id}/complete"),
            Some(json!({ "claims": { "identity": { "given_name": "Max", "family_name": "Mustermann" } } })),
        )
        .await;
    assert_eq!(status, 200, "{settled}");
    assert_eq!(settled["settled"], 1);

    let replicas = [a, b];
    let answers = futures::future::join_all(
        (0..32).map(|i| replicas[i % 2].call("/deferred_credential", access_token, &poll)),
    )
    .await;
    let delivered: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(delivered.len(), 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(status, _)| *status != 200) {
        assert_eq!(
            (*status, body["error"].as_str()),
            (400, Some("invalid_transaction_id")),
            "{body}"
        );
    }
    let credentials = delivered[0]["credentials"].as_array().unwrap();
    assert_eq!(credentials.len(), 1, "{}", delivered[0]);
    let jwks = pair.second.issuer_jwks(tenant).await;
    let payload = python_verify(
        credentials[0]["credential"].as_str().unwrap().to_owned(),
        serde_json::to_value(&jwks.keys[0]).unwrap(),
    )
    .await;
    assert_eq!(payload["given_name"], "Max");
    assert_eq!(payload["cnf"]["jwk"]["x"], holder_x(&holder));
    let session = replicas[0].deployment.session(tenant, session_id).await;
    assert_eq!(session["status"], "credential_issued");
    pair.close().await;
}

/// Both replicas hand out indices of one status list; a revocation made through the second
/// replica's admin API is published by the first replica's job, and both serve that token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_status_lists_and_serve_the_same_publication() {
    let pair = Pair::new().await;
    let tenant = &pair.tenant;
    let replicas = pair.replicas();
    let (status, body) = replicas[0]
        .deployment
        .admin(
            tenant,
            Method::PUT,
            "/configurations/identity",
            Some(json!({
                "configuration": {
                    "format": "dc+sd-jwt",
                    "vct": "https://credentials.example.com/identity",
                },
                "settings": { "status": { "purpose": "revocation", "list_size": 1024 } },
            })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut references = Vec::new();
    for replica in &replicas {
        let offer = replica.deployment.offer(tenant, false).await;
        let (status, token) = replica.redeem(&offer).await;
        assert_eq!(status, 200, "{token}");
        let session_id = offer["session_id"].as_str().unwrap();
        let (status, issued) = replica
            .call(
                "/credential",
                token["access_token"].as_str().unwrap(),
                &json!({ "credential_identifier": format!("{session_id}:identity") }),
            )
            .await;
        assert_eq!(status, 200, "{issued}");
        let jwt = issued["credentials"][0]["credential"].as_str().unwrap();
        let payload = jwt.split('~').next().unwrap().split('.').nth(1).unwrap();
        let payload: Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .unwrap(),
        )
        .unwrap();
        references.push((
            session_id.to_owned(),
            payload["status"]["status_list"].clone(),
        ));
    }
    assert_eq!(references[0].1["uri"], references[1].1["uri"]);
    assert_ne!(references[0].1["idx"], references[1].1["idx"]);

    let (status, body) = replicas[1]
        .deployment
        .admin(
            tenant,
            Method::POST,
            "/credentials/status",
            Some(json!({ "action": "revoke", "target": "session", "id": references[1].0 })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let context = edk_tenancy::TenantDirectory::context(&replicas[0].deployment.tenancy, tenant.id)
        .await
        .unwrap();
    assert_eq!(
        replicas[0]
            .deployment
            .parts
            .issuer
            .publish_status_lists(&context)
            .await
            .unwrap(),
        1
    );
    let uri = references[0].1["uri"].as_str().unwrap();
    let path = uri.strip_prefix(&tenant.credential_issuer).unwrap();
    let mut served = Vec::new();
    for replica in &replicas {
        let response = replica.issuer(Method::GET, path).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        served.push((etag, response.text().await.unwrap()));
    }
    assert_eq!(
        served[0], served[1],
        "both replicas serve the one publication"
    );
    let claims = served[0].1.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap(),
    )
    .unwrap();
    let list = edk_core::status_list::EncodedStatusList::new(
        edk_core::status_list::Bits::One,
        claims["status_list"]["lst"].as_str().unwrap(),
    )
    .decode(&edk_core::Limits::default())
    .unwrap();
    let index = |n: usize| usize::try_from(references[n].1["idx"].as_u64().unwrap()).unwrap();
    assert_eq!(list.get(index(0)).unwrap(), 0);
    assert_eq!(list.get(index(1)).unwrap(), 1);
    pair.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_completes_on_the_other_replica_after_one_is_killed_mid_flow() {
    let (first, second) = Deployment::postgres_replicas().await;
    let mut listeners = Vec::new();
    for deployment in [&first, &second] {
        let mut listener = deployment.tenancy.start(&Default::default());
        listener.wait_connected(0).await;
        listeners.push(listener);
    }
    let tenant = first.tenant("acme").await;
    let issuer = tenant.credential_issuer.clone();
    first.configure(&tenant).await;
    let survivor = Replica::of(&first, &first, "acme");

    // The wallet starts on the second replica: the offer by reference, the token.
    let (offer, handle, access_token) = {
        let doomed = Replica::of(&second, &first, "acme");
        let offer = second.offer(&tenant, true).await;
        let OfferReference::Uri(reference) =
            parse_offer_uri(offer["credential_offer_uri"].as_str().unwrap()).unwrap()
        else {
            panic!("expected an offer by reference: {offer}")
        };
        let handle = reference
            .strip_prefix(&format!("{issuer}/offers/"))
            .unwrap()
            .to_owned();
        let (status, served) = doomed.fetch_offer(&handle).await;
        assert_eq!(status, 200, "{served}");
        let (status, token) = doomed.redeem(&offer).await;
        assert_eq!(status, 200, "{token}");
        let access_token = token["access_token"].as_str().unwrap().to_owned();
        (offer, handle, access_token)
    };

    // The second replica dies between the token and the credential request.
    let doomed_ports = [second.issuer_http.addr(), second.as_http.addr()];
    let listener = listeners.pop().unwrap();
    second.kill().await;
    listener.shutdown().await;
    for addr in doomed_ports {
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "the killed replica still listens on {addr}"
        );
    }

    // The wallet carries on at the first replica: the offer stays used, the token it got
    // from the dead replica is accepted, and the credential is issued once.
    assert_eq!(survivor.fetch_offer(&handle).await.0, 404);
    let c_nonce = survivor.nonce().await;
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let identifier = format!("{}:identity", offer["session_id"].as_str().unwrap());
    let request = json!({
        "credential_identifier": identifier,
        "proofs": { "jwt": [key_proof(&holder, &issuer, Some(&c_nonce))] },
    });
    let (status, issued) = survivor.call("/credential", &access_token, &request).await;
    assert_eq!(status, 200, "{issued}");
    // The SD-JWT VC is signed with the tenant's key, for the holder's key.
    let credential = issued["credentials"][0]["credential"].as_str().unwrap();
    let jws_part = credential.split('~').next().unwrap();
    let parsed = edk_core::jose::jws::Jws::parse(jws_part, &edk_core::Limits::default()).unwrap();
    let jwks = first.issuer_jwks(&tenant).await;
    let verified = parsed
        .verify_with(
            &edk_core::jose::JwksResolver::new(&jwks),
            &edk_core::jose::VerifyPolicy::default().with_algorithms(&[Algorithm::Es256]),
            None,
        )
        .await;
    assert!(verified.is_ok(), "{verified:?}");
    let payload: Value = serde_json::from_slice(
        &edk_core::encoding::b64url_decode(jws_part.split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(payload["iss"], issuer.as_str());
    assert_eq!(payload["cnf"]["jwk"]["x"], holder_x(&holder));
    // The nonce was spent by the credential request.
    let (status, body) = survivor.call("/credential", &access_token, &request).await;
    assert_eq!(status, 400, "{body}");
    let session = first
        .session(&tenant, offer["session_id"].as_str().unwrap())
        .await;
    assert_eq!(session["status"], "credential_issued", "{session}");

    for listener in listeners {
        listener.shutdown().await;
    }
    first.close().await;
}
