//! The npm wallet `@openid4vc/openid4vp` (through `interop/node/openid4vp_wallet.mjs`, step
//! `wallet_http`) answering requests made through the verifier's admin API, over HTTP: it
//! parses the authorization request URI, fetches and verifies the signed Request Object (or
//! reads the request by value for `redirect_uri:`), issues an SD-JWT VC with npm
//! `@sd-jwt/sd-jwt-vc` under a chain to the tenant's trust anchor, presents it with a Key
//! Binding JWT and posts the response to the `response_uri` in the clear or encrypted. Every
//! client identifier prefix with each response mode; each session must end `verified` with
//! the disclosed claims. Then the refusals: a credential with a required claim withheld, and a
//! Request Object whose chain the wallet does not trust.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use edk_core::jose::{Algorithm, SigningKey};
use edk_core::{Clock as _, SystemClock};
use edk_kms::Kms as _;
use edk_kms::cert::{CertificateProfile, ChainName, SubjectAltName};
use edk_kms::kms::{Caller, KeyAlias, NewKey};
use edk_kms::provider::KeySpec;
use edk_tenancy::TenantDirectory as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Deployment, Tenant, identity_query, workspace_root};

const VCT: &str = "https://credentials.example.com/identity";

/// `interop/node`, where `scripts/test` installed the Node peers.
fn node_dir() -> PathBuf {
    let dir = workspace_root().join("interop/node");
    assert!(
        dir.join("node_modules/@openid4vc/openid4vp").exists(),
        "{}/node_modules is missing: run scripts/test --setup-only",
        dir.display()
    );
    dir
}

/// Runs one step of `openid4vp_wallet.mjs` off the runtime (the wallet calls back into the
/// verifier served by this process): its JSON answer, or its error as `Err`.
async fn npm_wallet(input: Value) -> Result<Value, Value> {
    let dir = node_dir();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new("node")
            .arg("openid4vp_wallet.mjs")
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.to_string().as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        let answer: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
            panic!(
                "openid4vp_wallet.mjs printed no JSON:\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        if output.status.success() {
            Ok(answer)
        } else {
            Err(answer)
        }
    })
    .await
    .unwrap()
}

