//! Versioned snapshots held in memory: the staff directory and the menu.
//!
//! Placing an order needs both (who may place it and where, what each menu line costs) and
//! must not pay a query for them: the process's snapshot answers, and the order's insert
//! statement checks that each snapshot's version is still storage's (every change moves it).
//! A stale snapshot costs one reload and a retry, never a wrong answer: no order is written
//! with a price, a sold-out flag or a permission older than the last change that returned.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::store::StoreError;

/// A snapshot that knows its storage version.
pub trait Versioned {
    /// The version a snapshot that was never loaded has: no storage version matches it.
    const NEVER_LOADED: i64 = -1;
    fn version(&self) -> i64;
}

/// A future of the snapshot port.
pub type PendingSnapshot<T> = Pin<Box<dyn Future<Output = Result<Arc<T>, StoreError>> + Send>>;

/// Where snapshots come from. Implementations keep one snapshot per process and reload it when
/// a caller finds it stale; callers that find the same snapshot stale share one reload.
pub trait Snapshots<T>: Send + Sync {
    /// The snapshot this process holds (possibly stale: writes check its version).
    fn current(&self) -> Arc<T>;
    /// A snapshot read from storage after the one at version `stale` was found out of date (or
    /// the one another caller read meanwhile, when it is newer than `stale`).
    fn refresh(&self, stale: i64) -> PendingSnapshot<T>;
}
