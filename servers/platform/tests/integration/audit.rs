//! The platform's audit API over the tenants' KMS audit chains, on PostgreSQL: an operator
//! reads a tenant's records (paged and filtered) and verifies its chain; a tenant
//! administrator reads its own tenant's only; bad queries are refused; a record changed in
//! the database shows as a broken chain. In a split deployment the platform reads the chains
//! from the KMS server over gRPC, when the KMS names it among its audit readers, and (acting
//! as `as` and `did` there) issues operator tokens and onboards tenants through it.

use std::net::SocketAddr;
use std::sync::Arc;

use edk_core::SystemClock;
use edk_core::jose::Algorithm;
use edk_kms::KeyAlias;
use edk_kms::kms::{Caller, NewKey};
use edk_kms::provider::KeySpec;
use edk_kms_server::{KmsServer, KmsServerConfig};
use edk_server::Service as _;
use edk_server::service::start;
use edk_tenancy::TenantDirectory as _;
use edk_testkit::TestDb;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use edk_platform_server::operators::scope;

use crate::support::{Backend, Platform, service_key, software_kms};

const TENANTS: &str = "/api/platform/v1/tenants";

fn seqs(page: &Value) -> Vec<u64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn operators_and_tenant_admins_read_and_verify_audit_chains() {
    let platform = Platform::start(Backend::Postgres).await;
    let (_, ops) = platform.first_operator().await;
    let acme = platform.onboard(&ops, "acme").await;
    let globex = platform.onboard(&ops, "globex").await;
    let get = |token: String, path: String| {
        let platform = &platform;
        async move { platform.call(Method::GET, &path, Some(&token), None).await }
    };
    let events = |tenant: &str, query: &str| format!("{TENANTS}/{tenant}/audit/events{query}");

    // Onboarding made acme's default keys, through the KMS: its chain holds them, linked.
    let (status, all) = get(ops.clone(), events(&acme, "")).await;
    assert_eq!(status, 200, "{all}");
    let records = all["events"].as_array().unwrap().clone();
    assert!(records.len() >= 2, "{all}");
    assert!(all.get("next_after").is_none(), "{all}");
    assert_eq!(seqs(&all), (1..=records.len() as u64).collect::<Vec<_>>());
    for pair in records.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
    }
    let expected = |keep: &dyn Fn(&Value) -> bool| -> Vec<u64> {
        records
            .iter()
            .filter(|r| keep(r))
            .map(|r| r["seq"].as_u64().unwrap())
            .collect()
    };
    assert!(
        !expected(&|r| r["operation"] == "create_key" && r["alias"].is_string()).is_empty(),
        "{all}"
    );

    // Paging.
    let (_, first) = get(ops.clone(), events(&acme, "?limit=1")).await;
    assert_eq!(seqs(&first), [1]);
    assert_eq!(first["next_after"], 1);
    let (_, second) = get(ops.clone(), events(&acme, "?after=1&limit=1")).await;
    assert_eq!(seqs(&second), [2]);
    assert_eq!(second["events"][0], records[1]);

    // Filters: by operation, actor prefix, outcome and time.
    let (_, created) = get(ops.clone(), events(&acme, "?operation=create_key")).await;
    assert_eq!(
        seqs(&created),
        expected(&|r| r["operation"] == "create_key")
    );
    let (_, signed) = get(ops.clone(), events(&acme, "?operation=sign")).await;
    assert_eq!(seqs(&signed), expected(&|r| r["operation"] == "sign"));
    let actor = records[0]["actor"].as_str().unwrap().to_owned();
    let (_, by_actor) = get(ops.clone(), events(&acme, &format!("?actor={actor}"))).await;
    assert_eq!(
        seqs(&by_actor),
        expected(&|r| r["actor"].as_str().unwrap().starts_with(&actor))
    );
    assert!(seqs(&by_actor).contains(&1));
    let (_, by_other) = get(ops.clone(), events(&acme, "?actor=service:")).await;
    assert_eq!(
        seqs(&by_other),
        expected(&|r| r["actor"].as_str().unwrap().starts_with("service:"))
    );
    let (_, successes) = get(ops.clone(), events(&acme, "?outcome=success")).await;
    assert_eq!(seqs(&successes), expected(&|r| r["outcome"] == "success"));
    let (_, failures) = get(ops.clone(), events(&acme, "?outcome=failure")).await;
    assert_eq!(
        seqs(&failures),
        expected(&|r| r["outcome"].as_str().unwrap().starts_with("failure:"))
    );
    let (_, past) = get(ops.clone(), events(&acme, "?until=2000-01-01T00:00:00Z")).await;
    assert_eq!(seqs(&past), Vec::<u64>::new());
    let (_, since) = get(
        ops.clone(),
        events(&acme, "?since=2000-01-01T00:00:00Z&limit=1"),
    )
    .await;
    assert_eq!(seqs(&since), [1]);
    assert_eq!(since["next_after"], 1);

    // Bad queries are refused, naming the parameter.
    for (query, field) in [
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?outcome=maybe", "outcome"),
        ("?since=yesterday", "since"),
        ("?until=2030-13-01", "until"),
    ] {
        let (status, problem) = get(ops.clone(), events(&acme, query)).await;
        assert_eq!(status, 400, "{query}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("`{field}`")),
            "{query}: {problem}"
        );
    }
    let (status, _) = get(ops.clone(), events("not-a-tenant", "")).await;
    assert_eq!(status, 400);
    let (status, _) = get(
        ops.clone(),
        events("0190c6e4-5f1e-7a41-9d2b-2f6c1a9e8b11", ""),
    )
    .await;
    assert_eq!(status, 404);

    // Each tenant has a chain of its own.
    let (_, theirs) = get(ops.clone(), events(&globex, "")).await;
    let their_hashes: Vec<&Value> = theirs["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["hash"])
        .collect();
    assert!(!their_hashes.is_empty());
    assert!(records.iter().all(|r| !their_hashes.contains(&&r["hash"])));

    // Verification.
    let verify = |token: String, tenant: String| {
        let platform = &platform;
        async move {
            platform
                .call(
                    Method::POST,
                    &format!("{TENANTS}/{tenant}/audit/verify"),
                    Some(&token),
                    None,
                )
                .await
        }
    };
    let (status, report) = verify(ops.clone(), acme.clone()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["records"], records.len());

    // A tenant administrator: its own tenant's chain only, and only with the scope.
    let admin = platform
        .tenant_admin_token(&acme, scope::TENANT_AUDIT_READ)
        .await;
    let (status, own) = get(admin.clone(), events(&acme, "")).await;
    assert_eq!((status, seqs(&own)), (200, seqs(&all)));
    let (status, _) = verify(admin.clone(), acme.clone()).await;
    assert_eq!(status, 200);
    let (status, problem) = get(admin.clone(), events(&globex, "")).await;
    assert_eq!(status, 403, "{problem}");
    let (status, _) = verify(admin, globex.clone()).await;
    assert_eq!(status, 403);
    let config_only = platform
        .tenant_admin_token(&acme, scope::TENANT_CONFIG_READ)
        .await;
    let (status, problem) = get(config_only, events(&acme, "")).await;
    assert_eq!(status, 403, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("tenant:audit:read")
    );
    let (status, _) = platform
        .call(Method::GET, &events(&acme, ""), None, None)
        .await;
    assert_eq!(status, 401);

    // A record changed in acme's schema breaks acme's chain, not globex's.
    let pool = platform.database().unwrap().pool();
    let schema = acme.parse::<edk_core::TenantId>().unwrap().schema_name();
    let changed = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {schema}.kms_audit_event SET actor = 'mallory' WHERE seq = 2"
    )))
    .execute(&pool)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(changed, 1);
    pool.close().await;
    let (status, report) = verify(ops.clone(), acme).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["intact"], false, "{report}");
    assert_eq!(report["first_bad_seq"], 2, "{report}");
    assert_eq!(report["problem"], "hash_mismatch", "{report}");
    let (_, report) = verify(ops, globex).await;
    assert_eq!(report["intact"], true, "{report}");
    platform.close().await;
}

