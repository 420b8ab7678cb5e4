//! Prometheus metrics of the periodic job scheduler ([`edk_tenancy::Scheduler`]): runs,
//! failures and items handled per job, and a histogram of run durations. Labelled by job
//! only, never by tenant, so the series count stays bounded.

use std::error::Error as StdError;
use std::time::Duration;

use edk_core::TenantId;
use edk_tenancy::JobObserver;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};

use crate::metrics::Metrics;

/// Upper bounds of the duration histogram, in seconds: housekeeping runs from milliseconds
/// to minutes.
const DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0,
];

/// A [`JobObserver`] that records every run in a server's [`Metrics`] registry:
/// `scheduler_job_runs_total{job}`, `scheduler_job_failures_total{job}`,
/// `scheduler_job_items_total{job}` and `scheduler_job_duration_seconds{job}`. A per-tenant
/// job counts one run per tenant.
#[derive(Clone, Debug)]
pub struct JobMetrics {
    runs: IntCounterVec,
    failures: IntCounterVec,
    items: IntCounterVec,
    duration: HistogramVec,
}

impl JobMetrics {
    /// Registers the scheduler metrics in `metrics`' registry.
    ///
    /// # Errors
    /// [`prometheus::Error`] if they cannot be registered (for instance, a second time in the
    /// same registry).
    pub fn new(metrics: &Metrics) -> Result<Self, prometheus::Error> {
        let labels = ["job"];
        let runs = IntCounterVec::new(
            Opts::new(
                "scheduler_job_runs_total",
                "Scheduled job runs, one per target",
            ),
            &labels,
        )?;
        let failures = IntCounterVec::new(
            Opts::new(
                "scheduler_job_failures_total",
                "Scheduled job runs that failed, one per target",
            ),
            &labels,
        )?;
        let items = IntCounterVec::new(
            Opts::new(
                "scheduler_job_items_total",
                "Items handled by scheduled job runs (keys rotated, rows purged, ...)",
            ),
            &labels,
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "scheduler_job_duration_seconds",
                "Time one scheduled job run took, per target",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &labels,
        )?;
        let registry = metrics.registry();
        registry.register(Box::new(runs.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(items.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self {
            runs,
            failures,
            items,
            duration,
        })
    }
}

impl JobObserver for JobMetrics {
    fn on_run(
        &self,
        job: &str,
        _tenant: Option<TenantId>,
        outcome: Result<u64, &(dyn StdError + Send + Sync + 'static)>,
        elapsed: Duration,
    ) {
        let labels = [job];
        self.runs.with_label_values(&labels).inc();
        match outcome {
            Ok(items) => self.items.with_label_values(&labels).inc_by(items),
            Err(_) => self.failures.with_label_values(&labels).inc(),
        }
        self.duration
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_failures_items_and_durations_are_exported_per_job() {
        let metrics = Metrics::new().unwrap();
        let jobs = JobMetrics::new(&metrics).unwrap();
        let tenant = Some(TenantId::generate());
        let broken = std::io::Error::other("store down");
        jobs.on_run("kms.rotate_due", tenant, Ok(3), Duration::from_millis(20));
        jobs.on_run("kms.rotate_due", tenant, Ok(2), Duration::from_millis(20));
        jobs.on_run("kms.rotate_due", None, Err(&broken), Duration::from_secs(2));
        jobs.on_run("tenancy.purge_deleted", None, Ok(0), Duration::ZERO);

        let text = metrics.render();
        for line in [
            r#"scheduler_job_runs_total{job="kms.rotate_due"} 3"#,
            r#"scheduler_job_failures_total{job="kms.rotate_due"} 1"#,
            r#"scheduler_job_items_total{job="kms.rotate_due"} 5"#,
            r#"scheduler_job_duration_seconds_count{job="kms.rotate_due"} 3"#,
            r#"scheduler_job_duration_seconds_bucket{job="kms.rotate_due",le="0.025"} 2"#,
            r#"scheduler_job_runs_total{job="tenancy.purge_deleted"} 1"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }
        assert!(!text.contains("store down"), "errors are not labels");
        assert!(
            matches!(
                JobMetrics::new(&metrics),
                Err(prometheus::Error::AlreadyReg)
            ),
            "registered once per registry"
        );
    }
}
