//! Adversarial routing: no request resolves to a tenant it is not bound for.

use edk_core::{IdError, TenantId, TenantSlug};
use edk_tenancy::error::BindingError;
use edk_tenancy::testkit::{self, bind_issuer};
use edk_tenancy::{
    DatabaseConfig, EndpointBinding, EndpointRequest, EndpointScheme, ResolveError, ServiceType,
    TenancyOptions, TenantDirectory, WellKnownLayout,
};
use edk_testkit::TestDb;

use crate::{build, clock, postgres, sqlite};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adversarial_hosts_and_paths_never_reach_the_wrong_tenant() {
    let dir = edk_testkit::temp_dir();
    let tenancy = build(testkit::builder(sqlite(dir.path()), clock())).await;
    let mut ids = std::collections::HashMap::new();
    for slug in ["acme", "beta", "gamma", "delta", "port"] {
        let tenant = tenancy
            .provision(TenantSlug::new(slug).unwrap(), slug)
            .await
            .unwrap();
        ids.insert(tenant.id, slug);
    }
    let id = |slug: &str| *ids.iter().find(|(_, s)| **s == slug).unwrap().0;
    bind_issuer(&tenancy, id("acme"), "shared.example", "/acme").await;
    bind_issuer(&tenancy, id("beta"), "shared.example", "/beta").await;
    bind_issuer(&tenancy, id("gamma"), "gamma.example", "").await;
    bind_issuer(&tenancy, id("delta"), "bücher.example", "/d").await;
    let on_port = EndpointBinding::new(
        id("port"),
        ServiceType::Issuer,
        "shared.example",
        Some(8443),
        "/acme",
        WellKnownLayout::Inserted,
    )
    .unwrap();
    tenancy.bind(&on_port).await.unwrap();

    let long_label = format!("{}.example", "a".repeat(64));
    let long_host = format!("{}gamma.example", "a.".repeat(130));
    #[rustfmt::skip]
    let matrix: Vec<(&str, Option<u16>, &str, Option<&str>)> = vec![
        ("shared.example", None, "/acme/credential", Some("acme")),
        ("shared.example", None, "/beta/credential", Some("beta")),
        ("shared.example", Some(443), "/acme", Some("acme")),
        ("shared.example", Some(8443), "/acme/credential", Some("port")),
        ("shared.example", Some(8443), "/beta/credential", None),
        ("shared.example", Some(80), "/acme", None),
        ("SHARED.Example.", None, "/acme/x", Some("acme")),
        ("shared.example", None, "/.well-known/openid-credential-issuer/acme", Some("acme")),
        ("shared.example", None, "/acme/.well-known/openid-credential-issuer", Some("acme")),
        ("shared.example", None, "/.well-known/openid-credential-issuer/acme/beta", None),
        ("shared.example", None, "/.well-known/openid-credential-issuer", None),
        ("shared.example", None, "/gamma/credential", None),
        ("shared.example", None, "/", None),
        ("shared.example", None, "", None),
        ("shared.example", None, "/acmebeta", None),
        ("shared.example", None, "/acme-beta", None),
        ("shared.example", None, "/ACME/credential", None),
        ("shared.example", None, "/Acme", None),
        ("shared.example", None, "/acme/../beta/credential", None),
        ("shared.example", None, "/beta/../acme", None),
        ("shared.example", None, "/./acme", None),
        ("shared.example", None, "/acme/%2e%2e/beta", None),
        ("shared.example", None, "/acme%2Fbeta", None),
        ("shared.example", None, "/acme%2fbeta/x", None),
        ("shared.example", None, "/acme%5Cbeta", None),
        ("shared.example", None, "/acme\\beta", None),
        ("shared.example", None, "/acme%00", None),
        ("shared.example", None, "//acme", None),
        ("shared.example", None, "/acme;beta", None),
        ("shared.example", None, "/%62eta/x", Some("beta")),
        ("shared.example", None, "/acme?x=/beta", Some("acme")),
        ("shared.example", None, "/beta#/acme", Some("beta")),
        ("shared.example", None, "acme", None),
        ("gamma.example", None, "/acme/credential", Some("gamma")),
        ("gamma.example", None, "/", Some("gamma")),
        ("gamma.example", None, "/.well-known/openid-credential-issuer", Some("gamma")),
        ("gamma.example.", None, "/x", Some("gamma")),
        ("gamma.example..", None, "/x", None),
        ("gamma.example:443", None, "/x", None),
        ("gamma.example", Some(8443), "/x", None),
        ("xgamma.example", None, "/x", None),
        ("gamma.example.evil", None, "/x", None),
        ("evil.gamma.example", None, "/x", None),
        ("gamma.example@shared.example", None, "/acme", None),
        ("shared.example/acme", None, "/", None),
        ("gаmma.example", None, "/", None),
        ("ｇａｍｍａ.example", None, "/", Some("gamma")),
        ("bücher.example", None, "/d/x", Some("delta")),
        ("BÜCHER.example", None, "/d/x", Some("delta")),
        ("xn--bcher-kva.example", None, "/d/x", Some("delta")),
        ("bucher.example", None, "/d/x", None),
        ("127.0.0.1", None, "/acme", None),
        ("[::1]", None, "/acme", None),
        ("[::ffff:127.0.0.1]", None, "/", None),
        ("0x7f.0.0.1", None, "/", None),
        ("", None, "/acme", None),
        (&long_label, None, "/", None),
        (&long_host, None, "/", None),
        ("shared.example\0", None, "/acme", None),
        ("shared .example", None, "/acme", None),
    ];
    for (host, port, path, expected) in matrix {
        let request = EndpointRequest::new("https", host, port, path);
        let got = tenancy.resolve(ServiceType::Issuer, &request).await;
        let got_slug = got.as_ref().ok().map(|r| ids[&r.context.id()]);
        assert_eq!(got_slug, expected, "{host:?} {port:?} {path:?}: {got:?}");
        if let Err(err) = got {
            for slug in ids.values() {
                assert!(
                    !err.to_string().contains(slug),
                    "error names a tenant: {err}"
                );
            }
        }
    }
    let other_service = tenancy
        .resolve(
            ServiceType::Verifier,
            &EndpointRequest::new("https", "shared.example", None, "/acme"),
        )
        .await;
    assert!(matches!(other_service, Err(ResolveError::NotBound)));
    let plain_http = tenancy
        .resolve(
            ServiceType::Issuer,
            &EndpointRequest::new("http", "shared.example", None, "/acme"),
        )
        .await;
    assert!(matches!(plain_http, Err(ResolveError::NotBound)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_tenant_is_off_unless_configured() {
    let dir = edk_testkit::temp_dir();
    let clock = clock();
    let plain = build(testkit::builder(sqlite(dir.path()), clock.clone())).await;
    let main = plain
        .provision(TenantSlug::new("main").unwrap(), "Main")
        .await
        .unwrap();
    bind_issuer(&plain, main.id, "localhost", "").await;
    let unknown = EndpointRequest::new("https", "127.0.0.1", Some(8080), "/credential");
    assert!(matches!(
        plain.resolve(ServiceType::Issuer, &unknown).await,
        Err(ResolveError::NotBound)
    ));

    let with_fallback = build(testkit::builder(sqlite(dir.path()), clock).options(
        TenancyOptions {
            dangerous_fallback_tenant: Some(TenantSlug::new("main").unwrap()),
            ..TenancyOptions::default()
        },
    ))
    .await;
    let resolved = with_fallback
        .resolve(ServiceType::Issuer, &unknown)
        .await
        .unwrap();
    assert_eq!(resolved.context.id(), main.id);
    assert_eq!(
        resolved.context.binding().unwrap().identifier(),
        "https://localhost",
        "URLs still come from the binding, not the request"
    );
    assert!(matches!(
        with_fallback.resolve(ServiceType::Verifier, &unknown).await,
        Err(ResolveError::NotBound)
    ));
    with_fallback.suspend(main.id).await.unwrap();
    assert!(matches!(
        with_fallback.resolve(ServiceType::Issuer, &unknown).await,
        Err(ResolveError::NotServing)
    ));
}

async fn loopback_http_bindings_persist_and_route(database: impl Fn() -> DatabaseConfig) {
    let clock = clock();
    let tenancy = build(testkit::builder(database(), clock.clone())).await;
    let dev = tenancy
        .provision(TenantSlug::new("dev").unwrap(), "Dev")
        .await
        .unwrap();
    let http = EndpointBinding::dangerous_loopback_http(
        dev.id,
        ServiceType::As,
        "localhost",
        Some(8080),
        "",
        WellKnownLayout::Inserted,
    )
    .unwrap();
    tenancy.bind(&http).await.unwrap();
    bind_issuer(&tenancy, dev.id, "issuer.example", "/dev").await;

    let stored = tenancy.bindings(dev.id).await.unwrap();
    let read_back = stored
        .iter()
        .find(|b| b.service() == ServiceType::As)
        .unwrap();
    assert_eq!(read_back, &http);
    assert_eq!(read_back.scheme(), EndpointScheme::Http);
    assert_eq!(read_back.identifier(), "http://localhost:8080");
    let issuer = stored
        .iter()
        .find(|b| b.service() == ServiceType::Issuer)
        .unwrap();
    assert_eq!(issuer.scheme(), EndpointScheme::Https);

    for scheme in ["http", "https"] {
        let request = EndpointRequest::new(scheme, "localhost", Some(8080), "/token");
        let resolved = tenancy.resolve(ServiceType::As, &request).await.unwrap();
        assert_eq!(resolved.context.id(), dev.id);
        assert_eq!(
            resolved.context.binding().unwrap().identifier(),
            "http://localhost:8080"
        );
    }
    let plain_to_https = EndpointRequest::new("http", "issuer.example", None, "/dev/credential");
    assert!(matches!(
        tenancy.resolve(ServiceType::Issuer, &plain_to_https).await,
        Err(ResolveError::NotBound)
    ));

    // The fallback tenant is matched through its http binding too.
    let default_port = EndpointBinding::dangerous_loopback_http(
        dev.id,
        ServiceType::As,
        "localhost",
        None,
        "",
        WellKnownLayout::Inserted,
    )
    .unwrap();
    tenancy.bind(&default_port).await.unwrap();
    let with_fallback = build(testkit::builder(database(), clock).options(TenancyOptions {
        dangerous_fallback_tenant: Some(TenantSlug::new("dev").unwrap()),
        ..TenancyOptions::default()
    }))
    .await;
    let unknown = EndpointRequest::new("https", "127.0.0.1", Some(9999), "/token");
    let resolved = with_fallback
        .resolve(ServiceType::As, &unknown)
        .await
        .unwrap();
    assert_eq!(
        resolved.context.binding().unwrap().identifier(),
        "http://localhost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_http_bindings_persist_and_route_on_postgres() {
    let db = TestDb::new().await;
    loopback_http_bindings_persist_and_route(|| postgres(db.url())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_http_bindings_persist_and_route_on_sqlite() {
    let dir = edk_testkit::temp_dir();
    loopback_http_bindings_persist_and_route(|| sqlite(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_for_a_public_host_is_refused_and_nothing_is_bound() {
    let dir = edk_testkit::temp_dir();
    let tenancy = build(testkit::builder(sqlite(dir.path()), clock())).await;
    let t = tenancy
        .provision(TenantSlug::new("pub-host").unwrap(), "P")
        .await
        .unwrap();
    let refused = EndpointBinding::dangerous_loopback_http(
        t.id,
        ServiceType::As,
        "as.example",
        Some(8080),
        "",
        WellKnownLayout::Inserted,
    );
    assert_eq!(refused, Err(BindingError::HttpNotLoopback));
    assert!(tenancy.bindings(t.id).await.unwrap().is_empty());
}

#[test]
fn hostile_slugs_and_ids_are_refused_before_any_sql() {
    const WHAT: &str = "tenant slug";
    let long = format!("a{}", "b".repeat(63));
    let charset = IdError::Malformed {
        what: WHAT,
        reason: "only lower-case letters, digits and '-' are allowed",
    };
    let start = IdError::Malformed {
        what: WHAT,
        reason: "must start with a lower-case letter",
    };
    let reserved = |value: &str| IdError::Reserved {
        what: WHAT,
        value: value.to_owned(),
    };
    for (hostile, refused) in [
        ("acme'", charset.clone()),
        ("acme\"", charset.clone()),
        ("acme;drop schema public", charset.clone()),
        ("acme/*", charset.clone()),
        ("tenant_x; DROP", charset.clone()),
        ("acmé", charset.clone()),
        ("аcme", start.clone()),
        ("ACME", start.clone()),
        ("acme\0", charset.clone()),
        ("acme ", charset.clone()),
        (" acme", start),
        ("acme\n", charset),
        ("", IdError::Empty { what: WHAT }),
        (
            long.as_str(),
            IdError::TooLong {
                what: WHAT,
                max: 63,
            },
        ),
        ("admin", reserved("admin")),
        ("well-known", reserved("well-known")),
    ] {
        assert_eq!(TenantSlug::new(hostile), Err(refused), "slug {hostile:?}");
        assert_eq!(
            hostile.parse::<TenantId>(),
            Err(IdError::Malformed {
                what: "tenant id",
                reason: "not a UUID",
            }),
            "id {hostile:?}"
        );
    }
    for hostile_id in [
        "00000000-0000-0000-0000-00000000000'",
        "00000000-0000-0000-0000-000000000000; DROP",
        "{00000000-0000-0000-0000-000000000000}x",
    ] {
        assert_eq!(
            hostile_id.parse::<TenantId>(),
            Err(IdError::Malformed {
                what: "tenant id",
                reason: "not a UUID",
            }),
            "{hostile_id:?}"
        );
    }
    let id = TenantId::generate();
    let schema = id.schema_name();
    assert!(schema.len() <= 63);
    assert!(
        schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    );
}