fn standard(der: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// A credential issuer's PKI: a root (the tenant's trust anchor), and the private JWK and
/// `x5c` chain of the leaf the npm wallet issues with.
struct IssuerPki {
    root_pem: String,
    leaf_jwk: Value,
    x5c: Vec<String>,
}

fn issuer_pki() -> IssuerPki {
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut root = CertificateParams::new(Vec::<String>::new()).unwrap();
    root.distinguished_name
        .push(DnType::CommonName, "npm issuer root");
    root.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let root_cert = root.self_signed(&root_key).unwrap();
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut leaf = CertificateParams::new(vec!["issuer.example".to_owned()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "npm issuer");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.use_authority_key_identifier_extension = true;
    let leaf_cert = leaf
        .signed_by(&leaf_key, &Issuer::new(root, root_key))
        .unwrap();
    let signing = SigningKey::from_pkcs8_der(Algorithm::Es256, &leaf_key.serialize_der()).unwrap();
    IssuerPki {
        root_pem: root_cert.pem(),
        leaf_jwk: serde_json::to_value(signing.to_jwk().unwrap()).unwrap(),
        x5c: vec![standard(leaf_cert.der())],
    }
}

/// The tenant's Request Object signing key with a certificate for `localhost` under a CA of
/// its own (the root the wallet trusts, returned as DER), and `issuer`'s root as its trust
/// anchor.
async fn provision(deployment: &Deployment, tenant: &Tenant, issuer: &IssuerPki) -> Vec<u8> {
    let context = deployment.tenancy.context(tenant.id).await.unwrap();
    let caller = Caller::new(context, "verifier");
    let ca = KeyAlias::new("verifier", "interop-ca").unwrap();
    let signing = KeyAlias::new("verifier", "request-object-signing").unwrap();
    for alias in [&ca, &signing] {
        deployment
            .kms
            .create_key(
                &caller,
                &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
            )
            .await
            .unwrap();
    }
    let day = Duration::from_secs(86_400);
    let root = deployment
        .certificates
        .issue(
            &caller,
            &ca,
            &ca,
            &CertificateProfile::ca(day * 365, Some(0)),
        )
        .await
        .unwrap();
    let mut leaf = CertificateProfile::leaf(day * 30);
    leaf.sans = vec![SubjectAltName::Dns("localhost".to_owned())];
    deployment
        .certificates
        .issue(&caller, &ca, &signing, &leaf)
        .await
        .unwrap();
    deployment
        .certificates
        .put_chain(
            &caller,
            &ChainName::new("npm-issuer").unwrap(),
            &issuer.root_pem,
            true,
        )
        .await
        .unwrap();
    root.certificate.chain[0].clone()
}

/// The npm wallet's input for answering `request` (as made by `POST /requests`).
fn wallet_input(
    request: &Value,
    anchor: &[u8],
    issuer: &IssuerPki,
    holder: &Value,
    disclose: &[&str],
) -> Value {
    json!({
        "step": "wallet_http",
        "authorization_request_uri": request["authorization_request_uri"],
        "trust_anchor": standard(anchor),
        "issuer_jwk": issuer.leaf_jwk,
        "issuer_x5c": issuer.x5c,
        "holder_jwk": holder,
        "iss": "https://issuer.example",
        "vct": VCT,
        "claims": {"given_name": "Erika", "family_name": "Mustermann", "birthdate": "1964-08-12"},
        "disclose": disclose,
        "now": SystemClock.unix_seconds(),
    })
}

async fn make_request(deployment: &Deployment, tenant: &Tenant, prefix: &str, mode: &str) -> Value {
    let (status, made) = deployment
        .admin(
            tenant,
            Method::POST,
            "/requests",
            Some(
                json!({"dcql_query": identity_query(), "client_id_prefix": prefix,
                        "response_mode": mode}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    made
}

async fn session(deployment: &Deployment, tenant: &Tenant, made: &Value) -> Value {
    let id = made["session_id"].as_str().unwrap();
    let (status, session) = deployment
        .admin(tenant, Method::GET, &format!("/sessions/{id}"), None)
        .await;
    assert_eq!(status, 200, "{session}");
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_npm_wallet_answers_every_prefix_and_response_mode_over_http() {
    let deployment = Deployment::sqlite().await;
    let acme = deployment.tenant("acme").await;
    let issuer = issuer_pki();
    let anchor = provision(&deployment, &acme, &issuer).await;
    let holder = serde_json::to_value(
        SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .to_jwk()
            .unwrap(),
    )
    .unwrap();

    for prefix in [
        "x509_san_dns",
        "x509_hash",
        "decentralized_identifier",
        "redirect_uri",
    ] {
        for mode in ["direct_post", "direct_post.jwt"] {
            let case = format!("{prefix} with {mode}");
            let made = make_request(&deployment, &acme, prefix, mode).await;
            let answer = npm_wallet(wallet_input(
                &made,
                &anchor,
                &issuer,
                &holder,
                &["given_name", "family_name"],
            ))
            .await
            .unwrap_or_else(|err| panic!("{case}: the npm wallet refused: {err}"));
            assert_eq!(answer["status"], 200, "{case}: {answer}");
            assert_eq!(answer["response_mode"], mode, "{case}");
            assert!(
                answer["client_id"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{prefix}:")),
                "{case}: {answer}"
            );

            let verified = session(&deployment, &acme, &made).await;
            assert_eq!(verified["status"], "verified", "{case}: {verified}");
            assert_eq!(verified["client_id"], answer["client_id"], "{case}");
            let claims = &verified["claims"]["identity"][0];
            assert_eq!(claims["given_name"], "Erika", "{case}: {verified}");
            assert_eq!(claims["family_name"], "Mustermann", "{case}: {verified}");
            assert_eq!(claims["vct"], VCT, "{case}: {verified}");
            assert!(claims.get("birthdate").is_none(), "{case}: {verified}");
        }
    }

    // The npm wallet withholds a claim the query requires: the verifier refuses the answer
    // in the OAuth error format and the session fails.
    let made = make_request(&deployment, &acme, "x509_san_dns", "direct_post.jwt").await;
    let answer = npm_wallet(wallet_input(
        &made,
        &anchor,
        &issuer,
        &holder,
        &["given_name"],
    ))
    .await
    .unwrap();
    assert_eq!(answer["status"], 400, "{answer}");
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
    let failed = session(&deployment, &acme, &made).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(failed.get("claims").is_none(), "{failed}");

    // A wallet that trusts another root refuses the verifier's Request Object; the verifier
    // saw it fetched and nothing answered.
    let made = make_request(&deployment, &acme, "x509_san_dns", "direct_post").await;
    let stranger = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let stranger_root = params.self_signed(&stranger).unwrap();
    let err = npm_wallet(wallet_input(
        &made,
        stranger_root.der(),
        &issuer,
        &holder,
        &["given_name", "family_name"],
    ))
    .await
    .unwrap_err();
    assert!(
        err["error"]
            .as_str()
            .is_some_and(|message| message.contains("trust anchor")),
        "{err}"
    );
    assert_eq!(
        session(&deployment, &acme, &made).await["status"],
        "retrieved"
    );

    deployment.close().await;
}