/// The platform on a remote KMS server whose audit readers are `readers`, both on one new
/// PostgreSQL database; tenant `acme` with one key made through the platform's KMS
/// connection, and a token of its administrator with `tenant:audit:read`.
async fn split(readers: &[&str]) -> (Platform, String, String, CancellationToken) {
    edk_server::install_crypto_provider();
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, platform_key) = service_key(dir.path(), "platform");
    let grpc: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let kms_config: KmsServerConfig = serde_json::from_value(json!({
        "database": {"backend": "postgres", "platform_url": db.url()},
        "kms": software_kms(),
        "grpc": {"listen": grpc, "audit_readers": readers,
            "auth": {"kind": "service_jwt", "audience": "edk-kms",
                "services": [{"name": "platform", "jwks": {"keys": [platform_key]},
                    "acts_as": ["as", "did"]}]}},
    }))
    .unwrap();
    let kms = start::<KmsServer>(&kms_config, Arc::new(SystemClock), reqwest::Client::new())
        .await
        .unwrap();
    let stop = CancellationToken::new();
    for task in kms.side_tasks(stop.clone()).await.unwrap() {
        tokio::spawn(task);
    }
    let platform = Platform::start_on(
        Some(db),
        json!({"mode": "remote", "endpoint": format!("http://{grpc}"), "timeout_millis": 5000,
            "auth": {"kind": "service_jwt", "service": "platform", "audience": "edk-kms",
                "key_file": dir.path().join("platform.jwk")}}),
    )
    .await;
    // A tenant with one key, made through the platform's KMS connection.
    let tenancy = platform.started.deps().tenancy().clone();
    let acme = tenancy
        .provision("acme".parse().unwrap(), "Acme")
        .await
        .unwrap()
        .id;
    let caller = Caller::new(tenancy.context(acme).await.unwrap(), "audit-test");
    let alias = KeyAlias::new("issuer", "audited").unwrap();
    platform
        .started
        .deps()
        .kms()
        .kms()
        .create_key(
            &caller,
            &NewKey::new(alias, KeySpec::signing(Algorithm::Es256)),
        )
        .await
        .unwrap();
    let acme = acme.to_string();
    // A tenant administrator's token: the operator authorization server is not needed here.
    let admin = platform
        .tenant_admin_token(&acme, scope::TENANT_AUDIT_READ)
        .await;
    let stopping = stop.clone();
    tokio::spawn(async move {
        stopping.cancelled().await;
        kms.shutdown().await;
        drop(dir);
    });
    (platform, admin, acme, stop)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_platform_reads_a_remote_kms_chain_as_its_audit_reader() {
    let (platform, admin, acme, stop) = split(&["platform"]).await;
    let (status, page) = platform
        .call(
            Method::GET,
            &format!("{TENANTS}/{acme}/audit/events?actor=service:platform/audit-test"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let records = page["events"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{page}");
    assert_eq!(records[0]["operation"], "create_key");
    assert_eq!(records[0]["alias"], "issuer.audited");
    let (status, report) = platform
        .call(
            Method::POST,
            &format!("{TENANTS}/{acme}/audit/verify"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["intact"], true, "{report}");
    assert!(report["records"].as_u64().unwrap() >= records.len() as u64);

    // The whole split deployment: the operator authorization server signs through the KMS
    // (the platform acts as `as` there), and a tenant onboarded through the API gets its
    // keys from the KMS, in its chain.
    let (status, operator) = platform.setup(&platform.setup_token()).await;
    assert_eq!(status, 201, "{operator}");
    let ops = platform
        .operator_token(&operator, &scope::ALL.join(" "))
        .await;
    let globex = platform.onboard(&ops, "globex").await;
    let (status, tenant) = platform
        .call(
            Method::GET,
            &format!("{TENANTS}/{globex}"),
            Some(&ops),
            None,
        )
        .await;
    assert_eq!(status, 200, "{tenant}");
    assert!(
        tenant["onboarding"]
            .as_array()
            .unwrap()
            .iter()
            .all(|step| step["state"] == "done"),
        "{tenant}"
    );
    let (status, page) = platform
        .call(
            Method::GET,
            &format!("{TENANTS}/{globex}/audit/events?actor=service:platform/"),
            Some(&ops),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let aliases: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["operation"] == "create_key")
        .filter_map(|r| r["alias"].as_str())
        .collect();
    assert!(aliases.contains(&"issuer.credential-signing"), "{page}");
    assert!(aliases.iter().any(|a| a.starts_with("as.")), "{page}");
    platform.close().await;
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_kms_that_names_no_audit_reader_makes_the_audit_api_unavailable() {
    let (platform, admin, acme, stop) = split(&[]).await;
    for (method, path) in [
        (Method::GET, format!("{TENANTS}/{acme}/audit/events")),
        (Method::POST, format!("{TENANTS}/{acme}/audit/verify")),
    ] {
        let (status, problem) = platform.call(method, &path, Some(&admin), None).await;
        assert_eq!(status, 503, "{path}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("grpc.audit_readers"),
            "{problem}"
        );
    }
    platform.close().await;
    stop.cancel();
}
