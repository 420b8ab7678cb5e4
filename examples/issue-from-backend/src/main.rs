//! `issue-from-backend`: what a backend does to hand a person a credential through EDK's
//! OpenID4VCI issuer. It calls the issuer's admin API (`/api/oid4vci/v1`) of a running `edk`
//! with an admin token: stores the credential configuration when it is missing, makes an offer
//! with the person's claims and a transaction code, prints the `openid-credential-offer://`
//! URI as a QR code in the terminal, and polls the issuance session until the wallet has the
//! credential (or the session fails, is cancelled or lapses). Ctrl-C cancels the session.
//!
//! Run with: `cargo run -p issue-from-backend -- --claim given_name=Erika` next to a running
//! `edk` (see this example's README.md).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use edk_core::{Clock as _, SystemClock};
use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Offers a credential to a person through EDK's issuer and waits until their wallet has it.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where `edk` (or `edk-issuer`) serves its admin API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    edk_url: String,
    /// An admin token with scopes `oid4vci:read` and `oid4vci:write` (its `tenant` claim picks
    /// the tenant); read from `--token-file` when absent.
    #[arg(long, env = "EDK_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A file holding the admin token: by default the bootstrap token `edk` wrote on its
    /// first start.
    #[arg(long, default_value = ".edk/bootstrap-token")]
    token_file: PathBuf,
    /// The credential configuration to offer; stored (an SD-JWT VC of type `--vct`) when the
    /// issuer does not have it yet.
    #[arg(long, default_value = "identity")]
    configuration: String,
    /// The `vct` of the configuration when it is created here.
    #[arg(long, default_value = "https://credentials.example.com/identity")]
    vct: String,
    /// A claim of the person, `NAME=VALUE` (repeatable).
    #[arg(long = "claim", value_name = "NAME=VALUE", required = true, value_parser = parse_claim)]
    claims: Vec<(String, String)>,
    /// Digits of the transaction code the person types into the wallet (4 to 10); 0 for none.
    #[arg(long, default_value_t = 6)]
    tx_code_digits: u8,
    /// What the wallet tells the person about the transaction code.
    #[arg(
        long,
        default_value = "the code shown by the clerk who made this offer"
    )]
    tx_code_description: String,
    /// Your reference for the session (unique in the tenant), e.g. the person's record id.
    #[arg(long)]
    correlation_id: Option<String>,
    /// Put a short `credential_offer_uri` into the QR code instead of the whole offer (the
    /// wallet fetches the offer once).
    #[arg(long)]
    by_reference: bool,
    /// How often to ask for the session's status, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    poll_interval_ms: u64,
}

/// `NAME=VALUE`.
fn parse_claim(claim: &str) -> Result<(String, String), String> {
    match claim.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("{claim:?} is not NAME=VALUE")),
    }
}

/// What `POST /offers` answers.
#[derive(Debug, Deserialize)]
struct Offer {
    session_id: String,
    credential_offer_uri: String,
    tx_code: Option<String>,
    expires_at: i64,
}

/// What `GET /sessions/{id}` answers (the part used here).
#[derive(Debug, Deserialize)]
struct Session {
    status: String,
}

