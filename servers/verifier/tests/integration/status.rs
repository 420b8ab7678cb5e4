//! Credential status over HTTP: SD-JWT VCs carrying a Token Status List reference, their
//! lists published by an issuer on loopback in JWT form (its key in the issuer's JWT VC
//! Issuer Metadata) and in CWT form (under the issuer's `x5chain` to the tenant's trust
//! anchor). A valid credential verifies; once the issuer republishes the list with it revoked
//! or suspended, the next presentation fails with that reason. A list signed by a key the
//! issuer does not publish, a list whose `iss` is on another origin, an oversized list and a
//! list that is gone all leave the status unchecked, and the session fails.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edk_core::jose::{Algorithm, Header, SigningKey};
use edk_core::sd_jwt::{ClaimPath, IssueOptions, SdJwt};
use edk_core::sd_jwt_vc::SdJwtVcBuilder;
use edk_core::status_list::{
    Bits, StatusList, StatusListCwt, StatusListCwtClaims, StatusListToken, StatusListTokenClaims,
    StatusType,
};
use edk_core::{Clock, SystemClock};
use edk_server::{TestServer, spawn_server};
use edk_verifier_server::VerifierSettings;
use poem::http::StatusCode;
use serde_json::{Value, json};

use crate::flow::{
    Pki, answer, b64, by_value, make_request, pki, post, present, provision, session,
};
use crate::support::{Deployment, Tenant, identity_query};

const VCT: &str = "https://credentials.example.com/identity";

