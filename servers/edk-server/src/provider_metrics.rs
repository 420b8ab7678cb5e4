//! Prometheus metrics of the in-process KMS's remote key providers (AWS KMS, Azure Key
//! Vault, Vault Transit, CSC), read from each provider's
//! [`remote_metrics`](KeyProvider::remote_metrics) when the registry is gathered. The
//! providers are those of the KMS's live [`ProviderSet`] at that moment: the configured ones
//! and those registered at run time (`/provider-registrations`), labelled by provider id
//! alike; a removed registration's series go away, and a replaced one's start again from the
//! new provider's counters.
//!
//! - `kms_provider_calls_total{provider}`: operations asked of the provider;
//! - `kms_provider_attempts_total{provider}`: requests sent to its service (retries included);
//! - `kms_provider_throttles_total{provider}`: requests the service throttled;
//! - `kms_provider_errors_total{provider, kind}`: failed operations by kind (`unavailable`,
//!   `circuit_open`, `not_found`, ...);
//! - `kms_provider_attempt_duration_seconds{provider}`: a histogram of request latencies;
//! - `kms_provider_breaker_open{provider}`: 1 while the circuit breaker is open.
//!
//! Labelled by provider id and error kind only, so the series count stays bounded. Providers
//! without remote metrics (software, PKCS#11) add no series.

use std::sync::Arc;

use edk_kms::KeyProvider;
use edk_kms::provider::{LATENCY_BUCKETS_MILLIS, RemoteMetrics};
use edk_kms::registry::ProviderSet;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};

use crate::metrics::Metrics;

const CALLS: (&str, &str) = (
    "kms_provider_calls_total",
    "Operations asked of a remote key provider",
);
const ATTEMPTS: (&str, &str) = (
    "kms_provider_attempts_total",
    "Requests a remote key provider sent to its service, retries included",
);
const THROTTLES: (&str, &str) = (
    "kms_provider_throttles_total",
    "Requests the key service throttled",
);
const ERRORS: (&str, &str) = (
    "kms_provider_errors_total",
    "Failed remote key provider operations, by kind",
);
const DURATION: (&str, &str) = (
    "kms_provider_attempt_duration_seconds",
    "Time one request to the key service took",
);
const BREAKER: (&str, &str) = (
    "kms_provider_breaker_open",
    "Whether the provider's circuit breaker is open (1) or closed (0)",
);

/// The [`Collector`] of the remote providers' metrics; see the [module docs](self).
pub struct ProviderMetrics {
    providers: Providers,
    descs: Vec<Desc>,
}

/// Where the collector finds the providers when it is gathered.
enum Providers {
    /// A fixed list.
    Fixed(Vec<Arc<dyn KeyProvider>>),
    /// A KMS's live set, registered providers included.
    Live(ProviderSet),
}

impl Providers {
    fn now(&self) -> Vec<Arc<dyn KeyProvider>> {
        match self {
            Self::Fixed(providers) => providers.clone(),
            Self::Live(set) => set.snapshot().to_vec(),
        }
    }
}

impl std::fmt::Debug for ProviderMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let providers = self.providers.now();
        let ids: Vec<&str> = providers.iter().map(|p| p.id().as_str()).collect();
        f.debug_struct("ProviderMetrics")
            .field("providers", &ids)
            .finish_non_exhaustive()
    }
}

impl ProviderMetrics {
    /// Registers the metrics of a fixed list of `providers` in `metrics`' registry.
    ///
    /// # Errors
    /// [`prometheus::Error`] if they cannot be registered (for instance, a second time in the
    /// same registry).
    pub fn register(
        metrics: &Metrics,
        providers: Vec<Arc<dyn KeyProvider>>,
    ) -> Result<(), prometheus::Error> {
        Self::register_source(metrics, Providers::Fixed(providers))
    }

    /// Registers the metrics of the providers of `set` in `metrics`' registry, read from the
    /// set each time the registry is gathered: providers registered at run time included.
    ///
    /// # Errors
    /// As [`register`](Self::register).
    pub fn register_set(metrics: &Metrics, set: ProviderSet) -> Result<(), prometheus::Error> {
        Self::register_source(metrics, Providers::Live(set))
    }

