//! The tenant directory over gRPC: a DID server reads its tenants from a real platform server
//! (PostgreSQL, loopback gRPC), sees binding changes through the `Watch` stream, keeps its
//! cached answers while the platform restarts, and callers without a trusted service token,
//! or outside their tenant list, are refused.

use std::net::SocketAddr;
use std::sync::Arc;

use edk_core::jose::SigningKey;
use edk_core::{ErrorKind, HasKind as _, SystemClock, TenantId};
use edk_did_server::DidService;
use edk_kms::grpc::ServiceTokenSource;
use edk_platform_server::PlatformServerConfig;
use edk_server::service::start;
use edk_tenancy::grpc::proto::tenant_directory_client::TenantDirectoryClient;
use edk_tenancy::grpc::proto::{GetTenantRequest, ListBindingsRequest};
use edk_tenancy::{
    EndpointBinding, EndpointRequest, Error, ResolveError, ServiceType, Tenancy,
    TenantDirectory as _, WellKnownLayout,
};
use edk_testkit::TestDb;
use serde_json::json;
use tokio::net::TcpListener;
use tonic::Code;

use crate::support::{DirectoryPlatform, authorized, eventually, service_key, software_kms};

const AUDIENCE: &str = "edk-platform";

fn did_binding(tenant: TenantId, host: &str) -> EndpointBinding {
    EndpointBinding::dangerous_loopback_http(
        tenant,
        ServiceType::Did,
        host,
        Some(8080),
        "",
        WellKnownLayout::default(),
    )
    .unwrap()
}

/// The tenant a DID request on `host` is routed to.
async fn resolve(tenancy: &Tenancy, host: &str) -> Result<TenantId, ResolveError> {
    let request = EndpointRequest::new("http", host, Some(8080), "/.well-known/did.json");
    tenancy
        .resolve(ServiceType::Did, &request)
        .await
        .map(|resolution| resolution.context.id())
}

