//! Run with: cargo run -q -p edk-did --example did -- resolve DID
//!
//! did:webvh: `webvh-create --domain HOST [--path a/b] --out DIR`, `webvh-update --dir DIR
//! [--add-service ID,TYPE,URL] [--rotate]`, `webvh-deactivate --dir DIR`, and `resolve DID --log
//! DIR/did.jsonl` (offline).
//!
//! A command-line DID resolver: `resolve` prints the DID resolution result as JSON on stdout;
//! failures go to stderr with exit status 1.

mod cli;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(cli::run(cli, &mut std::io::stdout())));
    if let Err(err) = outcome {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