    fn register_source(metrics: &Metrics, providers: Providers) -> Result<(), prometheus::Error> {
        let provider = || vec!["provider".to_owned()];
        let descs = vec![
            Desc::new(
                CALLS.0.into(),
                CALLS.1.into(),
                provider(),
                Default::default(),
            )?,
            Desc::new(
                ATTEMPTS.0.into(),
                ATTEMPTS.1.into(),
                provider(),
                Default::default(),
            )?,
            Desc::new(
                THROTTLES.0.into(),
                THROTTLES.1.into(),
                provider(),
                Default::default(),
            )?,
            Desc::new(
                ERRORS.0.into(),
                ERRORS.1.into(),
                vec!["kind".to_owned(), "provider".to_owned()],
                Default::default(),
            )?,
            Desc::new(
                DURATION.0.into(),
                DURATION.1.into(),
                provider(),
                Default::default(),
            )?,
            Desc::new(
                BREAKER.0.into(),
                BREAKER.1.into(),
                provider(),
                Default::default(),
            )?,
        ];
        metrics
            .registry()
            .register(Box::new(Self { providers, descs }))
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name((*name).to_owned());
            pair.set_value((*value).to_owned());
            pair
        })
        .collect()
}

fn family(
    (name, help): (&str, &str),
    kind: MetricType,
    metrics: Vec<Metric>,
) -> Option<MetricFamily> {
    if metrics.is_empty() {
        return None;
    }
    let mut family = MetricFamily::default();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family.set_metric(metrics);
    Some(family)
}

#[allow(clippy::cast_precision_loss)]
fn counter(labels: Vec<LabelPair>, value: u64) -> Metric {
    let mut counter = Counter::default();
    counter.set_value(value as f64);
    let mut metric = Metric::from_label(labels);
    metric.set_counter(counter);
    metric
}

#[allow(clippy::cast_precision_loss)]
fn histogram(labels: Vec<LabelPair>, snapshot: &RemoteMetrics) -> Metric {
    let mut cumulative = 0;
    let mut buckets = Vec::with_capacity(LATENCY_BUCKETS_MILLIS.len());
    for (bound, count) in LATENCY_BUCKETS_MILLIS
        .iter()
        .zip(snapshot.latency_buckets.iter())
    {
        cumulative += count;
        let mut bucket = Bucket::default();
        bucket.set_upper_bound(*bound as f64 / 1000.0);
        bucket.set_cumulative_count(cumulative);
        buckets.push(bucket);
    }
    let mut histogram = Histogram::default();
    histogram.set_sample_count(snapshot.latency_buckets.iter().sum());
    histogram.set_sample_sum(snapshot.latency_micros_sum as f64 / 1_000_000.0);
    histogram.set_bucket(buckets);
    let mut metric = Metric::from_label(labels);
    metric.set_histogram(histogram);
    metric
}

impl Collector for ProviderMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let (mut calls, mut attempts, mut throttles, mut errors, mut durations, mut breakers) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for provider in &self.providers.now() {
            let Some(snapshot) = provider.remote_metrics() else {
                continue;
            };
            let id = provider.id().as_str();
            let by_provider = || labels(&[("provider", id)]);
            calls.push(counter(by_provider(), snapshot.calls));
            attempts.push(counter(by_provider(), snapshot.attempts));
            throttles.push(counter(by_provider(), snapshot.throttles));
            for (kind, count) in &snapshot.errors {
                errors.push(counter(labels(&[("kind", kind), ("provider", id)]), *count));
            }
            durations.push(histogram(by_provider(), &snapshot));
            let mut gauge = Gauge::default();
            gauge.set_value(if snapshot.breaker_open { 1.0 } else { 0.0 });
            let mut metric = Metric::from_label(by_provider());
            metric.set_gauge(gauge);
            breakers.push(metric);
        }
        [
            family(CALLS, MetricType::COUNTER, calls),
            family(ATTEMPTS, MetricType::COUNTER, attempts),
            family(THROTTLES, MetricType::COUNTER, throttles),
            family(ERRORS, MetricType::COUNTER, errors),
            family(DURATION, MetricType::HISTOGRAM, durations),
            family(BREAKER, MetricType::GAUGE, breakers),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}
