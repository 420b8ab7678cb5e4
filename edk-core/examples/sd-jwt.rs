//! Run with: cargo run -q -p edk-core --example sd-jwt -- <command> [options]
//!
//! Issues, presents and verifies SD-JWT VCs from the command line. Keys are JWK files; the
//! result goes to stdout, errors to stderr with exit status 1.
//!
//! ```text
//! sd-jwt issue   --issuer-key ISS.jwk --holder-key HOLDER.jwk --vct URI --iss URI
//!                --claims CLAIMS.json --sd given_name,address.street_address,nationalities.0
//! sd-jwt present --sd-jwt FILE --holder-key HOLDER.jwk --disclose given_name --aud X --nonce N
//! sd-jwt verify  --sd-jwt FILE --issuer-jwk ISS_PUB.jwk [--aud X --nonce N]
//! ```
//!
//! Claim paths are dotted: `address.street_address` is a member of `address`, and a numeric
//! segment selects an array element by position, `nationalities.0` being the first element.
//! When presenting, positions count the elements the holder can see.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use async_trait::async_trait;
use edk_core::clock::{Clock as _, SystemClock};
use edk_core::jose::{JoseError, Jwk, KeyQuery, KeyResolver, SigningKey, VerifyingKey};
use edk_core::limits::Limits;
use edk_core::sd_jwt::{ClaimPath, IssueOptions, KeyBindingClaims, SdJwt};
use edk_core::sd_jwt_vc::{SdJwtVcBuilder, VcVerifyOptions};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            if writeln!(stdout, "{out}").is_err() {
                std::process::exit(1);
            }
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(1);
        }
    }
}

/// Runs one command and returns what it prints.
async fn run(args: &[String]) -> anyhow::Result<String> {
    let Some((command, rest)) = args.split_first() else {
        bail!("usage: sd-jwt issue|present|verify [options]");
    };
    let options = Options::parse(rest)?;
    let now = SystemClock.unix_seconds();
    match command.as_str() {
        "issue" => issue(&options, now).await,
        "present" => present(&options, now).await,
        "verify" => verify(&options, now).await,
        other => bail!("unknown command `{other}`"),
    }
}

async fn issue(options: &Options, now: i64) -> anyhow::Result<String> {
    let issuer = signing_key(options.required("issuer-key")?)?;
    let holder = read_jwk(options.required("holder-key")?)?;
    let claims: serde_json::Value = serde_json::from_str(&read(options.required("claims")?)?)
        .context("the claims file is not JSON")?;
    let serde_json::Value::Object(claims) = claims else {
        bail!("the claims file must hold a JSON object");
    };
    let mut builder = SdJwtVcBuilder::new(options.required("vct")?)
        .issuer(options.required("iss")?)
        .issued_at(now)
        .holder_key(&holder)
        .claims(claims);
    for path in options.paths("sd")? {
        builder = builder.selectively_disclose(path);
    }
    let issued = builder.issue(&issuer, &IssueOptions::default()).await?;
    Ok(issued.to_string())
}

async fn present(options: &Options, now: i64) -> anyhow::Result<String> {
    let sd_jwt = SdJwt::parse(&read(options.required("sd-jwt")?)?, &Limits::DEFAULT)?;
    let holder = signing_key(options.required("holder-key")?)?;
    let kb = KeyBindingClaims::new(options.required("aud")?, options.required("nonce")?, now);
    let presented = sd_jwt
        .present(&options.paths("disclose")?, Some((&kb, &holder)))
        .await?;
    Ok(presented.to_string())
}

async fn verify(options: &Options, now: i64) -> anyhow::Result<String> {
    let sd_jwt = SdJwt::parse(&read(options.required("sd-jwt")?)?, &Limits::DEFAULT)?;
    let key = VerifyingKey::from_jwk(&read_jwk(options.required("issuer-jwk")?)?)?;
    let mut verify_options = VcVerifyOptions::default();
    match (options.get("aud"), options.get("nonce")) {
        (Some(aud), Some(nonce)) => verify_options = verify_options.with_key_binding(aud, nonce),
        (None, None) => {}
        _ => bail!("--aud and --nonce go together"),
    }
    let verified = sd_jwt
        .verify_vc(&OneKey(Arc::new(key)), &verify_options, now)
        .await?;
    Ok(serde_json::to_string_pretty(verified.claims())?)
}

/// `--name value` pairs.
struct Options(HashMap<String, String>);

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut map = HashMap::new();
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let Some(name) = flag.strip_prefix("--") else {
                bail!("unexpected argument `{flag}`");
            };
            let value = args
                .next()
                .with_context(|| format!("--{name} needs a value"))?;
            map.insert(name.to_owned(), value.clone());
        }
        Ok(Self(map))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn required(&self, name: &str) -> anyhow::Result<&str> {
        self.get(name)
            .with_context(|| format!("--{name} is required"))
    }

    /// A comma-separated list of dotted claim paths; absent means none.
    fn paths(&self, name: &str) -> anyhow::Result<Vec<ClaimPath>> {
        self.get(name)
            .map(|list| {
                list.split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| p.parse().with_context(|| format!("bad claim path `{p}`")))
                    .collect()
            })
            .unwrap_or_else(|| Ok(Vec::new()))
    }
}

