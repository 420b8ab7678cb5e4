//! After the suite, a dump of every table of the tenant's schema (PostgreSQL) or the tenant's
//! file (SQLite, raw bytes including the WAL) holds no private key material: not the private
//! JWK `d` values nor the PKCS#8 bytes of keys we imported, in any common encoding.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use edk_core::jose::jwk::PrivateParams;
use edk_core::jose::{Algorithm, SigningKey};
use edk_kms::provider::KeySpec;
use edk_kms::testkit::{KmsSuiteConfig, kms_suite};
use edk_kms::{KeyAlias, KeyRef, Kms};
use sqlx::AssertSqlSafe;

use crate::support::{Backend, Env, env};

/// Secrets of keys imported into tenant A, as the byte strings that must not appear.
/// Also returns the kids, which must appear (they show that the search can find things).
async fn import_known_keys(env: &Env) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut needles = Vec::new();
    let mut controls = Vec::new();
    for alg in [
        Algorithm::Es256,
        Algorithm::EdDsa,
        Algorithm::Rs256,
        Algorithm::Es256K,
    ] {
        let key = SigningKey::generate(alg).unwrap();
        let private = key.to_jwk().unwrap();
        let d = match private.private().unwrap() {
            PrivateParams::Ec { d } | PrivateParams::Okp { d } => d.to_vec(),
            PrivateParams::Rsa(rsa) => rsa.d.to_vec(),
            _ => unreachable!(),
        };
        let alias = KeyAlias::new("imported", &alg.name().to_ascii_lowercase()).unwrap();
        env.kms
            .import_key(&env.a, &alias, &KeySpec::signing(alg), &private, None)
            .await
            .unwrap();
        env.kms.sign(&env.a, &alias, b"m").await.unwrap();
        // Rotate and destroy the imported version: its tombstone must not keep it either.
        env.kms.rotate(&env.a, &alias).await.unwrap();
        let kid = edk_core::Kid::new(private.thumbprint()).unwrap();
        controls.push(kid.as_str().as_bytes().to_vec());
        env.kms.delete_key(&env.a, &KeyRef::Kid(kid)).await.unwrap();
        let pkcs8 = key.to_pkcs8_der().unwrap().to_vec();
        for secret in [d, pkcs8] {
            needles.push(secret[secret.len() - 16..].to_vec());
            needles.push(URL_SAFE_NO_PAD.encode(&secret).as_bytes()[8..32].to_vec());
            needles.push(STANDARD.encode(&secret).as_bytes()[8..32].to_vec());
        }
    }
    (needles, controls)
}

async fn dump(env: &Env) -> Vec<u8> {
    match (&env.db, &env.dir) {
        (Some(db), _) => {
            let pool = db.pool();
            let schema = env.a.tenant().id().schema_name();
            let tables: Vec<(String,)> = sqlx::query_as(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
            )
            .bind(&schema)
            .fetch_all(&pool)
            .await
            .unwrap();
            assert!(tables.iter().any(|(t,)| t == "key_reference"));
            let mut out = Vec::new();
            for (table,) in tables {
                let rows: Vec<(String,)> = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT row_to_json(t)::text FROM {schema}.{table} t"
                )))
                .fetch_all(&pool)
                .await
                .unwrap();
                for (row,) in rows {
                    out.extend_from_slice(row.as_bytes());
                    out.push(b'\n');
                }
            }
            out
        }
        (None, Some(dir)) => {
            let file = dir
                .path()
                .join("tenants")
                .join(format!("{}.db", env.a.tenant().id().as_uuid().simple()));
            let mut out = std::fs::read(&file).unwrap();
            if let Ok(wal) = std::fs::read(file.with_extension("db-wal")) {
                out.extend(wal);
            }
            out
        }
        _ => unreachable!(),
    }
}

async fn no_private_key_material_in_the_database(backend: Backend) {
    let env = env(backend).await;
    let kms: Arc<dyn Kms> = Arc::new(env.kms.clone());
    kms_suite(
        kms,
        &env.a,
        &env.b,
        &KmsSuiteConfig::default().with_concurrent_rotations(4),
    )
    .await;
    let (needles, controls) = import_known_keys(&env).await;
    env.kms.shutdown().await;
    let dump = dump(&env).await;
    assert!(dump.len() > 1000, "the dump has content");
    for control in controls {
        assert!(
            dump.windows(control.len()).any(|w| w == control.as_slice()),
            "the kids are in the {backend:?} dump"
        );
    }
    for needle in needles {
        assert!(
            !dump.windows(needle.len()).any(|w| w == needle.as_slice()),
            "private key material found in the {backend:?} dump"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_private_key_material_in_the_sqlite_file() {
    no_private_key_material_in_the_database(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_private_key_material_in_the_postgres_schema() {
    no_private_key_material_in_the_database(Backend::Postgres).await;
}
