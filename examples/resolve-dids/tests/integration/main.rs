//! Starts the all-in-one EDK application in process, served over HTTPS on a loopback port
//! with a certificate for `edk.localhost` from a test CA, publishes a did:web and a did:webvh
//! for its default tenant, signs JWSs with their KMS keys, and runs the compiled
//! `resolve-dids` binary (trusting the test CA) against them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use edk::bootstrap::DataDir;
use edk::{Edk, EdkConfig};
use edk_core::encoding::b64url_encode;
use edk_core::jose::{Algorithm, Header, SigningKey, jws};
use edk_core::{FixedClock, Kid};
use edk_kms::{Caller, KeyAlias};
use edk_tenancy::TenantDirectory as _;
use poem::listener::{Acceptor as _, Listener as _, RustlsCertificate, RustlsConfig, TcpListener};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// When EDK signs the DID logs: in the past of the example's (system) clock.
const NOW: i64 = 1_700_000_000;
/// A did:key of the did:key specification.
const DID_KEY: &str = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";

/// EDK over HTTPS on `edk.localhost:<port>`.
struct HttpsEdk {
    edk: Edk,
    port: u16,
    /// The test CA's certificate, PEM: the example's `--ca-file`.
    ca_file: PathBuf,
    http: reqwest::Client,
    admin_token: String,
    stop: oneshot::Sender<()>,
    served: JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

/// A DID published by EDK and the KMS alias of its key.
struct Published {
    did: String,
    alias: KeyAlias,
}

impl HttpsEdk {
    async fn start() -> Self {
        edk_server::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec![edk::LOCAL_DID_HOST.to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();

        let data = DataDir::open(&dir.path().join("data")).unwrap();
        let client = reqwest::Client::builder().build().unwrap();
        let edk = Edk::start(
            &EdkConfig::default(),
            &data,
            Arc::new(FixedClock::at_unix(NOW)),
            &client,
        )
        .await
        .unwrap();
        let admin_token = edk.bootstrap_token().unwrap().to_owned();
        let tls = RustlsConfig::new().fallback(
            RustlsCertificate::new()
                .key(leaf_key.serialize_pem())
                .cert(leaf.pem()),
        );
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .rustls(tls)
            .into_acceptor()
            .await
            .unwrap();
        let port = acceptor.local_addr()[0].as_socket_addr().unwrap().port();
        edk.bind_default_tenant(port).await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(
            poem::Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
                edk.app(),
                async {
                    let _ = stopped.await;
                },
                None,
            ),
        );
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
            .resolve(
                edk::LOCAL_DID_HOST,
                SocketAddr::from(([127, 0, 0, 1], port)),
            )
            .build()
            .unwrap();
        Self {
            edk,
            port,
            ca_file,
            http,
            admin_token,
            stop,
            served,
            _dir: dir,
        }
    }

