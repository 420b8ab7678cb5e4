//! The `did` example's command line, run in process (the same module the example compiles).

use clap::Parser;

use crate::did_cli::{Cli, run};

async fn run_args(args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let cli = Cli::try_parse_from(std::iter::once("did").chain(args.iter().copied()))?;
    let mut out = Vec::new();
    run(cli, &mut out).await?;
    Ok(serde_json::from_slice(&out)?)
}

#[tokio::test]
async fn resolve_prints_the_resolution_result() {
    let did = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";
    let result = run_args(&["resolve", did]).await.unwrap();
    assert_eq!(result["didDocument"]["id"], did);
    assert_eq!(
        result["didResolutionMetadata"]["contentType"],
        "application/did"
    );
    let result = run_args(&["resolve", did, "--accept", "application/did+json"])
        .await
        .unwrap();
    assert!(result["didDocument"].get("@context").is_none());
}

#[tokio::test]
async fn resolve_failures_are_errors_with_the_result() {
    let err = run_args(&["resolve", "did:example:1", "--legacy-errors"])
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains(r#""error":"methodNotSupported""#), "{text}");
    assert!(
        text.contains("DID method `example` is not supported"),
        "{text}"
    );
    let err = run_args(&["resolve", "did:key:zzz"]).await.unwrap_err();
    assert!(format!("{err:#}").contains("INVALID_DID"), "{err:#}");
    let err = run_args(&["resolve", "did:key:z6Mk", "--log", "did.jsonl"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("only for did:webvh"), "{err}");
    let err = run_args(&["frobnicate"]).await.unwrap_err();
    let clap = err.downcast_ref::<clap::Error>().unwrap();
    assert_eq!(
        clap.kind(),
        clap::error::ErrorKind::InvalidSubcommand,
        "{err:#}"
    );
}

async fn run_text(args: &[&str]) -> anyhow::Result<String> {
    let cli = Cli::try_parse_from(std::iter::once("did").chain(args.iter().copied()))?;
    let mut out = Vec::new();
    run(cli, &mut out).await?;
    Ok(String::from_utf8(out)?.trim_end().to_owned())
}

#[tokio::test]
async fn webvh_create_update_rotate_deactivate_and_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("did");
    let out_arg = out.to_str().unwrap();
    let did = run_text(&[
        "webvh-create",
        "--domain",
        "example.com",
        "--path",
        "dids/a",
        "--out",
        out_arg,
    ])
    .await
    .unwrap();
    assert!(
        did.starts_with("did:webvh:Qm") && did.ends_with(":example.com:dids:a"),
        "{did}"
    );
    let key_before = std::fs::read_to_string(out.join("key.jwk")).unwrap();

    let v2 = run_text(&[
        "webvh-update",
        "--dir",
        out_arg,
        "--add-service",
        "#x,LinkedDomains,https://x.example",
    ])
    .await
    .unwrap();
    assert!(v2.starts_with("2-"), "{v2}");
    let v3 = run_text(&["webvh-update", "--dir", out_arg, "--rotate"])
        .await
        .unwrap();
    assert!(v3.starts_with("3-"), "{v3}");
    assert_ne!(
        std::fs::read_to_string(out.join("key.jwk")).unwrap(),
        key_before
    );

    let log = out.join("did.jsonl");
    let log_arg = log.to_str().unwrap();
    let resolved = run_args(&["resolve", &did, "--log", log_arg, "--version-number", "2"])
        .await
        .unwrap();
    assert_eq!(resolved["didDocumentMetadata"]["versionId"], v2);
    assert_eq!(resolved["didDocument"]["service"][0]["id"], "#x");
    let latest = run_args(&["resolve", &did, "--log", log_arg])
        .await
        .unwrap();
    assert_eq!(latest["didDocumentMetadata"]["versionId"], v3);

    let web = run_args(&["webvh-did-web", "--dir", out_arg])
        .await
        .unwrap();
    assert_eq!(web["id"], "did:web:example.com:dids:a");

    run_text(&["webvh-deactivate", "--dir", out_arg])
        .await
        .unwrap();
    let resolved = run_args(&["resolve", &did, "--log", log_arg])
        .await
        .unwrap();
    assert_eq!(resolved["didDocumentMetadata"]["deactivated"], true);
    assert!(resolved["didDocument"].is_null());

    let err = run_text(&["webvh-update", "--dir", out_arg])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("deactivated"), "{err}");
    let other = did.replace(":dids:a", ":dids:b");
    let err = run_args(&["resolve", &other, "--log", log_arg])
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("INVALID_DID") || format!("{err:#}").contains("NOT_FOUND"),
        "{err:#}"
    );
}

#[tokio::test]
async fn webvh_pre_rotation_updates_move_to_the_committed_key() {
    let dir = tempfile::tempdir().unwrap();
    let out_arg = dir.path().to_str().unwrap();
    let did = run_text(&[
        "webvh-create",
        "--domain",
        "example.com",
        "--pre-rotation",
        "--out",
        out_arg,
    ])
    .await
    .unwrap();
    let next = std::fs::read_to_string(dir.path().join("next-key.jwk")).unwrap();
    run_text(&[
        "webvh-update",
        "--dir",
        out_arg,
        "--also-known-as",
        "https://a.example",
    ])
    .await
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("key.jwk")).unwrap(),
        next
    );
    run_text(&["webvh-deactivate", "--dir", out_arg])
        .await
        .unwrap();
    let log = dir.path().join("did.jsonl");
    let resolved = run_args(&["resolve", &did, "--log", log.to_str().unwrap()])
        .await
        .unwrap();
    assert_eq!(resolved["didDocumentMetadata"]["deactivated"], true);
}
