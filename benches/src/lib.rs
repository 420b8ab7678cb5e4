#![doc = include_str!("../README.md")]

use std::time::Duration;

/// The `q` quantile (0 to 1) of `sorted` latencies by nearest rank, zero when there are none.
#[must_use]
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a list of latencies"
    )]
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}
