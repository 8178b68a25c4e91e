//! The staff directory: every location with its settings, and every user with their role and
//! locations, as one versioned snapshot held in memory (see [`crate::snapshot`]): who may
//! place an order, where it goes when the request does not say, the business date of that
//! location. Every change to locations, to staff or to their locations moves its version.

use std::collections::HashMap;

use domain::{Location, LocationId, Role, UserId};

use crate::actor::Actor;
use crate::snapshot::Versioned;

/// One consistent view of locations and staff, at one version of storage.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    version: i64,
    locations: HashMap<LocationId, Location>,
    staff: HashMap<UserId, (Role, Vec<LocationId>)>,
}

impl Versioned for Directory {
    fn version(&self) -> i64 {
        self.version
    }
}

impl Directory {
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
