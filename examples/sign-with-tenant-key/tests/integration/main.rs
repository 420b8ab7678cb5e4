//! Starts the compiled `sign-with-tenant-key` service on a free port with its own data
//! directory and drives it over HTTP: tokens verify with the published JWKS before and after
//! a rotation, a wrong signature is refused, and the keys outlive a restart.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use edk_core::Limits;
use edk_core::jose::{Algorithm, Header, JwkSet, JwksResolver, Jws, SigningKey, VerifyPolicy, jws};
use serde_json::{Value, json};

/// The running example; killed when dropped.
struct Service {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Service {
    /// Starts the binary on `127.0.0.1:0` with `data_dir` and waits until it listens.
    fn start(data_dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sign-with-tenant-key"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("the service exited before listening")
                .unwrap();
            if let Some((_, address)) = line.split_once("listening on ") {
                break address.trim().to_owned();
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        // reqwest may be built with rustls (features are shared across the workspace), which
        // needs the process's crypto provider even for plain HTTP.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        Self {
            child,
            base,
            http: reqwest::Client::builder().build().unwrap(),
        }
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// `POST /sign` of `claims`: the token and its kid.
    async fn sign(&self, claims: Value) -> (String, String) {
        let (status, body) = self.post("/sign", &claims).await;
        assert_eq!(status, 200, "{body}");
        (
            body["token"].as_str().unwrap().to_owned(),
            body["kid"].as_str().unwrap().to_owned(),
        )
    }

    async fn jwks(&self) -> JwkSet {
        self.http
            .get(format!("{}/.well-known/jwks.json", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The claims of `token` when it verifies with `jwks` (as a relying party would check it).
async fn verify_with(jwks: &JwkSet, token: &str) -> Result<Value, edk_core::jose::JoseError> {
    let verified = Jws::parse(token, &Limits::default())?
        .verify_with(
            &JwksResolver::new(jwks),
            &VerifyPolicy::default().with_typ("JWT"),
            None,
        )
        .await?;
    Ok(Value::Object(verified.claims()?))
}

fn kids(jwks: &JwkSet) -> Vec<String> {
    jwks.keys
        .iter()
        .map(|key| key.kid.clone().unwrap())
        .collect()
}

#[tokio::test]
async fn tokens_verify_with_the_published_jwks_across_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(dir.path());

    let (before, old_kid) = service.sign(json!({ "sub": "alice" })).await;
    let jwks = service.jwks().await;
    assert_eq!(kids(&jwks), std::slice::from_ref(&old_kid));
    let claims = verify_with(&jwks, &before).await.unwrap();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["iss"], "https://tokens.example");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );

    let (status, rotated) = service.post("/rotate", &json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    let states: Vec<(&str, &str)> = rotated["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["kid"].as_str().unwrap(), v["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [(new_kid.as_str(), "active"), (old_kid.as_str(), "retired")]
    );
    assert_eq!(rotated["versions"][0]["verify_until"], Value::Null);
    // The default overlap: the retired version verifies for one day.
    let verify_until = rotated["versions"][1]["verify_until"].as_i64().unwrap();
    assert!(verify_until >= claims["iat"].as_i64().unwrap() + 86_400);

    // The new version signs; both are published during the overlap.
    let (after, kid) = service.sign(json!({ "sub": "bob" })).await;
    assert_eq!(kid, new_kid);
    let jwks = service.jwks().await;
    assert_eq!(kids(&jwks), [new_kid, old_kid]);
    assert_eq!(verify_with(&jwks, &before).await.unwrap()["sub"], "alice");
    assert_eq!(verify_with(&jwks, &after).await.unwrap()["sub"], "bob");
    for (token, sub) in [(&before, "alice"), (&after, "bob")] {
        let (status, body) = service.post("/verify", &json!({ "token": token })).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["sub"], sub);
    }
}

#[tokio::test]
async fn a_wrong_signature_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(dir.path());
    let (alice, kid) = service.sign(json!({ "sub": "alice" })).await;
    let (mallory, _) = service.sign(json!({ "sub": "mallory" })).await;

    // Alice's header and claims under the signature of another token.
    let (signed, _) = alice.rsplit_once('.').unwrap();
    let (_, other_signature) = mallory.rsplit_once('.').unwrap();
    let spliced = format!("{signed}.{other_signature}");
    // Claims signed by a key of our own, claiming the service's kid.
    let forger = SigningKey::generate(Algorithm::Es256).unwrap();
    let forged = jws::sign(
        Header::new(Algorithm::Es256).with_typ("JWT").with_kid(&kid),
        json!({ "sub": "alice", "iss": "https://tokens.example" })
            .to_string()
            .as_bytes(),
        &forger,
    )
    .await
    .unwrap();

    let jwks = service.jwks().await;
    for (token, refused) in [
        (&spliced, "invalid signature"),
        (&forged, "invalid signature"),
        (
            &"not.a.token".to_owned(),
            "malformed JWS: header is not base64url",
        ),
    ] {
        let err = verify_with(&jwks, token).await.unwrap_err();
        assert_eq!(err.to_string(), refused, "{token}: {err:?}");
        let (status, body) = service.post("/verify", &json!({ "token": token })).await;
        assert_eq!(status, 401, "{token}");
        assert_eq!(body, json!({ "error": "invalid_token" }));
    }
}

#[tokio::test]
async fn keys_outlive_a_restart_with_the_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(dir.path());
    let (token, kid) = service.sign(json!({ "sub": "alice" })).await;
    drop(service);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("kek"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the KEK file is owner-only");
    }

    let service = Service::start(dir.path());
    assert_eq!(kids(&service.jwks().await), std::slice::from_ref(&kid));
    let (status, body) = service.post("/verify", &json!({ "token": token })).await;
    assert_eq!(status, 200, "{body}");
    let (_, again) = service.sign(json!({ "sub": "alice" })).await;
    assert_eq!(again, kid, "the same key signs after the restart");
}