fn read(path: &str) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {path}"))?
        .trim()
        .to_owned())
}

fn read_jwk(path: &str) -> anyhow::Result<Jwk> {
    serde_json::from_str(&read(path)?).with_context(|| format!("{path} is not a JWK"))
}

fn signing_key(path: &str) -> anyhow::Result<SigningKey> {
    Ok(SigningKey::from_jwk(&read_jwk(path)?, None)?)
}

/// The one issuer key given on the command line, whatever `kid` the token names.
#[derive(Debug)]
struct OneKey(Arc<VerifyingKey>);

#[async_trait]
impl KeyResolver for OneKey {
    async fn resolve(&self, _query: &KeyQuery<'_>) -> Result<Arc<VerifyingKey>, JoseError> {
        Ok(Arc::clone(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use edk_core::jose::Algorithm;
    use serde_json::json;

    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    struct Files {
        _dir: tempfile::TempDir,
        issuer: String,
        issuer_pub: String,
        holder: String,
        claims: String,
        path: std::path::PathBuf,
    }

    fn files() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let issuer = SigningKey::generate(Algorithm::Es256).unwrap();
        let holder = SigningKey::generate(Algorithm::Es256).unwrap();
        let text = |jwk: Jwk| serde_json::to_string(&jwk).unwrap();
        Files {
            issuer: write(dir.path(), "iss.jwk", &text(issuer.to_jwk().unwrap())),
            issuer_pub: write(dir.path(), "iss_pub.jwk", &text(issuer.public_jwk())),
            holder: write(dir.path(), "holder.jwk", &text(holder.to_jwk().unwrap())),
            claims: write(
                dir.path(),
                "claims.json",
                &json!({
                    "given_name": "Erika",
                    "address": {"street": "Heidestraße 17", "city": "Köln"},
                    "nationalities": ["DE", "FR"],
                })
                .to_string(),
            ),
            path: dir.path().to_path_buf(),
            _dir: dir,
        }
    }

    async fn issued(files: &Files) -> String {
        let issued = run(&args(&[
            "issue",
            "--issuer-key",
            &files.issuer,
            "--holder-key",
            &files.holder,
            "--vct",
            "urn:example:id",
            "--iss",
            "https://issuer.example",
            "--claims",
            &files.claims,
            "--sd",
            "given_name,address,address.street,nationalities.0",
        ]))
        .await
        .unwrap();
        write(&files.path, "issued.txt", &issued)
    }

    #[tokio::test]
    async fn issue_present_verify_end_to_end() {
        let files = files();
        let issued = issued(&files).await;
        let out = run(&args(&[
            "verify",
            "--sd-jwt",
            &issued,
            "--issuer-jwk",
            &files.issuer_pub,
        ]))
        .await
        .unwrap();
        let claims: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(claims["address"]["street"], "Heidestraße 17");
        assert_eq!(claims["nationalities"], json!(["DE", "FR"]));

        let presented = run(&args(&[
            "present",
            "--sd-jwt",
            &issued,
            "--holder-key",
            &files.holder,
            "--disclose",
            "address.street",
            "--aud",
            "https://v.example",
            "--nonce",
            "n1",
        ]))
        .await
        .unwrap();
        let presented = write(&files.path, "presented.txt", &presented);
        let out = run(&args(&[
            "verify",
            "--sd-jwt",
            &presented,
            "--issuer-jwk",
            &files.issuer_pub,
            "--aud",
            "https://v.example",
            "--nonce",
            "n1",
        ]))
        .await
        .unwrap();
        let claims: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            claims["address"],
            json!({"street": "Heidestraße 17", "city": "Köln"})
        );
        assert_eq!(claims["nationalities"], json!(["FR"]));
        assert!(claims.get("given_name").is_none());
        assert_eq!(claims["vct"], "urn:example:id");
    }

    #[tokio::test]
    async fn failures_are_errors() {
        let files = files();
        let issued = issued(&files).await;
        // Key binding required but absent, and the wrong nonce.
        assert!(
            run(&args(&[
                "verify",
                "--sd-jwt",
                &issued,
                "--issuer-jwk",
                &files.issuer_pub,
                "--aud",
                "a",
                "--nonce",
                "n",
            ]))
            .await
            .is_err()
        );
        // Another issuer key.
        assert!(
            run(&args(&[
                "verify",
                "--sd-jwt",
                &issued,
                "--issuer-jwk",
                &files.holder
            ]))
            .await
            .is_err()
        );
        assert!(run(&args(&["frobnicate"])).await.is_err());
        assert!(run(&args(&["issue", "--vct"])).await.is_err());
        assert!(
            run(&args(&[
                "issue",
                "--issuer-key",
                &files.issuer,
                "--holder-key",
                &files.holder,
                "--vct",
                "v",
                "--iss",
                "https://i",
                "--claims",
                &files.claims,
                "--sd",
                "missing",
            ]))
            .await
            .is_err()
        );
    }
}