/// The issuer's admin API, called with an admin token.
#[derive(Debug)]
struct IssuerAdmin {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl IssuerAdmin {
    /// `method path` with `body`: the status and the JSON answered (`null` when none).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(reqwest::StatusCode, Value)> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = response.status();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// Like [`Self::call`], failing unless the status is `expected`.
    async fn expect(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        expected: reqwest::StatusCode,
    ) -> anyhow::Result<Value> {
        let (status, answer) = self.call(method.clone(), path, body).await?;
        if status != expected {
            bail!("{method} {path}: {status}: {}", problem(&answer));
        }
        Ok(answer)
    }
}

/// An RFC 9457 problem's title and detail.
fn problem(body: &Value) -> String {
    let title = body["title"].as_str().unwrap_or("error");
    match body["detail"].as_str() {
        Some(detail) => format!("{title}: {detail}"),
        None => title.to_owned(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    // reqwest's rustls (for an https `--edk-url`) uses the process's crypto provider.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let token = match args.token.clone() {
        Some(token) => token,
        None => std::fs::read_to_string(&args.token_file)
            .with_context(|| {
                format!(
                    "no --token or EDK_ADMIN_TOKEN, and cannot read {}",
                    args.token_file.display()
                )
            })?
            .trim()
            .to_owned(),
    };
    let admin = IssuerAdmin {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        base: format!("{}/api/oid4vci/v1", args.edk_url.trim_end_matches('/')),
        token,
    };
    let mut out = std::io::stdout().lock();

    ensure_configuration(&admin, &args, &mut out).await?;
    let offer = create_offer(&admin, &args).await?;

    // The QR code for the wallet's camera, then the same offer as text.
    let qr = QrCode::new(offer.credential_offer_uri.as_bytes())
        .context("the offer is too long for a QR code: try --by-reference")?;
    writeln!(out, "{}", render_qr(&qr))?;
    writeln!(out, "offer: {}", offer.credential_offer_uri)?;
    if let Some(code) = &offer.tx_code {
        // Shown once by the issuer: give it to the person by another channel than the QR code.
        writeln!(out, "transaction code: {code}")?;
    }
    writeln!(out, "session: {}", offer.session_id)?;
    out.flush()?;

    let interval = Duration::from_millis(args.poll_interval_ms.max(100));
    let outcome = tokio::select! {
        outcome = wait_for_wallet(&admin, &offer, interval, &mut out) => outcome?,
        _ = tokio::signal::ctrl_c() => {
            admin
                .expect(
                    reqwest::Method::POST,
                    &format!("/sessions/{}/cancel", offer.session_id),
                    None,
                    reqwest::StatusCode::NO_CONTENT,
                )
                .await?;
            writeln!(out, "status: cancelled")?;
            Outcome::Stopped
        }
    };
    out.flush()?;
    Ok(match outcome {
        Outcome::Issued => ExitCode::SUCCESS,
        Outcome::Stopped => ExitCode::FAILURE,
    })
}

/// Stores the configuration unless the issuer has it.
async fn ensure_configuration(
    admin: &IssuerAdmin,
    args: &Args,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let path = format!("/configurations/{}", args.configuration);
    let (status, body) = admin.call(reqwest::Method::GET, &path, None).await?;
    match status {
        reqwest::StatusCode::OK => {
            writeln!(out, "using credential configuration {}", args.configuration)?;
            return Ok(());
        }
        reqwest::StatusCode::NOT_FOUND => {}
        _ => bail!("GET {path}: {status}: {}", problem(&body)),
    }
    // An SD-JWT VC bound to a key of the wallet, each claim selectively disclosable.
    let claims: Vec<Value> = args
        .claims
        .iter()
        .map(|(name, _)| json!({ "path": [name] }))
        .collect();
    let configuration = json!({
        "configuration": {
            "format": "dc+sd-jwt",
            "vct": args.vct,
            "cryptographic_binding_methods_supported": ["jwk"],
            "credential_signing_alg_values_supported": ["ES256"],
            "proof_types_supported": { "jwt": { "proof_signing_alg_values_supported": ["ES256"] } },
            "credential_metadata": { "claims": claims },
        },
        "settings": { "lifetime_secs": 365 * 86_400 },
    });
    admin
        .expect(
            reqwest::Method::PUT,
            &path,
            Some(&configuration),
            reqwest::StatusCode::OK,
        )
        .await?;
    writeln!(
        out,
        "created credential configuration {}",
        args.configuration
    )?;
    Ok(())
}

/// Makes the offer of the configuration with the person's claims.
async fn create_offer(admin: &IssuerAdmin, args: &Args) -> anyhow::Result<Offer> {
    let claims: Map<String, Value> = args
        .claims
        .iter()
        .map(|(name, value)| (name.clone(), Value::String(value.clone())))
        .collect();
    let mut body = json!({
        "credential_configuration_ids": [args.configuration],
        "claims": { args.configuration.as_str(): claims },
        "by_reference": args.by_reference,
    });
    if args.tx_code_digits > 0 {
        body["tx_code"] = json!({
            "digits": args.tx_code_digits,
            "description": args.tx_code_description,
        });
    }
    if let Some(correlation_id) = &args.correlation_id {
        body["correlation_id"] = json!(correlation_id);
    }
    let offer = admin
        .expect(
            reqwest::Method::POST,
            "/offers",
            Some(&body),
            reqwest::StatusCode::CREATED,
        )
        .await?;
    serde_json::from_value(offer).context("the issuer answered an offer of another shape")
}

/// How the wait ended.
#[derive(Debug)]
enum Outcome {
    /// The wallet has the credential.
    Issued,
    /// The session failed, was cancelled or lapsed.
    Stopped,
}

/// Polls the session, printing each status it takes, until the credential is issued or the
/// session ends otherwise (or lapses unfinished).
async fn wait_for_wallet(
    admin: &IssuerAdmin,
    offer: &Offer,
    interval: Duration,
    out: &mut impl std::io::Write,
) -> anyhow::Result<Outcome> {
    let path = format!("/sessions/{}", offer.session_id);
    let mut last = String::new();
    loop {
        let session: Session = serde_json::from_value(
            admin
                .expect(reqwest::Method::GET, &path, None, reqwest::StatusCode::OK)
                .await?,
        )?;
        if session.status != last {
            writeln!(out, "status: {}", session.status)?;
            out.flush()?;
            last.clone_from(&session.status);
        }
        match session.status.as_str() {
            // `notified`: the wallet has also acknowledged it.
            "credential_issued" | "notified" => return Ok(Outcome::Issued),
            "failed" | "expired" | "cancelled" => return Ok(Outcome::Stopped),
            // `offered`, `token_issued`, `deferred`: the wallet is on its way.
            _ => {}
        }
        if SystemClock.unix_seconds() > offer.expires_at && session.status == "offered" {
            // The issuer's housekeeping marks it `expired` later; the code no longer works.
            writeln!(out, "status: expired")?;
            return Ok(Outcome::Stopped);
        }
        tokio::time::sleep(interval).await;
    }
}

/// The QR code as text: two rows of modules per line, dark on light, with a quiet zone.
fn render_qr(qr: &QrCode) -> String {
    qr.render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build()
}
