//! Client-secret hashing (argon2id) shared fairly by the tenants of one process.
//!
//! Argon2id is CPU-heavy and runs off the async threads. At most [`HASHING_THREADS`] hashes
//! run at once, in arrival order; each tenant may have at most a configured number of hashes
//! running or waiting, and one more is refused at once (`temporarily_unavailable`). A tenant
//! flooding the token endpoint with client secrets thus holds at most its own share of the
//! queue, and another tenant's check waits for at most that share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use edk_core::TenantId;
use tokio::sync::Semaphore;

use crate::error::{Error, OAuthErrorCode};

/// How many argon2id hashes the process runs at once.
pub const HASHING_THREADS: usize = 2;

/// The hashing capacity of one process.
#[derive(Debug)]
pub(crate) struct HashingPool {
    permits: Arc<Semaphore>,
    per_tenant: usize,
    in_flight: Mutex<HashMap<TenantId, usize>>,
}

/// A tenant's place in the pool, given back when dropped.
#[derive(Debug)]
struct Slot {
    pool: Arc<HashingPool>,
    tenant: TenantId,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut in_flight) = self.pool.in_flight.lock()
            && let Some(count) = in_flight.get_mut(&self.tenant)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                in_flight.remove(&self.tenant);
            }
        }
    }
}

impl HashingPool {
    /// A pool letting each tenant have `per_tenant` hashes running or waiting (at least one).
    pub(crate) fn new(per_tenant: usize) -> Arc<Self> {
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(HASHING_THREADS)),
            per_tenant: per_tenant.max(1),
            in_flight: Mutex::new(HashMap::new()),
        })
    }

    /// Runs `work` for `tenant` on a blocking thread once the tenant has a place and a thread
    /// is free. The place and the thread stay taken until `work` ends, even when the caller
    /// stops waiting.
    pub(crate) async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        tenant: TenantId,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let slot = self.enter(tenant)?;
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal {
                what: "hashing pool closed",
            })?;
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop((permit, slot));
            result
        })
        .await
        .map_err(|_| Error::Internal {
            what: "hashing task failed",
        })
    }

    fn enter(self: &Arc<Self>, tenant: TenantId) -> Result<Slot, Error> {
        let mut in_flight = self.in_flight.lock().map_err(|_| Error::Internal {
            what: "hashing pool poisoned",
        })?;
        let count = in_flight.entry(tenant).or_insert(0);
        if *count >= self.per_tenant {
            return Err(Error::oauth(
                OAuthErrorCode::TemporarilyUnavailable,
                "too many client secret checks of this tenant are in progress; retry shortly",
            ));
        }
        *count += 1;
        Ok(Slot {
            pool: Arc::clone(self),
            tenant,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_beyond_its_share_is_refused_and_others_are_not() {
        let pool = HashingPool::new(2);
        let (a, b) = (TenantId::generate(), TenantId::generate());
        let first = pool.enter(a).unwrap();
        let _second = pool.enter(a).unwrap();
        let refused = pool.enter(a).unwrap_err();
        assert_eq!(refused.code(), OAuthErrorCode::TemporarilyUnavailable);
        let _other = pool.enter(b).unwrap();
        drop(first);
        let _again = pool.enter(a).unwrap();
    }
}
