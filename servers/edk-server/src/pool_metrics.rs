//! Prometheus gauges of the database pools' saturation, read from the tenancy when the
//! registry is gathered:
//!
//! - `db_pool_connections{pool}`: open connections;
//! - `db_pool_idle_connections{pool}`: open connections not in use;
//! - `db_pool_max_connections{pool}`: the most the pool opens.
//!
//! `pool` is `platform`, `workload` (the shared tenant database, or on SQLite every tenant's
//! file together) or `dedicated` (one series per dedicated database URL, summed), so the
//! series count stays bounded. A pool whose in-use connections (`connections - idle`) reach
//! its maximum makes requests wait for a connection.

use edk_tenancy::Tenancy;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{Gauge, LabelPair, Metric, MetricFamily, MetricType};

use crate::metrics::Metrics;

const GAUGES: [(&str, &str); 3] = [
    ("db_pool_connections", "Open connections of a database pool"),
    (
        "db_pool_idle_connections",
        "Open connections of a database pool not in use",
    ),
    (
        "db_pool_max_connections",
        "The most connections a database pool opens",
    ),
];

/// The [`Collector`] of the pools' gauges; see the [module docs](self).
pub struct PoolMetrics {
    tenancy: Tenancy,
    descs: Vec<Desc>,
}

impl std::fmt::Debug for PoolMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolMetrics").finish_non_exhaustive()
    }
}

impl PoolMetrics {
    /// Registers the gauges of `tenancy`'s pools in `metrics`' registry.
    ///
    /// # Errors
    /// [`prometheus::Error`] if they cannot be registered (for instance, a second time in the
    /// same registry).
    pub fn register(metrics: &Metrics, tenancy: Tenancy) -> Result<(), prometheus::Error> {
        let descs = GAUGES
            .iter()
            .map(|(name, help)| {
                Desc::new(
                    (*name).to_owned(),
                    (*help).to_owned(),
                    vec!["pool".to_owned()],
                    Default::default(),
                )
            })
            .collect::<Result<_, _>>()?;
        metrics
            .registry()
            .register(Box::new(Self { tenancy, descs }))
    }
}

fn gauge(pool: &str, value: u32) -> Metric {
    let mut label = LabelPair::default();
    label.set_name("pool".to_owned());
    label.set_value(pool.to_owned());
    let mut gauge = Gauge::default();
    gauge.set_value(f64::from(value));
    let mut metric = Metric::from_label(vec![label]);
    metric.set_gauge(gauge);
    metric
}

impl Collector for PoolMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        // Dedicated pools are summed into one series.
        let mut pools: Vec<(&'static str, [u32; 3])> = Vec::new();
        for stats in self.tenancy.pool_stats() {
            let values = [stats.size, stats.idle, stats.max];
            match pools.iter_mut().find(|(pool, _)| *pool == stats.pool) {
                Some((_, sums)) => {
                    for (sum, value) in sums.iter_mut().zip(values) {
                        *sum = sum.saturating_add(value);
                    }
                }
                None => pools.push((stats.pool, values)),
            }
        }
        GAUGES
            .iter()
            .enumerate()
            .map(|(index, (name, help))| {
                let mut family = MetricFamily::default();
                family.set_name((*name).to_owned());
                family.set_help((*help).to_owned());
                family.set_field_type(MetricType::GAUGE);
                family.set_metric(
                    pools
                        .iter()
                        .map(|(pool, values)| gauge(pool, values[index]))
                        .collect(),
                );
                family
            })
            .collect()
    }
}
