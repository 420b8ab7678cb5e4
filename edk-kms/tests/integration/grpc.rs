//! The gRPC contract: `RemoteKms` against a real tonic server on loopback over `LocalKms`
//! (the KMS suite on SQLite and PostgreSQL), service-JWT and mTLS authentication, and tenant
//! isolation on the wire.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use edk_core::jose::{Algorithm, Header, JwkSet, SigningKey, jws};
use edk_core::{Clock, ErrorKind, FixedClock, HasKind, Kid, TenantId, TenantSlug};
use edk_kms::audit::AuditProblem;
use edk_kms::cert::store::SqlCertificateStore;
use edk_kms::cert::{CertificateProfile, CertificateSource, Certificates, DistinguishedName};
use edk_kms::grpc::RemoteKmsOptions;
use edk_kms::grpc::auth::{SERVICE_TOKEN_TYPE, server_tls_config};
use edk_kms::grpc::proto::key_management_client::KeyManagementClient;
use edk_kms::grpc::proto::{self, CallContext};
use edk_kms::grpc::{
    AuditReaders, ClientAuth, KmsGrpcService, MtlsAuth, RemoteKms, ServiceAuth, ServiceJwtAuth,
    ServiceTokenSource, TrustedServices,
};
use edk_kms::provider::KeySpec;
use edk_kms::testkit::{KmsSuiteConfig, kms_suite};
use edk_kms::{Caller, Error, KeyAlias, KeyRef, Kms, NewKey};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use zeroize::Zeroizing;

use crate::support::{Backend, Env, env};

const AUDIENCE: &str = "edk-kms";
const SERVICE: &str = "issuer-service";

/// A KMS gRPC server on 127.0.0.1, stopped when dropped.
struct Server {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn spawn(
    env: &Env,
    auth: ServiceAuth,
    tls: Option<tonic::transport::ServerTlsConfig>,
) -> Server {
    spawn_with(env, auth, tls, None).await
}

async fn spawn_with(
    env: &Env,
    auth: ServiceAuth,
    tls: Option<tonic::transport::ServerTlsConfig>,
    certificates: Option<Arc<dyn CertificateSource>>,
) -> Server {
    spawn_serving(env, auth, tls, certificates, None).await
}

async fn spawn_serving(
    env: &Env,
    auth: ServiceAuth,
    tls: Option<tonic::transport::ServerTlsConfig>,
    certificates: Option<Arc<dyn CertificateSource>>,
    audit: Option<AuditReaders>,
) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = KmsGrpcService::serving(
        Arc::new(env.kms.clone()),
        Arc::new(env.tenancy.clone()),
        auth,
        certificates,
        audit,
    );
    let stop = CancellationToken::new();
    let shutdown = stop.clone();
    tokio::spawn(async move {
        edk_kms::grpc::serve(listener, service, tls, shutdown.cancelled_owned())
            .await
            .unwrap();
    });
    Server { addr, stop }
}

/// The calling service's key and the server auth that trusts it.
fn jwt_auth(key: &SigningKey, clock: Arc<dyn Clock>) -> ServiceAuth {
    let jwks = JwkSet {
        keys: vec![key.public_jwk()],
    };
    let trusted = TrustedServices::new().with_service(SERVICE, &jwks);
    ServiceAuth::ServiceJwt(
        ServiceJwtAuth::new(AUDIENCE, Arc::new(trusted), clock)
            .with_max_lifetime(Duration::from_secs(300))
            .with_leeway(Duration::from_secs(5)),
    )
}

fn service_key() -> SigningKey {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let kid = Kid::new(key.public_jwk().thumbprint()).unwrap();
    key.with_kid(kid)
}

async fn jwt_server(env: &Env) -> (Server, SigningKey) {
    let key = service_key();
    let server = spawn(env, jwt_auth(&key, env.clock.clone()), None).await;
    (server, key)
}

async fn remote_jwt(server: &Server, key: SigningKey, clock: Arc<FixedClock>) -> RemoteKms {
    let source = ServiceTokenSource::new(Arc::new(key), SERVICE, AUDIENCE, clock)
        .with_lifetime(Duration::from_secs(120));
    RemoteKms::connect(
        &format!("http://{}", server.addr),
        ClientAuth::ServiceJwt(Arc::new(source)),
    )
    .await
    .unwrap()
}