async fn service_token(key: SigningKey, service: &str) -> String {
    ServiceTokenSource::new(Arc::new(key), service, AUDIENCE, Arc::new(SystemClock))
        .service_token()
        .await
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runtime_server_reads_its_tenants_from_the_platform() {
    edk_server::install_crypto_provider();
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, did_jwk) = service_key(dir.path(), "did");
    let (limited_key, limited_jwk) = service_key(dir.path(), "did-a");
    let (rogue_key, _) = service_key(dir.path(), "rogue");
    let database = json!({"backend": "postgres", "platform_url": db.url()});
    let kms = software_kms();
    let platform_config: PlatformServerConfig = serde_json::from_value(json!({
        "database": database,
        "kms": kms,
        "platform": {"host": "localhost", "dangerous_loopback_http": true,
            "setup_token_file": dir.path().join("setup-token")},
        "grpc": {"listen": "127.0.0.1:0", "audience": AUDIENCE, "services": [
            {"name": "did", "jwks": {"keys": [did_jwk]}},
            {"name": "did-a", "jwks": {"keys": [limited_jwk]}, "tenants": ["acme"]},
        ]},
    }))
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let platform = DirectoryPlatform::start(&platform_config, listener).await;
    let mut tenants = Vec::new();
    for slug in ["acme", "beta", "gamma"] {
        tenants.push(
            platform
                .tenancy()
                .provision(slug.parse().unwrap(), slug)
                .await
                .unwrap()
                .id,
        );
    }
    let [acme, beta, gamma] = tenants[..] else {
        unreachable!()
    };
    for (tenant, host) in [(acme, "acme.localhost"), (beta, "beta.localhost")] {
        platform
            .tenancy()
            .bind(&did_binding(tenant, host))
            .await
            .unwrap();
    }

    // The DID server, on the same database for its tenant schemas, reads tenants from the
    // platform; its cache trusts an entry for an hour unless told otherwise.
    let did_config: <DidService as edk_server::Service>::Config = serde_json::from_value(json!({
        "database": database,
        "kms": kms,
        "directory": {"endpoint": format!("http://{addr}"), "service": "did",
            "audience": AUDIENCE, "key_file": dir.path().join("did.jwk"),
            "cache_ttl_secs": 3600},
    }))
    .unwrap();
    let did = start::<DidService>(&did_config, Arc::new(SystemClock), reqwest::Client::new())
        .await
        .unwrap();
    let runtime = did.deps().tenancy().clone();
    assert!(runtime.has_remote_directory());
    assert_eq!(resolve(&runtime, "acme.localhost").await.unwrap(), acme);
    let context = runtime
        .context_for_service(beta, ServiceType::Did)
        .await
        .unwrap();
    assert_eq!(context.slug().as_str(), "beta");
    assert_eq!(context.binding().unwrap().host(), "beta.localhost");
    assert!(matches!(
        resolve(&runtime, "nobody.localhost").await,
        Err(ResolveError::NotBound)
    ));

    // A binding changed on the platform reaches the runtime through the Watch stream.
    platform
        .tenancy()
        .bind(&did_binding(acme, "acme2.localhost"))
        .await
        .unwrap();
    eventually("the new binding is routed", || async {
        resolve(&runtime, "acme2.localhost").await.ok() == Some(acme)
    })
    .await;
    assert!(matches!(
        resolve(&runtime, "acme.localhost").await,
        Err(ResolveError::NotBound)
    ));
    // A suspended tenant stops serving at once too.
    platform.tenancy().suspend(beta).await.unwrap();
    eventually("the suspension is seen", || async {
        matches!(
            runtime.context(beta).await,
            Err(Error::TenantNotActive { .. })
        )
    })
    .await;
    platform.tenancy().resume(beta).await.unwrap();
    eventually("the resumption is seen", || async {
        runtime.context(beta).await.is_ok()
    })
    .await;

    // The platform goes away: cached answers continue; what was never read is unavailable,
    // never another tenant's answer.
    platform.stop().await;
    assert_eq!(resolve(&runtime, "acme2.localhost").await.unwrap(), acme);
    assert_eq!(runtime.context(beta).await.unwrap().id(), beta);
    let err = runtime.context(gamma).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");

    // It comes back on the same address: the stream reconnects and later changes arrive.
    let listener = TcpListener::bind(addr).await.unwrap();
    let platform = DirectoryPlatform::start(&platform_config, listener).await;
    platform
        .tenancy()
        .bind(&did_binding(beta, "beta2.localhost"))
        .await
        .unwrap();
    eventually("a change made after the restart is routed", || async {
        resolve(&runtime, "beta2.localhost").await.ok() == Some(beta)
    })
    .await;
    assert_eq!(runtime.context(gamma).await.unwrap().id(), gamma);

    // Callers without a trusted service token are refused.
    let mut client = TenantDirectoryClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let status = client
        .list_bindings(ListBindingsRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let forged = service_token(rogue_key, "did").await;
    let status = client
        .list_bindings(authorized(ListBindingsRequest {}, &forged))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    // A service limited to acme sees and reads acme only.
    let limited = service_token(limited_key, "did-a").await;
    let listed = client
        .list_bindings(authorized(ListBindingsRequest {}, &limited))
        .await
        .unwrap()
        .into_inner();
    assert!(!listed.bindings.is_empty());
    assert!(
        listed
            .bindings
            .iter()
            .all(|binding| binding.tenant_id == acme.to_string())
    );
    let entry = client
        .get_tenant(authorized(
            GetTenantRequest {
                tenant_id: acme.to_string(),
            },
            &limited,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(entry.tenant.unwrap().slug, "acme");
    for other in [beta, TenantId::generate()] {
        let status = client
            .get_tenant(authorized(
                GetTenantRequest {
                    tenant_id: other.to_string(),
                },
                &limited,
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    }
    let status = client
        .get_tenant(authorized(
            GetTenantRequest {
                tenant_id: "not-a-tenant".to_owned(),
            },
            &limited,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    did.shutdown().await;
    platform.stop().await;
    db.close().await;
}
