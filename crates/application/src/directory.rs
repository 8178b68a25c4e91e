//! The staff directory: every location with its settings, and every user with their role and
//! locations, as one versioned snapshot held in memory.
//!
//! Placing an order needs all of that (who may place it, where it goes when the request does
//! not say, the business date of that location) and must not pay a query for it: the
//! snapshot answers, and the order's insert statement checks that the snapshot's version is
//! still storage's (every change to locations, to staff or to their locations moves it). A
//! stale snapshot costs one reload and a retry, never a wrong answer.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use domain::{Location, LocationId, Role, UserId};

use crate::actor::Actor;
use crate::store::StoreError;

/// One consistent view of locations and staff, at one version of storage.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    version: i64,
    locations: HashMap<LocationId, Location>,
    staff: HashMap<UserId, (Role, Vec<LocationId>)>,
}

impl Directory {
    /// The version a snapshot that was never loaded has: no storage version matches it.
    pub const NEVER_LOADED: i64 = -1;

    /// An empty snapshot that storage will find stale at the first write.
    pub fn never_loaded() -> Self {
        Self { version: Self::NEVER_LOADED, ..Self::default() }
    }

    pub fn new(version: i64, locations: Vec<Location>, staff: Vec<(UserId, Role, Vec<LocationId>)>) -> Self {
        Self {
            version,
            locations: locations.into_iter().map(|l| (l.id(), l)).collect(),
            staff: staff.into_iter().map(|(id, role, locations)| (id, (role, locations))).collect(),
        }
    }

    pub fn version(&self) -> i64 {
        self.version
    }

    /// The user as this snapshot knows them.
    pub fn actor(&self, user: UserId) -> Option<Actor> {
        self.staff.get(&user).map(|(role, locations)| Actor {
            user_id: user,
            role: *role,
            locations: locations.clone(),
        })
    }

    pub fn location(&self, id: LocationId) -> Option<&Location> {
        self.locations.get(&id)
    }

    /// The locations `actor` works in (every location for an admin), in id order.
    pub fn locations_of(&self, actor: &Actor) -> Vec<LocationId> {
        let mut ids: Vec<LocationId> = if actor.is_admin() {
            self.locations.keys().copied().collect()
        } else {
            actor.locations.iter().copied().filter(|id| self.locations.contains_key(id)).collect()
        };
        ids.sort();
        ids
    }
}

/// A future of the directory port.
pub type PendingDirectory = Pin<Box<dyn Future<Output = Result<Arc<Directory>, StoreError>> + Send>>;

/// Where the snapshot comes from. Implementations keep one snapshot per process and reload it
/// when a caller finds it stale; callers that find the same snapshot stale share one reload.
pub trait StaffDirectory: Send + Sync {
    /// The snapshot this process holds (possibly stale: writes check its version).
    fn current(&self) -> Arc<Directory>;
    /// A snapshot read from storage after `stale` was found out of date (or the one another
    /// caller read meanwhile, when it is newer than `stale`).
    fn refresh(&self, stale: i64) -> PendingDirectory;
}