async fn suite_over_grpc(backend: Backend) {
    let env = env(backend).await;
    let (server, key) = jwt_server(&env).await;
    let remote = remote_jwt(&server, key, env.clock.clone()).await;
    kms_suite(Arc::new(remote), &env.a, &env.b, &KmsSuiteConfig::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_kms_passes_the_suite_on_sqlite() {
    suite_over_grpc(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_kms_passes_the_suite_on_postgres() {
    suite_over_grpc(Backend::Postgres).await;
}

/// Claims of a service token issued at `iat` for `lifetime` seconds.
fn claims(tenant: TenantId, iat: i64, lifetime: i64) -> serde_json::Value {
    serde_json::json!({
        "iss": SERVICE,
        "sub": SERVICE,
        "aud": AUDIENCE,
        "iat": iat,
        "exp": iat + lifetime,
        "tenant": tenant.to_string(),
    })
}

async fn token(key: &SigningKey, claims: &serde_json::Value) -> String {
    jws::sign(
        Header::new(Algorithm::Es256).with_typ(SERVICE_TOKEN_TYPE),
        &serde_json::to_vec(claims).unwrap(),
        key,
    )
    .await
    .unwrap()
}

fn authed<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

async fn raw_client(addr: SocketAddr) -> KeyManagementClient<Channel> {
    KeyManagementClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

fn context(caller: &Caller) -> Option<CallContext> {
    Some(CallContext {
        tenant_id: caller.tenant().id().to_string(),
        actor: caller.actor().to_owned(),
    })
}

/// Lists keys as `caller` with `token` (none: no authorization metadata).
async fn list_with(
    client: &mut KeyManagementClient<Channel>,
    caller: &Caller,
    token: Option<&str>,
) -> Result<(), tonic::Status> {
    let mut request = tonic::Request::new(proto::ListKeysRequest {
        context: context(caller),
    });
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    client.list_keys(request).await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_tokens_are_checked_on_every_call() {
    let env = env(Backend::Sqlite).await;
    let (server, key) = jwt_server(&env).await;
    let mut client = raw_client(server.addr).await;
    let now = env.clock.unix_seconds();
    let tenant = env.a.tenant().id();

    let good = token(&key, &claims(tenant, now, 120)).await;
    list_with(&mut client, &env.a, Some(&good)).await.unwrap();

    let missing = list_with(&mut client, &env.a, None).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated, "{missing:?}");

    let expired = token(&key, &claims(tenant, now - 200, 120)).await;
    let status = list_with(&mut client, &env.a, Some(&expired))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("expired"), "{status:?}");

    let mut wrong_audience = claims(tenant, now, 120);
    wrong_audience["aud"] = "another-kms".into();
    let status = list_with(
        &mut client,
        &env.a,
        Some(&token(&key, &wrong_audience).await),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("audience"), "{status:?}");

    let too_long = token(&key, &claims(tenant, now, 3600)).await;
    let status = list_with(&mut client, &env.a, Some(&too_long))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    let mut no_exp = claims(tenant, now, 120);
    no_exp.as_object_mut().unwrap().remove("exp");
    let status = list_with(&mut client, &env.a, Some(&token(&key, &no_exp).await))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    let stranger = service_key();
    let status = list_with(
        &mut client,
        &env.a,
        Some(&token(&stranger, &claims(tenant, now, 120)).await),
    )
    .await
    .unwrap_err();
    assert_eq!(
        status.code(),
        Code::Unauthenticated,
        "unknown key: {status:?}"
    );

    let mut unknown_service = claims(tenant, now, 120);
    unknown_service["iss"] = "someone-else".into();
    unknown_service["sub"] = "someone-else".into();
    let status = list_with(
        &mut client,
        &env.a,
        Some(&token(&key, &unknown_service).await),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    // A token for tenant A presented for tenant B's context.
    let status = list_with(&mut client, &env.b, Some(&good))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // A service-level token (no `tenant`, as the platform's tenant directory takes) is not a
    // KMS credential, even signed by a trusted key.
    let source = ServiceTokenSource::new(Arc::new(key), SERVICE, AUDIENCE, env.clock.clone());
    let service_level = source.service_token().await.unwrap();
    let status = list_with(&mut client, &env.a, Some(&*service_level))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("tenant"), "{status:?}");

    // A good token stops working when it expires, even though the server has seen it.
    env.clock.advance(Duration::from_secs(130));
    let status = list_with(&mut client, &env.a, Some(&good))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_caller_for_the_wrong_tenant_is_refused() {
    let env = env(Backend::Sqlite).await;
    let (server, key) = jwt_server(&env).await;
    let mut client = raw_client(server.addr).await;
    let now = env.clock.unix_seconds();
    let token_b = token(&key, &claims(env.b.tenant().id(), now, 120)).await;
    // The message names tenant A, the token tenant B: the tenant comes from the token only.
    let status = list_with(&mut client, &env.a, Some(&token_b))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_alias_and_kid_are_not_found_over_grpc() {
    let env = env(Backend::Sqlite).await;
    let (server, key) = jwt_server(&env).await;
    let alias = KeyAlias::new("issuer", "credential-signing").unwrap();
    let info = env
        .kms
        .create_key(
            &env.a,
            &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
        )
        .await
        .unwrap();
    let kid = info.active().unwrap().kid.clone();

    let mut client = raw_client(server.addr).await;
    let now = env.clock.unix_seconds();
    let token_b = token(&key, &claims(env.b.tenant().id(), now, 120)).await;
    for key in [alias.to_string(), kid.as_str().to_owned()] {
        let status = client
            .get_key(authed(
                &token_b,
                proto::KeyRequest {
                    context: context(&env.b),
                    key: key.clone(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{key}: {status:?}");
        let status = client
            .public_key(authed(
                &token_b,
                proto::KeyRequest {
                    context: context(&env.b),
                    key: key.clone(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{key}: {status:?}");
    }
    let status = client
        .sign(authed(
            &token_b,
            proto::SignRequest {
                context: context(&env.b),
                alias: alias.to_string(),
                message: b"m".to_vec(),
                expected_kid: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let status = client
        .resolve(authed(
            &token_b,
            proto::ResolveRequest {
                context: context(&env.b),
                kid: kid.as_str().to_owned(),
                alg: "ES256".to_owned(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let status = client
        .jwks(authed(
            &token_b,
            proto::AliasRequest {
                context: context(&env.b),
                alias: alias.to_string(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_invalid_arguments_and_change_nothing() {
    let env = env(Backend::Sqlite).await;
    let (server, key) = jwt_server(&env).await;
    let mut client = raw_client(server.addr).await;
    let now = env.clock.unix_seconds();
    let token_a = token(&key, &claims(env.a.tenant().id(), now, 120)).await;
    let remote = remote_jwt(&server, key, env.clock.clone()).await;
    let bad_usage = client
        .create_key(authed(
            &token_a,
            proto::CreateKeyRequest {
                context: context(&env.a),
                alias: "issuer.credential-signing".to_owned(),
                usage: Some(proto::KeyUsage {
                    usage: Some(proto::key_usage::Usage::Sign("HS256".to_owned())),
                }),
                provider: None,
                rotation: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_usage.code(), Code::InvalidArgument, "{bad_usage:?}");
    assert!(bad_usage.message().contains("usage"), "{bad_usage:?}");
    let bad_alias = client
        .create_key(authed(
            &token_a,
            proto::CreateKeyRequest {
                context: context(&env.a),
                alias: "Not An Alias".to_owned(),
                usage: Some(proto::KeyUsage {
                    usage: Some(proto::key_usage::Usage::Sign("ES256".to_owned())),
                }),
                provider: None,
                rotation: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_alias.code(), Code::InvalidArgument, "{bad_alias:?}");
    let no_context = client
        .list_keys(authed(&token_a, proto::ListKeysRequest { context: None }))
        .await
        .unwrap_err();
    assert_eq!(no_context.code(), Code::InvalidArgument, "{no_context:?}");
    assert!(remote.keys(&env.a).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_signer_refuses_once_its_alias_rotates() {
    let env = env(Backend::Sqlite).await;
    let (server, key) = jwt_server(&env).await;
    let remote = remote_jwt(&server, key, env.clock.clone()).await;
    let alias = KeyAlias::new("issuer", "token-signing").unwrap();
    remote
        .create_key(
            &env.a,
            &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
        )
        .await
        .unwrap();
    let signer = remote.signer(&env.a, &alias).await.unwrap();
    signer.sign(b"m").await.unwrap();
    remote.rotate(&env.a, &alias).await.unwrap();
    let err = signer.sign(b"m").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden, "{err:?}");
    let fresh = remote.signer(&env.a, &alias).await.unwrap();
    assert_ne!(fresh.kid(), signer.kid());
    fresh.sign(b"m").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_kms_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let source = ServiceTokenSource::new(
        Arc::new(service_key()),
        SERVICE,
        AUDIENCE,
        Arc::new(FixedClock::at_unix(1_700_000_000)),
    );
    let err = RemoteKms::connect(
        &format!("http://{addr}"),
        ClientAuth::ServiceJwt(Arc::new(source)),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
}

/// A CA and certificates issued by it.
struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate and key (PEM) with `sans`.
    fn issue(&self, sans: Vec<SanType>) -> (String, String) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = sans;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn service_uri(uri: &str) -> SanType {
    SanType::URI(uri.try_into().unwrap())
}

/// Connects to `addr` over TLS 1.3 trusting `ca_pem`, with no client certificate, and
/// returns the error of the first read after the client's side of the handshake.
async fn handshake_without_a_client_certificate(addr: SocketAddr, ca_pem: &str) -> std::io::Error {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::AsyncReadExt as _;

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("kms.internal").unwrap(), tcp)
        .await
        .unwrap();
    let mut byte = [0_u8; 1];
    tls.read(&mut byte).await.unwrap_err()
}

async fn mtls_server(env: &Env, pki: &Pki, auth: MtlsAuth) -> Server {
    let (cert, key) = pki.issue(vec![SanType::DnsName("kms.internal".try_into().unwrap())]);
    let tls = server_tls_config(&cert, &key, &pki.ca_pem);
    spawn(env, ServiceAuth::Mtls(auth), Some(tls)).await
}

async fn remote_mtls(
    server: &Server,
    server_ca: &Pki,
    client: (String, String),
) -> Result<RemoteKms, Error> {
    RemoteKms::connect(
        &format!("https://{}", server.addr),
        ClientAuth::Mtls {
            cert_chain_pem: client.0.into_bytes(),
            key_pem: Zeroizing::new(client.1.into_bytes()),
            server_ca_pem: server_ca.ca_pem.clone().into_bytes(),
            server_name: Some("kms.internal".to_owned()),
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_clients_with_a_certificate_from_the_ca_act_for_the_tenant_they_name() {
    let env = env(Backend::Sqlite).await;
    let pki = Pki::new("cluster CA");
    let server = mtls_server(&env, &pki, MtlsAuth::new()).await;
    let client = pki.issue(vec![service_uri("spiffe://edk/issuer")]);
    let remote = remote_mtls(&server, &pki, client).await.unwrap();
    let alias = KeyAlias::new("issuer", "credential-signing").unwrap();
    remote
        .create_key(
            &env.a,
            &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
        )
        .await
        .unwrap();
    let signature = remote.sign(&env.a, &alias, b"m").await.unwrap();
    remote
        .verify(
            &env.a,
            &KeyRef::Alias(alias.clone()),
            Algorithm::Es256,
            b"m",
            &signature.bytes,
        )
        .await
        .unwrap();
    // The tenant named in the metadata is the one the call acts for: B sees nothing of A's.
    let err = remote.key(&env.b, &KeyRef::Alias(alias)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_refuses_clients_without_a_certificate_or_from_another_ca() {
    let env = env(Backend::Sqlite).await;
    let pki = Pki::new("cluster CA");
    let server = mtls_server(&env, &pki, MtlsAuth::new()).await;

    // No client certificate: the server ends the TLS 1.3 handshake with a
    // `certificate_required` alert before any call.
    let err = handshake_without_a_client_certificate(server.addr, &pki.ca_pem).await;
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err:?}");
    assert_eq!(
        err.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        Some(&rustls::Error::AlertReceived(
            rustls::AlertDescription::CertificateRequired
        )),
        "{err:?}"
    );

    // A certificate from another CA.
    let rogue = Pki::new("rogue CA");
    let client = rogue.issue(vec![service_uri("spiffe://edk/issuer")]);
    let result = match remote_mtls(&server, &pki, client).await {
        Ok(remote) => remote.keys(&env.a).await.map(|_| ()),
        Err(err) => Err(err),
    };
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");

    // Sanity: a certificate from the right CA gets through the same server.
    let good = pki.issue(vec![service_uri("spiffe://edk/issuer")]);
    let remote = remote_mtls(&server, &pki, good).await.unwrap();
    remote.keys(&env.a).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_allow_list_refuses_other_services() {
    let env = env(Backend::Sqlite).await;
    let pki = Pki::new("cluster CA");
    let server = mtls_server(&env, &pki, MtlsAuth::new().allow("spiffe://edk/issuer")).await;
    let verifier = pki.issue(vec![service_uri("spiffe://edk/verifier")]);
    let remote = remote_mtls(&server, &pki, verifier).await.unwrap();
    let err = remote.keys(&env.a).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err:?}");
    // The readiness ping fails the same way, so a server with such a certificate is unready.
    let err = remote.ping(env.a.tenant().id()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err:?}");
    let issuer = pki.issue(vec![service_uri("spiffe://edk/issuer")]);
    let remote = remote_mtls(&server, &pki, issuer).await.unwrap();
    remote.keys(&env.a).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mtls_call_without_a_tenant_is_unauthenticated() {
    let env = env(Backend::Sqlite).await;
    let pki = Pki::new("cluster CA");
    let server = mtls_server(&env, &pki, MtlsAuth::new()).await;
    let (cert, key) = pki.issue(vec![service_uri("spiffe://edk/issuer")]);
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .identity(Identity::from_pem(cert, key))
        .domain_name("kms.internal");
    let channel = Endpoint::from_shared(format!("https://{}", server.addr))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = KeyManagementClient::new(channel);
    let status = client
        .list_keys(proto::ListKeysRequest {
            context: context(&env.a),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

/// A server trusting `services` (name, key), each optionally limited to tenant slugs.
async fn services_server(env: &Env, services: &[(&str, &SigningKey, Option<&[&str]>)]) -> Server {
    spawn(
        env,
        ServiceAuth::ServiceJwt(services_auth(env, services)),
        None,
    )
    .await
}

/// The authentication of [`services_server`].
fn services_auth(env: &Env, services: &[(&str, &SigningKey, Option<&[&str]>)]) -> ServiceJwtAuth {
    let mut trusted = TrustedServices::new();
    for (name, key, _) in services {
        trusted = trusted.with_service(
            *name,
            &JwkSet {
                keys: vec![key.public_jwk()],
            },
        );
    }
    let mut auth = ServiceJwtAuth::new(AUDIENCE, Arc::new(trusted), env.clock.clone());
    for (name, _, tenants) in services {
        if let Some(tenants) = tenants {
            auth = auth.with_tenants(
                *name,
                tenants.iter().map(|slug| TenantSlug::new(*slug).unwrap()),
            );
        }
    }
    auth
}

async fn remote_as(
    server: &Server,
    service: &str,
    key: Arc<SigningKey>,
    clock: Arc<FixedClock>,
) -> RemoteKms {
    let source = ServiceTokenSource::new(key, service, AUDIENCE, clock);
    RemoteKms::connect(
        &format!("http://{}", server.addr),
        ClientAuth::ServiceJwt(Arc::new(source)),
    )
    .await
    .unwrap()
}

/// Token claims of `service` for `tenant`.
fn service_claims(service: &str, tenant: TenantId, iat: i64) -> serde_json::Value {
    let mut claims = claims(tenant, iat, 120);
    claims["iss"] = service.into();
    claims["sub"] = service.into();
    claims
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_service_uses_only_its_own_reserved_aliases() {
    let env = env(Backend::Sqlite).await;
    let issuer_key = Arc::new(service_key());
    let as_key = Arc::new(service_key());
    let server = services_server(
        &env,
        &[(SERVICE, &*issuer_key, None), ("as", &*as_key, None)],
    )
    .await;
    let issuer = remote_as(&server, SERVICE, Arc::clone(&issuer_key), env.clock.clone()).await;
    let authorization_server = remote_as(&server, "as", as_key, env.clock.clone()).await;
    let alias = KeyAlias::new("as", "access-token-signing").unwrap();
    let spec = KeySpec::signing(Algorithm::Es256);

    // Another service cannot claim the name first, nor sign with it once it exists.
    let err = issuer
        .create_key(&env.a, &NewKey::new(alias.clone(), spec))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ReservedAlias { alias: refused } if *refused == alias),
        "{err:?}"
    );
    authorization_server
        .create_key(&env.a, &NewKey::new(alias.clone(), spec))
        .await
        .unwrap();
    authorization_server
        .sign(&env.a, &alias, b"m")
        .await
        .unwrap();
    let err = issuer.sign(&env.a, &alias, b"m").await.unwrap_err();
    assert!(matches!(err, Error::ReservedAlias { .. }), "{err:?}");
    let err = issuer.rotate(&env.a, &alias).await.unwrap_err();
    assert!(matches!(err, Error::ReservedAlias { .. }), "{err:?}");

    // On the wire: PERMISSION_DENIED naming the alias.
    let mut client = raw_client(server.addr).await;
    let token = token(
        &issuer_key,
        &service_claims(SERVICE, env.a.tenant().id(), env.clock.unix_seconds()),
    )
    .await;
    let status = client
        .sign(authed(
            &token,
            proto::SignRequest {
                context: context(&env.a),
                alias: alias.to_string(),
                message: b"m".to_vec(),
                expected_kid: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(
        status.message(),
        "key alias `as.access-token-signing` is reserved for the `as` service"
    );
    // Reading it stays open, and unreserved aliases are every service's.
    issuer.key(&env.a, &KeyRef::Alias(alias)).await.unwrap();
    let ordinary = KeyAlias::new("issuer", "credential-signing").unwrap();
    issuer
        .create_key(&env.a, &NewKey::new(ordinary.clone(), spec))
        .await
        .unwrap();
    authorization_server
        .sign(&env.a, &ordinary, b"m")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_actor_names_the_authenticated_service() {
    let env = env(Backend::Sqlite).await;
    let issuer_key = Arc::new(service_key());
    let uri_key = Arc::new(service_key());
    let server = services_server(
        &env,
        &[
            (SERVICE, &*issuer_key, None),
            ("spiffe://edk/issuer", &*uri_key, None),
        ],
    )
    .await;
    let remote = remote_as(&server, SERVICE, Arc::clone(&issuer_key), env.clock.clone()).await;
    let alias = KeyAlias::new("issuer", "credential-signing").unwrap();
    // `env.a`'s actor is "alice"; another service's name cannot be claimed through it.
    remote
        .create_key(
            &env.a,
            &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
        )
        .await
        .unwrap();
    let spoofing = Caller::new(env.a.tenant().clone(), "service:as");
    remote.sign(&spoofing, &alias, b"m").await.unwrap();
    let mut client = raw_client(server.addr).await;
    let now = env.clock.unix_seconds();
    let tenant = env.a.tenant().id();
    let anonymous = proto::SignRequest {
        context: Some(CallContext {
            tenant_id: tenant.to_string(),
            actor: String::new(),
        }),
        alias: alias.to_string(),
        message: b"m".to_vec(),
        expected_kid: None,
    };
    let issuer_token = token(&issuer_key, &service_claims(SERVICE, tenant, now)).await;
    client
        .sign(authed(&issuer_token, anonymous.clone()))
        .await
        .unwrap();
    let uri_token = token(
        &uri_key,
        &service_claims("spiffe://edk/issuer", tenant, now),
    )
    .await;
    let mut named = anonymous;
    named.context.as_mut().unwrap().actor = "bob".to_owned();
    client.sign(authed(&uri_token, named)).await.unwrap();
    // An actor with control characters is refused before anything is recorded.
    let bad = proto::SignRequest {
        context: Some(CallContext {
            tenant_id: tenant.to_string(),
            actor: "eve\nservice:as".to_owned(),
        }),
        alias: alias.to_string(),
        message: b"m".to_vec(),
        expected_kid: None,
    };
    let status = client.sign(authed(&issuer_token, bad)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    let actors: Vec<String> = env
        .kms
        .audit_events(&env.a, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.actor)
        .collect();
    assert_eq!(
        actors,
        [
            "service:issuer-service/alice",
            "service:issuer-service/service:as",
            "service:issuer-service",
            "service:spiffe:%2F%2Fedk%2Fissuer/bob",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_limited_to_some_tenants_acts_only_for_them() {
    let env = env(Backend::Sqlite).await;
    let limited_key = Arc::new(service_key());
    let open_key = Arc::new(service_key());
    let server = services_server(
        &env,
        &[
            (SERVICE, &*limited_key, Some(&["tenant-a"])),
            ("platform", &*open_key, None),
        ],
    )
    .await;
    let limited = remote_as(
        &server,
        SERVICE,
        Arc::clone(&limited_key),
        env.clock.clone(),
    )
    .await;
    let alias = KeyAlias::new("issuer", "credential-signing").unwrap();
    let spec = KeySpec::signing(Algorithm::Es256);
    limited
        .create_key(&env.a, &NewKey::new(alias.clone(), spec))
        .await
        .unwrap();
    let err = limited
        .create_key(&env.b, &NewKey::new(alias.clone(), spec))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden, "{err:?}");
    assert_eq!(
        err.to_string(),
        "remote KMS: the service may not act for this tenant"
    );
    assert!(
        env.kms.keys(&env.b).await.unwrap().is_empty(),
        "nothing made for B"
    );

    // A tenant that does not exist is refused the same way, not reported missing.
    let mut client = raw_client(server.addr).await;
    let now = env.clock.unix_seconds();
    let nowhere = TenantId::generate();
    let request = |token: &str| {
        authed(
            token,
            proto::ListKeysRequest {
                context: Some(CallContext {
                    tenant_id: nowhere.to_string(),
                    actor: String::new(),
                }),
            },
        )
    };
    let limited_token = token(&limited_key, &service_claims(SERVICE, nowhere, now)).await;
    let status = client.list_keys(request(&limited_token)).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    // An unlimited service learns that it does not exist, as before.
    let open_token = token(&open_key, &service_claims("platform", nowhere, now)).await;
    let status = client.list_keys(request(&open_token)).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let open = remote_as(&server, "platform", open_key, env.clock.clone()).await;
    open.keys(&env.b).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mtls_identity_limited_to_some_tenants_acts_only_for_them() {
    let env = env(Backend::Sqlite).await;
    let pki = Pki::new("cluster CA");
    let auth = MtlsAuth::new().with_tenants(
        "spiffe://edk/issuer",
        [TenantSlug::new("tenant-a").unwrap()],
    );
    let server = mtls_server(&env, &pki, auth).await;
    let client = pki.issue(vec![
        SanType::DnsName("issuer.internal".try_into().unwrap()),
        service_uri("spiffe://edk/issuer"),
    ]);
    let remote = remote_mtls(&server, &pki, client).await.unwrap();
    remote.keys(&env.a).await.unwrap();
    let err = remote.keys(&env.b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden, "{err:?}");
    // A certificate without the listed name acts for every tenant.
    let other = pki.issue(vec![service_uri("spiffe://edk/verifier")]);
    let remote = remote_mtls(&server, &pki, other).await.unwrap();
    remote.keys(&env.b).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_checks_reachability_and_credentials() {
    let env = env(Backend::Sqlite).await;
    let limited_key = Arc::new(service_key());
    let server = services_server(&env, &[(SERVICE, &*limited_key, Some(&["tenant-a"]))]).await;
    let remote = remote_as(&server, SERVICE, limited_key, env.clock.clone()).await;
    remote.ping(env.a.tenant().id()).await.unwrap();
    // The tenant is one the service may not act for.
    let err = remote.ping(env.b.tenant().id()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden, "{err:?}");
    // A key the KMS does not trust.
    let stranger = remote_as(&server, SERVICE, Arc::new(service_key()), env.clock.clone()).await;
    let err = stranger.ping(env.a.tenant().id()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err:?}");
    assert!(
        err.to_string()
            .starts_with("remote KMS: invalid service token"),
        "{err}"
    );
    // Nothing was audited.
    assert!(
        env.kms
            .audit_events(&env.a, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The raw answer names the service as the KMS authenticated it.
    let good = Arc::new(service_key());
    let server = services_server(&env, &[("as", &*good, None)]).await;
    let mut client = raw_client(server.addr).await;
    let tenant = env.a.tenant().id();
    let token = token(
        &good,
        &service_claims("as", tenant, env.clock.unix_seconds()),
    )
    .await;
    let answer = client
        .ping(authed(
            &token,
            proto::PingRequest {
                context: Some(CallContext {
                    tenant_id: tenant.to_string(),
                    actor: String::new(),
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.service, "as");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_of_an_unreachable_kms_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let clock = Arc::new(FixedClock::at_unix(1_700_000_000));
    let source = ServiceTokenSource::new(Arc::new(service_key()), SERVICE, AUDIENCE, clock);
    let remote = RemoteKms::from_channel(
        channel,
        ClientAuth::ServiceJwt(Arc::new(source)),
        &RemoteKmsOptions::default(),
    );
    let err = remote.ping(TenantId::generate()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
}

/// `GetCertificate`: the chain stored under an alias of the caller's tenant, `NotFound` for an
/// alias of another tenant, `Unsupported` from a server that keeps no certificates; and
/// `GetTrustAnchors`: the tenant's trust anchors only.
async fn certificates_are_read_over_grpc(backend: Backend) {
    let env = env(backend).await;
    let certificates = Certificates::new(
        Arc::new(env.kms.clone()),
        Arc::new(SqlCertificateStore::new(env.tenancy.clone())),
        env.clock.clone(),
    );
    let alias: KeyAlias = "issuer.mdoc-signing".parse().unwrap();
    let root: KeyAlias = "issuer.iaca".parse().unwrap();
    for alias in [&alias, &root] {
        env.kms
            .create_key(
                &env.a,
                &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
            )
            .await
            .unwrap();
    }
    let day = Duration::from_secs(86_400);
    let iaca = certificates
        .issue(
            &env.a,
            &root,
            &root,
            &CertificateProfile::iaca(
                DistinguishedName::parse("C=DE,CN=IACA").unwrap(),
                day * 3650,
            ),
        )
        .await
        .unwrap();
    let issued = certificates
        .issue(
            &env.a,
            &root,
            &alias,
            &CertificateProfile::document_signer(
                DistinguishedName::parse("C=DE,CN=DS").unwrap(),
                day * 90,
            ),
        )
        .await
        .unwrap();
    certificates
        .put_chain(
            &env.a,
            &"iacas".parse().unwrap(),
            &iaca.certificate.pem().unwrap(),
            true,
        )
        .await
        .unwrap();
    certificates
        .put_chain(
            &env.a,
            &"signers".parse().unwrap(),
            &issued.certificate.pem().unwrap(),
            false,
        )
        .await
        .unwrap();

    let key = service_key();
    let server = spawn_with(
        &env,
        jwt_auth(&key, env.clock.clone()),
        None,
        Some(Arc::new(certificates)),
    )
    .await;
    let remote = remote_jwt(&server, key, env.clock.clone()).await;
    let read = remote.certificate(&env.a, &alias).await.unwrap();
    assert_eq!(read.certificate.chain, issued.certificate.chain);
    assert_eq!(read.certificate.chain.len(), 2);
    assert_eq!(read.kid, issued.kid);
    assert!(read.kid.is_some());
    assert!(matches!(
        remote.certificate(&env.b, &alias).await,
        Err(edk_kms::cert::Error::CertificateNotFound { .. })
    ));
    // `GetTrustAnchors`: only the chains marked trust anchors, only the caller's tenant's.
    assert_eq!(
        remote.trust_anchors(&env.a).await.unwrap(),
        iaca.certificate.chain
    );
    assert!(remote.trust_anchors(&env.b).await.unwrap().is_empty());

    let key = service_key();
    let bare = spawn(&env, jwt_auth(&key, env.clock.clone()), None).await;
    let remote = remote_jwt(&bare, key, env.clock.clone()).await;
    let refused = remote.certificate(&env.a, &alias).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Unsupported);
    let refused = remote.trust_anchors(&env.a).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Unsupported);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_read_over_grpc_on_sqlite() {
    certificates_are_read_over_grpc(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_read_over_grpc_on_postgres() {
    certificates_are_read_over_grpc(Backend::Postgres).await;
}

/// The audit chains over gRPC: a service the server names among its audit readers reads a
/// page of its tenant's chain and verifies it, with the same records and report as the
/// in-process KMS; another service is refused (`Forbidden`), bad pages are refused, and a
/// server without an audit trail says it has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_readers_read_and_verify_chains_over_grpc() {
    let env = env(Backend::Sqlite).await;
    let alias = KeyAlias::new("issuer", "audited").unwrap();
    env.kms
        .create_key(
            &env.a,
            &NewKey::new(alias.clone(), KeySpec::signing(Algorithm::Es256)),
        )
        .await
        .unwrap();
    env.kms.sign(&env.a, &alias, b"audited").await.unwrap();
    let local = env.kms.audit_events(&env.a, 0, 100).await.unwrap();
    assert_eq!(local.len(), 2);

    let key = service_key();
    let reader = spawn_serving(
        &env,
        jwt_auth(&key, env.clock.clone()),
        None,
        None,
        Some(AuditReaders::new(
            Arc::new(env.kms.clone()),
            [SERVICE.to_owned()],
        )),
    )
    .await;
    let remote = remote_jwt(&reader, key, env.clock.clone()).await;
    assert_eq!(
        edk_kms::audit::AuditTrail::events(&remote, &env.a, 0, 100)
            .await
            .unwrap(),
        local
    );
    let page = edk_kms::audit::AuditTrail::events(&remote, &env.a, 1, 1)
        .await
        .unwrap();
    assert_eq!(page, local[1..]);
    assert!(
        edk_kms::audit::AuditTrail::events(&remote, &env.b, 0, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let report = edk_kms::audit::AuditTrail::verify(&remote, &env.a)
        .await
        .unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records, 2);
    for limit in [0, 1001] {
        let err = edk_kms::audit::AuditTrail::events(&remote, &env.a, 0, limit)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }
    let err = edk_kms::audit::AuditTrail::checkpoint(&remote, &env.a)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);

    // A changed record shows through gRPC as it does in process.
    crate::audit::tamper(
        &env,
        "UPDATE kms_audit_event SET actor = 'mallory' WHERE seq = 1",
    )
    .await;
    let report = edk_kms::audit::AuditTrail::verify(&remote, &env.a)
        .await
        .unwrap();
    assert_eq!(
        report.problem,
        Some(AuditProblem::HashMismatch),
        "{report:?}"
    );
    assert_eq!(report.first_bad_seq, Some(1));

    // A service that is not an audit reader, and a server with no audit trail.
    let key = service_key();
    let other = spawn_serving(
        &env,
        jwt_auth(&key, env.clock.clone()),
        None,
        None,
        Some(AuditReaders::new(
            Arc::new(env.kms.clone()),
            ["edk-platform".to_owned()],
        )),
    )
    .await;
    let refused = remote_jwt(&other, key, env.clock.clone()).await;
    let err = edk_kms::audit::AuditTrail::events(&refused, &env.a, 0, 100)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden, "{err}");
    let err = edk_kms::audit::AuditTrail::verify(&refused, &env.a)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden, "{err}");
    let (plain, key) = jwt_server(&env).await;
    let without = remote_jwt(&plain, key, env.clock.clone()).await;
    let err = edk_kms::audit::AuditTrail::events(&without, &env.a, 0, 100)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
}

/// A service the server lets act as others (`with_acts_as`) uses their reserved aliases, and
/// only theirs: the platform making a tenant's `as.*` and `did.*` keys and signing with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_acting_as_others_uses_their_reserved_aliases_only() {
    let env = env(Backend::Sqlite).await;
    let platform_key = Arc::new(service_key());
    let issuer_key = Arc::new(service_key());
    let auth = services_auth(
        &env,
        &[
            ("platform", &*platform_key, None),
            (SERVICE, &*issuer_key, None),
        ],
    )
    .with_acts_as("platform", ["as".to_owned(), "did".to_owned()]);
    let server = spawn(&env, ServiceAuth::ServiceJwt(auth), None).await;
    let platform = remote_as(&server, "platform", platform_key, env.clock.clone()).await;
    let issuer = remote_as(&server, SERVICE, issuer_key, env.clock.clone()).await;
    let spec = KeySpec::signing(Algorithm::Es256);
    for alias in ["as.access-token-signing", "did.issuer"] {
        let alias: KeyAlias = alias.parse().unwrap();
        platform
            .create_key(&env.a, &NewKey::new(alias.clone(), spec))
            .await
            .unwrap();
        platform.sign(&env.a, &alias, b"m").await.unwrap();
        // The grant is the platform's, not every caller's.
        let err = issuer.sign(&env.a, &alias, b"m").await.unwrap_err();
        assert!(matches!(err, Error::ReservedAlias { .. }), "{err:?}");
    }
    // Not the services it was not granted, nor another service's identity alias.
    for alias in ["audit.audit-checkpoint", "issuer.service-identity"] {
        let alias: KeyAlias = alias.parse().unwrap();
        let err = platform
            .create_key(&env.a, &NewKey::new(alias, spec))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ReservedAlias { .. }), "{err:?}");
    }
}
