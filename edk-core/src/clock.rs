//! Injectable time.
//!
//! Nothing in EDK reads the wall clock directly: every component that needs the time takes an
//! `Arc<dyn Clock>`, so tests can pin it with [`FixedClock`].

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: fmt::Debug + Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// The current time as whole seconds since the Unix epoch (the JWT `NumericDate`).
    fn unix_seconds(&self) -> i64 {
        unix_seconds(self.now())
    }
}

/// Whole seconds since the Unix epoch; negative before it.
#[must_use]
pub fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(clippy::disallowed_methods, reason = "the system clock")]
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that stands still until told to move; for tests and reproducible runs.
///
/// ```
/// # use edk_core::clock::{Clock, FixedClock};
/// let clock = FixedClock::at_unix(1_700_000_000);
/// clock.advance(std::time::Duration::from_secs(60));
/// assert_eq!(clock.unix_seconds(), 1_700_000_060);
/// ```
#[derive(Debug)]
pub struct FixedClock {
    millis: AtomicI64,
}

impl FixedClock {
    /// A clock fixed at `seconds` after the Unix epoch.
    #[must_use]
    pub fn at_unix(seconds: i64) -> Self {
        Self {
            millis: AtomicI64::new(seconds.saturating_mul(1000)),
        }
    }

    /// Sets the clock to `seconds` after the Unix epoch.
    pub fn set_unix(&self, seconds: i64) {
        self.millis
            .store(seconds.saturating_mul(1000), Ordering::SeqCst);
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let millis = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.millis.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        let millis = self.millis.load(Ordering::SeqCst);
        let magnitude = Duration::from_millis(millis.unsigned_abs());
        if millis >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let clock = FixedClock::at_unix(10);
        assert_eq!(clock.unix_seconds(), 10);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.unix_seconds(), 11);
        clock.set_unix(-5);
        assert_eq!(clock.unix_seconds(), -5);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.unix_seconds() > 1_577_836_800);
    }
}
