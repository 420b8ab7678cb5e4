//! Adversarial routing: no request resolves to a tenant it is not bound for.

use edk_core::{TenantId, TenantSlug};
use edk_tenancy::testkit::{self, bind_issuer};
use edk_tenancy::{
    EndpointBinding, EndpointRequest, ResolveError, ServiceType, TenancyOptions, TenantDirectory,
    WellKnownLayout,
};

use crate::{build, clock, sqlite};

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
    assert!(
        with_fallback
            .resolve(ServiceType::Verifier, &unknown)
            .await
            .is_err()
    );
    with_fallback.suspend(main.id).await.unwrap();
    assert!(matches!(
        with_fallback.resolve(ServiceType::Issuer, &unknown).await,
        Err(ResolveError::NotServing)
    ));
}

#[test]
fn hostile_slugs_and_ids_are_refused_before_any_sql() {
    let long = format!("a{}", "b".repeat(63));
    for hostile in [
        "acme'",
        "acme\"",
        "acme;drop schema public",
        "acme/*",
        "tenant_x; DROP",
        "acmé",
        "аcme",
        "ACME",
        "acme\0",
        "acme ",
        " acme",
        "acme\n",
        "",
        long.as_str(),
        "admin",
        "well-known",
    ] {
        assert!(
            TenantSlug::new(hostile).is_err(),
            "slug {hostile:?} accepted"
        );
        assert!(
            hostile.parse::<TenantId>().is_err(),
            "id {hostile:?} accepted"
        );
    }
    for hostile_id in [
        "00000000-0000-0000-0000-00000000000'",
        "00000000-0000-0000-0000-000000000000; DROP",
        "{00000000-0000-0000-0000-000000000000}x",
    ] {
        assert!(hostile_id.parse::<TenantId>().is_err(), "{hostile_id:?}");
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
