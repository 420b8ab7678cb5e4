//! OpenTelemetry traces across services: a collector in the test's process (an OTLP/gRPC
//! trace receiver on loopback) receives the spans of the compiled `edk-issuer` and of the KMS
//! server it signs through. A request carrying a `traceparent` yields the issuer's request
//! span as the child of that context, with the tenant and the route template, and the KMS's
//! span of the `Sign` call in the same trace; no span attribute holds the raw path, a token or
//! a key. An issuer without the section exports nothing and does not continue the trace.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use edk_core::TenantSlug;
use edk_kms_server::testkit::{RemoteKms, TestAdmin, free_port};
use edk_server::{LogConfig, ObservabilityConfig};
use edk_testkit::TestDb;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use serde_json::json;

/// One received span, with the `service.name` of the process that sent it.
#[derive(Clone, Debug)]
struct Received {
    service: String,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    attributes: Vec<(String, String)>,
}

impl Received {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }
}

/// An OTLP trace receiver that keeps every span.
#[derive(Clone, Debug, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Received>>>,
}

fn text(attributes: &[KeyValue]) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AnyValue::StringValue(s)) => s.clone(),
                Some(AnyValue::IntValue(i)) => i.to_string(),
                Some(AnyValue::BoolValue(b)) => b.to_string(),
                Some(AnyValue::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        for resource in request.into_inner().resource_spans {
            let resource_attributes = resource
                .resource
                .as_ref()
                .map(|r| text(&r.attributes))
                .unwrap_or_default();
            let service = resource_attributes
                .iter()
                .find(|(key, _)| key == "service.name")
                .map(|(_, value)| value.clone())
                .unwrap_or_default();
            for scope in resource.scope_spans {
                for span in scope.spans {
                    spans.push(Received {
                        service: service.clone(),
                        name: span.name,
                        trace_id: span.trace_id,
                        span_id: span.span_id,
                        parent_span_id: span.parent_span_id,
                        attributes: text(&span.attributes),
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Collector {
    async fn start(self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(self))
                .serve_with_incoming(incoming),
        );
        addr
    }

    fn spans(&self) -> Vec<Received> {
        self.spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_through_the_issuer_and_the_kms_is_one_trace() {
    edk_server::install_crypto_provider();
    let collector = Collector::default();
    let collector_addr = collector.clone().start().await;
    let endpoint = format!("http://{collector_addr}");
    // This process hosts the KMS server: its spans go to the collector as `edk-kms`.
    let observability: ObservabilityConfig = serde_json::from_value(json!({
        "otlp": { "endpoint": endpoint, "service_name": "edk-kms" }
    }))
    .unwrap();
    let telemetry = edk_server::telemetry::init(
        &LogConfig {
            filter: "info".to_owned(),
            json: Some(true),
        },
        &observability,
        "edk-kms-test",
    )
    .unwrap();
    assert!(telemetry.exports());

    let db = TestDb::new().await;
    let admin = TestAdmin::new();
    let kms = RemoteKms::start(db.url(), "issuer", &["acme"]).await;
    let tenant = kms
        .server()
        .tenancy()
        .provision(TenantSlug::new("acme").unwrap(), "Acme")
        .await
        .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _child = kms.spawn_service_with(
        env!("CARGO_BIN_EXE_edk-issuer"),
        "issuer",
        port,
        db.url(),
        &admin,
        &json!({ "observability": { "otlp": {
            "endpoint": endpoint, "service_name": "edk-issuer",
        } } }),
    );
    crate::support::bind_acme(kms.server().tenancy(), tenant.id, port).await;

    // The signed metadata: the issuer asks the KMS to sign, within the caller's trace.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let client = reqwest::Client::new();
    let mut signed = false;
    for _ in 0..300 {
        let response = client
            .get(format!("{base}/.well-known/openid-credential-issuer/acme"))
            .header("Host", format!("localhost:{port}"))
            .header("Accept", "application/jwt")
            .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
            .send()
            .await;
        if let Ok(response) = response
            && response.status() == 200
        {
            signed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(signed, "edk-issuer never served the signed metadata");

    // The issuer's batch goes out within its schedule; this process's spans on a flush.
    let mut issuer_span = None;
    let mut kms_span = None;
    for _ in 0..200 {
        telemetry.flush().await;
        let spans = collector.spans();
        issuer_span = spans
            .iter()
            .find(|span| {
                span.service == "edk-issuer"
                    && hex(&span.trace_id) == trace_id
                    && span.attribute("route")
                        == Some("/.well-known/openid-credential-issuer/{binding}")
                    && span.attribute("status") == Some("200")
            })
            .cloned();
        kms_span = spans
            .iter()
            .find(|span| {
                span.service == "edk-kms"
                    && hex(&span.trace_id) == trace_id
                    && span.name == "/edk.kms.v1.KeyManagement/Sign"
            })
            .cloned();
        if issuer_span.is_some() && kms_span.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let spans = collector.spans();
    let issuer_span = issuer_span.unwrap_or_else(|| panic!("no issuer request span: {spans:#?}"));
    let kms_span = kms_span.unwrap_or_else(|| panic!("no KMS Sign span: {spans:#?}"));

    // The issuer's request span continues the caller's trace, named by its route template,
    // with the tenant.
    assert_eq!(hex(&issuer_span.parent_span_id), caller_span);
    assert_eq!(
        issuer_span.name,
        "GET /.well-known/openid-credential-issuer/{binding}"
    );
    assert_eq!(
        issuer_span.attribute("tenant"),
        Some(tenant.id.to_string().as_str())
    );
    // The KMS's span of the call is in the same trace, below a span of the issuer, with the
    // tenant that authenticated.
    assert!(
        spans
            .iter()
            .any(|span| span.service == "edk-issuer" && span.span_id == kms_span.parent_span_id),
        "{kms_span:?}"
    );
    assert_eq!(
        kms_span.attribute("tenant"),
        Some(tenant.id.to_string().as_str())
    );

    // No span carries the raw path, a bearer token, a JWT or the KEK.
    for span in &spans {
        for (key, value) in &span.attributes {
            assert_ne!(key, "path", "{span:?}");
            assert!(!value.contains("/acme"), "{span:?}");
            assert!(!value.contains("Bearer"), "{span:?}");
            assert!(!value.contains("eyJ"), "{span:?}");
            assert!(
                !value.contains(secrecy::ExposeSecret::expose_secret(kms.kek())),
                "{span:?}"
            );
        }
    }

    // An issuer without the section neither exports nor continues the caller's trace: its
    // signing call reaches the KMS in a trace of the KMS's own.
    let signs = |spans: &[Received]| {
        spans
            .iter()
            .filter(|span| span.name == "/edk.kms.v1.KeyManagement/Sign")
            .count()
    };
    let signs_before = signs(&collector.spans());
    let plain_port = free_port();
    let _plain = kms.spawn_service(
        env!("CARGO_BIN_EXE_edk-issuer"),
        "issuer",
        plain_port,
        db.url(),
        &admin,
    );
    let untraced = "0af7651916cd43dd8448eb211c80319c";
    let mut signed = false;
    for _ in 0..300 {
        let response = client
            .get(format!(
                "http://127.0.0.1:{plain_port}/.well-known/openid-credential-issuer/acme"
            ))
            .header("Host", format!("localhost:{port}"))
            .header("Accept", "application/jwt")
            .header("traceparent", format!("00-{untraced}-b7ad6b7169203331-01"))
            .send()
            .await;
        if let Ok(response) = response
            && response.status() == 200
        {
            signed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        signed,
        "the issuer without OTLP never served the signed metadata"
    );
    telemetry.flush().await;
    // Longer than a batch schedule (5 s), had the plain issuer exported anything.
    tokio::time::sleep(Duration::from_secs(6)).await;
    telemetry.flush().await;
    let spans = collector.spans();
    assert!(
        signs(&spans) > signs_before,
        "the KMS signed for the plain issuer"
    );
    assert!(
        spans.iter().all(|span| hex(&span.trace_id) != untraced),
        "{spans:#?}"
    );

    telemetry.shutdown().await;
    kms.shutdown().await;
    db.close().await;
}
