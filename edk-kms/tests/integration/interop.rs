//! Cross-checks with PyPI `jwcrypto` (pinned in interop/python): our alias signatures verify
//! there, and JWEs it encrypts to our alias's public key decrypt here.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use edk_core::jose::jwe::{ContentEncryption, KeyManagement};
use edk_core::jose::{Algorithm, Header, jws};
use edk_kms::provider::KeySpec;
use edk_kms::{KeyAlias, KeyRef, Kms, NewKey};
use serde_json::{Value, json};

use crate::support::{Backend, env};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("edk-kms sits in the workspace")
        .to_path_buf()
}

/// Runs a script of `interop/python/` in the interop virtualenv (which `scripts/test`
/// installs) with `request` on stdin, and parses its JSON answer.
fn python(script: &str, request: &Value) -> Value {
    let root = workspace_root();
    let interpreter = root.join("target/interop/venv/bin/python");
    assert!(
        interpreter.exists(),
        "{} is missing: run scripts/test, which installs the interop peers",
        interpreter.display()
    );
    let mut child = Command::new(&interpreter)
        .arg(script)
        .current_dir(root.join("interop/python"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{script} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwcrypto_verifies_alias_signatures() {
    let env = env(Backend::Sqlite).await;
    for alg in [
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::Es256K,
        Algorithm::EdDsa,
        Algorithm::Rs256,
        Algorithm::Ps256,
    ] {
        let alias = KeyAlias::new(
            "issuer",
            &format!("jws-{}", alg.name().to_ascii_lowercase()),
        )
        .unwrap();
        env.kms
            .create_key(&env.a, &NewKey::new(alias.clone(), KeySpec::signing(alg)))
            .await
            .unwrap();
        let signer = env.kms.signer(&env.a, &alias).await.unwrap();
        let kid = signer.kid().unwrap().as_str().to_owned();
        let token = jws::sign(
            Header::new(alg).with_typ("JWT").with_kid(&kid),
            br#"{"iss":"https://issuer.example"}"#,
            &*signer,
        )
        .await
        .unwrap();
        let jwk = env
            .kms
            .public_key(&env.a, &KeyRef::Alias(alias))
            .await
            .unwrap();
        let answer = python("jws.py", &json!({ "verify": token, "jwk": jwk }));
        assert_eq!(
            answer["payload"], r#"{"iss":"https://issuer.example"}"#,
            "{alg}"
        );
        assert_eq!(answer["protectedHeader"]["kid"], kid.as_str(), "{alg}");
        let thumbprint = python("jws.py", &json!({ "thumbprint": jwk }));
        assert_eq!(
            thumbprint["thumbprint"],
            kid.as_str(),
            "{alg}: kid is the RFC 7638 thumbprint"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_decrypt_jwcrypto_jwes_to_alias_keys() {
    let env = env(Backend::Sqlite).await;
    for alg in KeyManagement::ALL {
        let alias = KeyAlias::new(
            "verifier",
            &format!("jwe-{}", alg.name().to_ascii_lowercase().replace('+', "-")),
        )
        .unwrap();
        env.kms
            .create_key(
                &env.a,
                &NewKey::new(alias.clone(), KeySpec::decryption(alg)),
            )
            .await
            .unwrap();
        let jwk = env
            .kms
            .public_key(&env.a, &KeyRef::Alias(alias.clone()))
            .await
            .unwrap();
        for enc in [ContentEncryption::A128Gcm, ContentEncryption::A256Gcm] {
            let answer = python(
                "jwe.py",
                &json!({ "encrypt": "from jwcrypto", "jwk": jwk, "alg": alg.name(), "enc": enc.name() }),
            );
            let token = answer["token"].as_str().unwrap();
            let plaintext = env.kms.decrypt(&env.a, &alias, token).await.unwrap();
            assert_eq!(
                plaintext.as_slice(),
                b"from jwcrypto",
                "{} {}",
                alg.name(),
                enc.name()
            );
            // The other tenant cannot.
            let err = env.kms.decrypt(&env.b, &alias, token).await.unwrap_err();
            assert!(
                matches!(&err, edk_kms::Error::AliasNotFound { alias: missing } if *missing == alias),
                "{err:?}"
            );
        }
    }
}
