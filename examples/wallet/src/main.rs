//! `edk-wallet`: a command-line holder of SD-JWT VCs, written as an application embedding
//! EDK's crates would write one. `receive` takes an `openid-credential-offer://` URI and
//! obtains the credential over OpenID4VCI (pre-authorized code with a transaction code, a
//! DPoP-bound access token, a JWT key proof); `list` shows what the wallet holds; `present`
//! answers an `openid4vp://` request, verified against the verifier's certificate or DID,
//! disclosing only the claims its DCQL query asks for, with `direct_post` or
//! `direct_post.jwt`.
//!
//! Run with: `cargo run -p wallet -- receive '<offer URI>' --tx-code 123456` next to a
//! running `edk` (see this example's README.md).

mod http;
mod present;
mod receive;
mod store;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::store::{Store, StoredCredential};

/// A command-line wallet for SD-JWT VCs over OpenID4VCI and OpenID4VP. (No `Debug`: the
/// arguments hold the transaction code.)
#[derive(Parser)]
#[command(name = "edk-wallet", version, about)]
struct Args {
    /// The wallet's store (a JSON file holding its keys and credentials); by default
    /// `edk-wallet/wallet.json` under the user's data directory.
    #[arg(long, global = true, env = "EDK_WALLET_STORE")]
    store: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// What to do.
#[derive(Subcommand)]
enum Command {
    /// Obtains the credential of an offer (`openid-credential-offer://…`) and stores it.
    Receive {
        /// The offer URI, by value (`credential_offer`) or by reference
        /// (`credential_offer_uri`).
        offer: String,
        /// The transaction code the issuer gave you by another channel.
        #[arg(long)]
        tx_code: Option<String>,
    },
    /// Lists the stored credentials and their claims.
    List,
    /// Answers a presentation request (`openid4vp://…`) with the requested claims only.
    Present {
        /// The authorization request URI.
        request: String,
        /// A PEM file of certificates trusted for `x509_san_dns:` and `x509_hash:` verifiers
        /// (repeatable).
        #[arg(long = "trust-anchor", value_name = "PEM")]
        trust_anchors: Vec<PathBuf>,
        /// Sends the answer without asking.
        #[arg(long)]
        yes: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("edk-wallet: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    // reqwest's rustls (for https issuers and verifiers) uses the process's crypto provider.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let path = match args.store {
        Some(path) => path,
        None => store::default_path()?,
    };
    let mut store = Store::open(&path)?;
    let http = http::Http::new()?;
    let mut out = std::io::stdout().lock();
    match args.command {
        Command::Receive { offer, tx_code } => {
            receive::receive(&http, &mut store, &offer, tx_code.as_deref(), &mut out).await?;
        }
        Command::List => {
            if store.credentials().is_empty() {
                writeln!(out, "no credentials in {}", path.display())?;
            }
            for credential in store.credentials() {
                writeln!(out, "credential {}", credential.id)?;
                print_credential(credential, &mut out)?;
            }
        }
        Command::Present {
            request,
            trust_anchors,
            yes,
        } => {
            let options = present::Options { trust_anchors, yes };
            present::present(&http, &store, &request, &options, &mut out).await?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The credential's type, issuer and claims (those of the SD-JWT VC's own structure left out).
fn print_credential(
    credential: &StoredCredential,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    writeln!(out, "  type: {}", credential.vct)?;
    writeln!(out, "  issuer: {}", credential.issuer)?;
    for (name, value) in &credential.claims {
        if matches!(
            name.as_str(),
            "iss" | "vct" | "vct#integrity" | "cnf" | "iat" | "nbf" | "exp" | "status"
        ) {
            continue;
        }
        writeln!(out, "  {name}: {value}")?;
    }
    Ok(())
}