    /// Publishes a DID of `method` (`web` or `webvh`) at `path` through the admin API.
    async fn publish(&self, method: &str, path: &str) -> Published {
        let url = format!(
            "https://{}:{}/api/did/v1/identifiers",
            edk::LOCAL_DID_HOST,
            self.port
        );
        let created = self
            .http
            .post(url)
            .bearer_auth(&self.admin_token)
            .json(&json!({ "method": method, "path": path }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let created: Value = created.json().await.unwrap();
        let alias = created["verification_methods"][0]["alias"]
            .as_str()
            .unwrap();
        let (service, purpose) = alias.split_once('.').unwrap();
        Published {
            did: created["did"].as_str().unwrap().to_owned(),
            alias: KeyAlias::new(service, purpose).unwrap(),
        }
    }

    /// A JWS of `claims` signed by the DID's key in EDK's KMS, as a service sharing EDK's
    /// process (an issuer) signs, its `kid` the DID URL of the key.
    async fn sign(&self, published: &Published, claims: &Value) -> String {
        let tenant = self
            .edk
            .deps()
            .tenancy()
            .context(self.edk.default_tenant())
            .await
            .unwrap();
        let caller = Caller::new(tenant, "issuer");
        let signer = self
            .edk
            .deps()
            .kms()
            .kms()
            .signer(&caller, &published.alias)
            .await
            .unwrap();
        let kid = format!("{}#{}", published.did, signer.kid().unwrap().as_str());
        let header = Header::new(signer.algorithm())
            .with_typ("JWT")
            .with_kid(kid);
        jws::sign(header, claims.to_string().as_bytes(), &*signer)
            .await
            .unwrap()
    }

    /// The example's options to read DIDs from this EDK (its CA, its port, `edk.localhost`
    /// at the loopback address, and loopback addresses allowed), less the flags `without`,
    /// then `args`.
    fn args(&self, without: &[&str], args: &[&str]) -> Vec<String> {
        let options = [
            ("--ca-file", Some(self.ca_file.display().to_string())),
            ("--allow-port", Some(self.port.to_string())),
            ("--host", Some(format!("{}=127.0.0.1", edk::LOCAL_DID_HOST))),
            ("--dangerous-allow-private-addresses", None),
        ];
        options
            .into_iter()
            .filter(|(flag, _)| !without.contains(flag))
            .flat_map(|(flag, value)| std::iter::once(flag.to_owned()).chain(value))
            .chain(args.iter().map(|arg| (*arg).to_owned()))
            .collect()
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.served.await.unwrap().unwrap();
        self.edk.shutdown().await;
    }
}

/// What a run of the example printed and how it ended.
struct Run {
    success: bool,
    lines: Vec<Value>,
    stderr: String,
}

/// Runs the compiled example with `args`.
async fn resolve_dids(args: &[String]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_resolve-dids"))
        .args(args)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    Run {
        success: output.status.success(),
        lines: stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

#[tokio::test]
async fn resolves_every_method_and_verifies_jws_signed_by_did_keys() {
    let edk = Box::pin(HttpsEdk::start()).await;
    let web = edk.publish("web", "issuer-web").await;
    let webvh = edk.publish("webvh", "issuer-webvh").await;
    assert_eq!(
        web.did,
        format!("did:web:edk.localhost%3A{}:issuer-web", edk.port)
    );
    assert!(webvh.did.starts_with("did:webvh:"), "{}", webvh.did);
    let jwk = SigningKey::generate(Algorithm::Es256).unwrap().public_jwk();
    let did_jwk = format!(
        "did:jwk:{}",
        b64url_encode(serde_json::to_vec(&jwk).unwrap())
    );
    let by_web = edk
        .sign(&web, &json!({ "iss": web.did, "sub": "alice" }))
        .await;
    let by_webvh = edk
        .sign(&webvh, &json!({ "iss": webvh.did, "sub": "bob" }))
        .await;

    let run = resolve_dids(&edk.args(
        &[],
        &[
            DID_KEY, &did_jwk, &web.did, &webvh.did, "--verify", &by_web, "--verify", &by_webvh,
        ],
    ))
    .await;
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.lines.len(), 6, "{:?}", run.lines);
    for (line, did) in run
        .lines
        .iter()
        .zip([DID_KEY, &did_jwk, &web.did, &webvh.did])
    {
        assert_eq!(line["didDocument"]["id"], did, "{line}");
        assert!(
            line["didResolutionMetadata"].get("error").is_none(),
            "{line}"
        );
    }
    // did:webvh resolution reports the version of the log it resolved.
    assert!(
        run.lines[3]["didDocumentMetadata"]["versionId"]
            .as_str()
            .unwrap()
            .starts_with("1-")
    );
    for (line, published, sub) in [
        (&run.lines[4], &web, "alice"),
        (&run.lines[5], &webvh, "bob"),
    ] {
        assert_eq!(line["verified"], true, "{line}");
        assert!(
            line["kid"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{}#", published.did))
        );
        assert_eq!(line["claims"]["sub"], sub);
    }
    edk.stop().await;
}

#[tokio::test]
async fn a_jws_with_a_wrong_signature_or_issuer_is_refused() {
    let edk = Box::pin(HttpsEdk::start()).await;
    let webvh = edk.publish("webvh", "issuer").await;
    let web = edk.publish("web", "other").await;
    let alice = edk
        .sign(&webvh, &json!({ "iss": webvh.did, "sub": "alice" }))
        .await;
    let mallory = edk
        .sign(&webvh, &json!({ "iss": webvh.did, "sub": "mallory" }))
        .await;
    // Alice's claims under the signature of another token by the same key.
    let (signed, _) = alice.rsplit_once('.').unwrap();
    let (_, other_signature) = mallory.rsplit_once('.').unwrap();
    let spliced = format!("{signed}.{other_signature}");
    // Signed by the did:web's key but claiming to be issued by the did:webvh.
    let other_issuer = edk
        .sign(&web, &json!({ "iss": webvh.did, "sub": "alice" }))
        .await;
    // Signed by a key of our own under a kid naming the DID's key.
    let kid = Kid::new(
        SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .public_jwk()
            .thumbprint(),
    )
    .unwrap();
    let forger = SigningKey::generate(Algorithm::Es256).unwrap();
    let header: Value = serde_json::from_slice(
        &edk_core::encoding::b64url_decode(alice.split('.').next().unwrap()).unwrap(),
    )
    .unwrap();
    let forged = jws::sign(
        Header::new(Algorithm::Es256)
            .with_typ("JWT")
            .with_kid(header["kid"].as_str().unwrap()),
        json!({ "iss": webvh.did, "sub": "alice" })
            .to_string()
            .as_bytes(),
        &forger,
    )
    .await
    .unwrap();
    // A kid naming a key the DID does not have.
    let unknown_key = jws::sign(
        Header::new(Algorithm::Es256)
            .with_typ("JWT")
            .with_kid(format!("{}#{}", webvh.did, kid.as_str())),
        json!({ "iss": webvh.did }).to_string().as_bytes(),
        &forger,
    )
    .await
    .unwrap();

    for (token, why) in [
        (&alice, None),
        (&spliced, Some("invalid signature")),
        (&other_issuer, Some("the key does not belong to the issuer")),
        (&forged, Some("invalid signature")),
        (&unknown_key, Some("no key")),
    ] {
        let run = resolve_dids(&edk.args(&[], &["--verify", token])).await;
        match why {
            None => {
                assert!(run.success, "{}", run.stderr);
                assert_eq!(run.lines[0]["claims"]["sub"], "alice");
            }
            Some(why) => {
                assert!(!run.success, "{token}");
                assert!(run.lines.is_empty(), "{:?}", run.lines);
                assert!(
                    run.stderr.starts_with("the JWS does not verify: "),
                    "{}",
                    run.stderr
                );
                assert!(run.stderr.contains(why), "{why}: {}", run.stderr);
            }
        }
    }
    edk.stop().await;
}

#[tokio::test]
async fn did_web_is_read_only_from_allowed_trusted_servers_and_must_be_published() {
    let edk = Box::pin(HttpsEdk::start()).await;
    let web = edk.publish("web", "issuer").await;
    let unpublished = format!("did:web:edk.localhost%3A{}:nobody", edk.port);

    // Without the test CA the certificate is not trusted; without the port allowed, or
    // without loopback addresses allowed, nothing is fetched.
    for (without, reason) in [
        ("--ca-file", "UnknownIssuer"),
        ("--allow-port", "the DID's port is not allowed"),
        (
            "--dangerous-allow-private-addresses",
            "resolves to no public address",
        ),
    ] {
        let run = resolve_dids(&edk.args(&[without], &[&web.did])).await;
        assert!(!run.success, "{without}");
        let line = &run.lines[0];
        assert_eq!(line["didDocument"], Value::Null, "{without}");
        let error = &line["didResolutionMetadata"]["error"];
        assert_eq!(
            error["type"], "https://www.w3.org/ns/did#INTERNAL_ERROR",
            "{without}: {line}"
        );
        assert!(
            run.stderr
                .starts_with(&format!("cannot resolve {}: ", web.did)),
            "{without}: {}",
            run.stderr
        );
        assert!(run.stderr.contains(reason), "{without}: {}", run.stderr);
    }

    let run = resolve_dids(&edk.args(&[], &[&web.did, &unpublished])).await;
    assert!(!run.success);
    assert_eq!(run.lines[0]["didDocument"]["id"], web.did.as_str());
    assert_eq!(
        run.lines[1]["didResolutionMetadata"]["error"]["type"],
        "https://www.w3.org/ns/did#NOT_FOUND"
    );
    edk.stop().await;
}
