//! Locations: created and changed by admins, read by the staff who work in them.

use std::sync::Arc;

use tracing::instrument;
use uuid::Uuid;

use domain::{Action, Location, LocationChange, LocationId, LocationName, LocationSettings};

use crate::actor::{Actor, Caller, Denied, LocationScope};
use crate::clock::Clock;
use crate::page::{Cursor, Page, PageRequest};
use crate::ports::UserRepository;
use crate::store::StoreError;

/// Why a change to a stored location did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LocationChangeError {
    #[error("no such location")]
    NotFound,
    #[error("another location has this name")]
    NameTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Storage of locations. Locations are never deleted.
pub trait LocationRepository: Send + Sync {
    /// Inserts a location; `Ok(false)` when its name (ignoring case) is taken.
    fn insert(&self, location: &Location) -> Result<bool, StoreError>;
    fn find(&self, id: LocationId) -> Result<Option<Location>, StoreError>;
    /// Up to `page.limit + 1` locations of the scope, newest first, after the cursor.
    fn list(&self, scope: &LocationScope, page: &PageRequest) -> Result<Vec<Location>, StoreError>;
    /// In one transaction: locks the location, lets `change` apply, saves it.
    fn change(&self, id: LocationId, change: &mut dyn FnMut(&mut Location)) -> Result<Location, LocationChangeError>;
    /// Every location of the scope, oldest first.
    fn all(&self, scope: &LocationScope) -> Result<Vec<Location>, StoreError>;

    /// Every location's id, in id order.
    fn ids(&self) -> Result<Vec<LocationId>, StoreError> {
        let mut ids: Vec<LocationId> = self.all(&LocationScope::All)?.iter().map(Location::id).collect();
        ids.sort();
        Ok(ids)
    }
}

/// A location to create, already parsed.
#[derive(Debug, Clone)]
pub struct NewLocation {
    pub name: LocationName,
    pub settings: LocationSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error("your role may not do this")]
    Forbidden,
    #[error("no such location")]
    NotFound,
    #[error("a location with this name already exists")]
    NameTaken,
    #[error("the signed-in user no longer exists")]
    ActorGone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Denied> for LocationError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::Forbidden => Self::Forbidden,
            Denied::Hidden => Self::NotFound,
        }
    }
}

pub struct LocationService {
    locations: Arc<dyn LocationRepository>,
    users: Arc<dyn UserRepository>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for LocationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocationService").finish_non_exhaustive()
    }
}

impl LocationService {
    pub fn new(locations: Arc<dyn LocationRepository>, users: Arc<dyn UserRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { locations, users, clock }
    }

    #[instrument(skip_all)]
    pub fn create(&self, caller: &Caller, new: NewLocation) -> Result<Location, LocationError> {
        self.actor(caller)?.may(Action::ManageLocations)?;
        let location = Location::new(LocationId(Uuid::now_v7()), new.name, new.settings, self.clock.now());
        if self.locations.insert(&location)? { Ok(location) } else { Err(LocationError::NameTaken) }
    }

    /// Applies a change; it holds for orders created afterwards.
    #[instrument(skip_all, fields(location_id = %id))]
    pub fn change(&self, caller: &Caller, id: LocationId, change: LocationChange) -> Result<Location, LocationError> {
        self.actor(caller)?.may(Action::ManageLocations)?;
        let now = self.clock.now();
        let mut change = Some(change);
        self.locations
            .change(id, &mut |location| {
                if let Some(change) = change.take() {
                    location.change(change, now);
                }
            })
            .map_err(|e| match e {
                LocationChangeError::NotFound => LocationError::NotFound,
                LocationChangeError::NameTaken => LocationError::NameTaken,
                LocationChangeError::Store(e) => LocationError::Store(e),
            })
    }

    pub fn get(&self, caller: &Caller, id: LocationId) -> Result<Location, LocationError> {
        let actor = self.actor(caller)?;
        actor.may(Action::ReadLocations)?;
        let location = self.locations.find(id)?.ok_or(LocationError::NotFound)?;
        actor.may_on(Action::ReadLocations, id, None)?;
        Ok(location)
    }

    /// Every location for an admin; the user's own for the others.
    pub fn list(&self, caller: &Caller, page: PageRequest) -> Result<Page<Location>, LocationError> {
        let scope = self.actor(caller)?.scope(Action::ReadLocations, None)?;
        let rows = self.locations.list(&scope, &page)?;
        Ok(Page::from_rows(rows, page.limit, |l| Cursor { created_at: l.created_at(), id: l.id().0 }))
    }

    fn actor(&self, caller: &Caller) -> Result<Actor, LocationError> {
        self.users.actor(caller)?.ok_or(LocationError::ActorGone)
    }
}