/// A body and its content type.
type Served = (Vec<u8>, &'static str);

/// What the status issuer serves, by path.
#[derive(Clone, Default)]
struct Published(Arc<Mutex<HashMap<String, Served>>>);

impl Published {
    fn put(&self, path: &str, body: Vec<u8>, content_type: &'static str) {
        self.0
            .lock()
            .unwrap()
            .insert(path.to_owned(), (body, content_type));
    }

    fn remove(&self, path: &str) {
        self.0.lock().unwrap().remove(path);
    }
}

/// The status issuer on loopback: `/issuer/status/<n>` and its JWT VC Issuer Metadata.
async fn status_server(published: Published) -> TestServer {
    let app = poem::endpoint::make(move |req: poem::Request| {
        let published = published.clone();
        async move {
            let found = published.0.lock().unwrap().get(req.uri().path()).cloned();
            match found {
                Some((body, content_type)) => poem::Response::builder()
                    .content_type(content_type)
                    .body(body),
                None => poem::Response::builder()
                    .status(StatusCode::NOT_FOUND)
                    .finish(),
            }
        }
    });
    spawn_server(app).await.unwrap()
}

/// The status issuer: its identifier, its status list signing key and its PKI.
struct StatusIssuer {
    origin: String,
    iss: String,
    key: SigningKey,
    pki: Pki,
    published: Published,
}

impl StatusIssuer {
    fn uri(&self, list: u32) -> String {
        format!("{}/issuer/status/{list}", self.origin)
    }

    /// Publishes list 1 (JWT, key in the metadata) and list 2 (CWT, `x5chain`) with
    /// `statuses` set, valid for ten minutes and cacheable for one second.
    async fn publish(&self, statuses: &[(usize, StatusType)]) {
        let now = SystemClock.unix_seconds();
        let mut list = StatusList::new(Bits::Two, 1024);
        for (idx, status) in statuses {
            list.set_status(*idx, *status).unwrap();
        }
        let claims = StatusListTokenClaims::new(self.uri(1), now, &list)
            .unwrap()
            .with_iss(self.iss.clone())
            .with_exp(now + 600)
            .with_ttl(1);
        let jwt = StatusListToken::issue(
            Header::new(Algorithm::Es256).with_kid("status-1"),
            &claims,
            &self.key,
        )
        .await
        .unwrap();
        self.published.put(
            "/issuer/status/1",
            jwt.into_bytes(),
            "application/statuslist+jwt",
        );
        let claims = StatusListCwtClaims::new(self.uri(2), now, &list)
            .unwrap()
            .with_iss(self.iss.clone())
            .with_exp(now + 600)
            .with_ttl(1);
        let cwt = StatusListCwt::issue_with_x5chain(&claims, &self.pki.leaf, &self.pki.chain)
            .await
            .unwrap();
        self.published
            .put("/issuer/status/2", cwt, "application/statuslist+cwt");
    }

    /// A credential for `holder` whose status is entry `idx` of `uri`.
    async fn issue(&self, holder: &SigningKey, uri: &str, idx: usize) -> SdJwt {
        SdJwtVcBuilder::new(VCT)
            .issuer(self.iss.clone())
            .issued_at(SystemClock.unix_seconds() - 60)
            .holder_key(&holder.public_jwk())
            .claim("given_name", "Erika")
            .claim("family_name", "Mustermann")
            .selectively_disclose(ClaimPath::new(["given_name"]))
            .selectively_disclose(ClaimPath::new(["family_name"]))
            .status(json!({"status_list": {"idx": idx, "uri": uri}}))
            .x5c(self.pki.chain.iter().map(|der| b64(der)).collect())
            .issue(&self.pki.leaf, &IssueOptions::default())
            .await
            .unwrap()
    }
}

/// Presents `credential` to a new request of `tenant`: the answer's HTTP status and the
/// session after it.
async fn present_to(
    deployment: &Deployment,
    tenant: &Tenant,
    credential: &SdJwt,
    holder: &SigningKey,
) -> (u16, Value) {
    let made = make_request(
        deployment,
        tenant,
        json!({"dcql_query": identity_query(), "client_id_prefix": "redirect_uri"}),
    )
    .await;
    let request = by_value(&made);
    let aud = request.client_id.as_ref().unwrap().to_string();
    let presentation = present(
        credential,
        holder,
        &["given_name", "family_name"],
        &aud,
        &request.nonce,
    )
    .await;
    let (status, _) = post(
        &request,
        answer(presentation, request.state.clone()).to_form(),
    )
    .await;
    (status, session(deployment, tenant, &made).await)
}

fn reason(session: &Value) -> String {
    session["error"]["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_and_suspended_credentials_are_refused_in_jwt_and_cwt_lists() {
    let settings = VerifierSettings {
        dangerous_allow_http_status_lists: true,
        ..VerifierSettings::default()
    };
    let deployment = Deployment::sqlite_with(&settings).await;
    let acme = deployment.tenant("acme").await;
    let published = Published::default();
    let server = status_server(published.clone()).await;
    let origin = format!("http://127.0.0.1:{}", server.addr().port());
    let issuer = StatusIssuer {
        iss: format!("{origin}/issuer"),
        origin,
        key: SigningKey::generate(Algorithm::Es256).unwrap(),
        pki: pki("issuer"),
        published: published.clone(),
    };
    provision(&deployment, &acme, &issuer.pki).await;
    published.put(
        "/.well-known/jwt-vc-issuer/issuer",
        json!({"issuer": issuer.iss, "jwks": {"keys": [issuer.key.public_jwk().with_kid("status-1")]}})
            .to_string()
            .into_bytes(),
        "application/json",
    );
    issuer.publish(&[]).await;
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let in_jwt = issuer.issue(&holder, &issuer.uri(1), 7).await;
    let in_cwt = issuer.issue(&holder, &issuer.uri(2), 9).await;

    for credential in [&in_jwt, &in_cwt] {
        let (status, verified) = present_to(&deployment, &acme, credential, &holder).await;
        assert_eq!(status, 200, "{verified}");
        assert_eq!(verified["status"], "verified", "{verified}");
    }

    // Revoked in both lists; the verifier's copies lapse after their one-second ttl.
    issuer
        .publish(&[(7, StatusType::Invalid), (9, StatusType::Invalid)])
        .await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    for credential in [&in_jwt, &in_cwt] {
        let (status, failed) = present_to(&deployment, &acme, credential, &holder).await;
        assert_eq!(status, 400, "{failed}");
        assert_eq!(failed["status"], "failed", "{failed}");
        assert!(reason(&failed).ends_with("is revoked"), "{failed}");
    }

    // Suspended.
    issuer
        .publish(&[(7, StatusType::Suspended), (9, StatusType::Suspended)])
        .await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    for credential in [&in_jwt, &in_cwt] {
        let (status, failed) = present_to(&deployment, &acme, credential, &holder).await;
        assert_eq!(status, 400, "{failed}");
        assert!(reason(&failed).ends_with("is suspended"), "{failed}");
    }

    // Reinstated: valid again.
    issuer.publish(&[]).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (_, verified) = present_to(&deployment, &acme, &in_jwt, &holder).await;
    assert_eq!(verified["status"], "verified", "{verified}");

    // A list signed with a key the issuer's metadata does not have.
    let now = SystemClock.unix_seconds();
    let list = StatusList::new(Bits::Two, 1024);
    let forged = StatusListToken::issue(
        Header::new(Algorithm::Es256).with_kid("status-1"),
        &StatusListTokenClaims::new(issuer.uri(1), now, &list)
            .unwrap()
            .with_iss(issuer.iss.clone())
            .with_exp(now + 600)
            .with_ttl(1),
        &SigningKey::generate(Algorithm::Es256).unwrap(),
    )
    .await
    .unwrap();
    published.put(
        "/issuer/status/1",
        forged.into_bytes(),
        "application/statuslist+jwt",
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, failed) = present_to(&deployment, &acme, &in_jwt, &holder).await;
    assert_eq!(status, 400, "{failed}");
    assert!(reason(&failed).ends_with("cannot be checked"), "{failed}");

    // A list whose issuer is on another origin than the list.
    let elsewhere = StatusListToken::issue(
        Header::new(Algorithm::Es256).with_kid("status-1"),
        &StatusListTokenClaims::new(issuer.uri(1), now, &list)
            .unwrap()
            .with_iss("http://localhost:1/issuer")
            .with_exp(now + 600)
            .with_ttl(1),
        &issuer.key,
    )
    .await
    .unwrap();
    published.put(
        "/issuer/status/1",
        elsewhere.into_bytes(),
        "application/statuslist+jwt",
    );
    let (_, failed) = present_to(&deployment, &acme, &in_jwt, &holder).await;
    assert!(reason(&failed).ends_with("cannot be checked"), "{failed}");

    // A list larger than the verifier reads (1 MiB by default).
    published.put(
        "/issuer/status/3",
        vec![b'a'; 1_536 * 1024],
        "application/statuslist+jwt",
    );
    let oversized = issuer.issue(&holder, &issuer.uri(3), 1).await;
    let (_, failed) = present_to(&deployment, &acme, &oversized, &holder).await;
    assert!(reason(&failed).ends_with("cannot be checked"), "{failed}");

    // A list that is gone.
    published.remove("/issuer/status/2");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (_, failed) = present_to(&deployment, &acme, &in_cwt, &holder).await;
    assert!(reason(&failed).ends_with("cannot be checked"), "{failed}");

    server.shutdown().await.unwrap();
    deployment.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_over_plain_http_are_refused_by_default() {
    let deployment = Deployment::sqlite().await;
    let acme = deployment.tenant("acme").await;
    let issuer_pki = pki("issuer");
    provision(&deployment, &acme, &issuer_pki).await;
    let issuer = StatusIssuer {
        origin: "http://127.0.0.1:9".to_owned(),
        iss: "http://127.0.0.1:9/issuer".to_owned(),
        key: SigningKey::generate(Algorithm::Es256).unwrap(),
        pki: issuer_pki,
        published: Published::default(),
    };
    let holder = SigningKey::generate(Algorithm::Es256).unwrap();
    let credential = issuer.issue(&holder, &issuer.uri(1), 1).await;
    let (status, failed) = present_to(&deployment, &acme, &credential, &holder).await;
    assert_eq!(status, 400, "{failed}");
    assert!(reason(&failed).ends_with("cannot be checked"), "{failed}");
    deployment.close().await;
}
