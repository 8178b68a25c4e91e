//! Staff users: creating them and assigning them to locations (admins only), reading them,
//! listing them.

use std::collections::BTreeSet;
use std::sync::Arc;

use tracing::instrument;
use uuid::Uuid;

use domain::{Action, Email, LocationId, Password, PersonName, Role, User, UserId};

use crate::actor::{Actor, Caller, Denied};
use crate::clock::Clock;
use crate::locations::LocationRepository;
use crate::page::{Page, PageRequest};
use crate::ports::{HashError, PasswordHasher, StaffMember, UserRepository};
use crate::store::StoreError;

/// A user to create, already parsed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub name: PersonName,
    pub password: Password,
    pub role: Role,
    /// The locations they work in; may be left out while only one location exists (and must
    /// be, for an admin).
    pub locations: Option<Vec<LocationId>>,
}

/// Why the locations given for a user are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StaffLocationsError {
    #[error("is required: there are {count} locations")]
    Required { count: usize },
    #[error("must name at least one location")]
    Empty,
    #[error("must be left out: admins work in every location")]
    ForAdmin,
    #[error("names locations that do not exist: {0}")]
    Unknown(String),
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("only an admin may do this")]
    Forbidden,
    #[error("no such user")]
    NotFound,
    #[error("a user with this email already exists")]
    DuplicateEmail,
    #[error(transparent)]
    Locations(#[from] StaffLocationsError),
    /// The token's user no longer exists.
    #[error("the signed-in user no longer exists")]
    ActorGone,
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Denied> for UserError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::Forbidden => Self::Forbidden,
            Denied::Hidden => Self::NotFound,
        }
    }
}

pub struct UserService {
    users: Arc<dyn UserRepository>,
    locations: Arc<dyn LocationRepository>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for UserService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserService").finish_non_exhaustive()
    }
}

impl UserService {
    pub fn new(
        users: Arc<dyn UserRepository>,
        locations: Arc<dyn LocationRepository>,
        hasher: Arc<dyn PasswordHasher>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { users, locations, hasher, clock }
    }

    /// Creates a user on behalf of an admin. Hashes the password: run it on the hashing pool.
    #[instrument(skip_all, fields(role = %new.role))]
    pub fn create(&self, caller: &Caller, new: NewUser) -> Result<StaffMember, UserError> {
        self.actor(caller)?.may(Action::ManageStaff)?;
        self.create_unchecked(new)
    }

    /// Creates a user with no actor: for `db-admin` (first admin, scripts).
    #[instrument(skip_all, fields(role = %new.role))]
    pub fn create_unchecked(&self, new: NewUser) -> Result<StaffMember, UserError> {
        let locations = match (new.role, new.locations) {
            (Role::Admin, None) => Vec::new(),
            (Role::Admin, Some(_)) => return Err(StaffLocationsError::ForAdmin.into()),
            (_, None) => match self.locations.ids()?.as_slice() {
                [only] => vec![*only],
                all => return Err(StaffLocationsError::Required { count: all.len() }.into()),
            },
            (_, Some(ids)) => self.existing(ids, false)?,
        };
        let hash = self.hasher.hash(&new.password)?;
        let user = User::new(UserId(Uuid::now_v7()), new.email, new.name, new.role, self.clock.now());
        if !self.users.insert(&user, &hash, &locations)? {
            return Err(UserError::DuplicateEmail);
        }
        self.complete(vec![StaffMember { user, locations }]).map(|mut m| m.remove(0))
    }

    /// Replaces the locations a user works in (admin only; not for admins, who work everywhere).
    /// An empty list takes every location away.
    #[instrument(skip_all, fields(user_id = %id))]
    pub fn set_locations(
        &self,
        caller: &Caller,
        id: UserId,
        locations: Vec<LocationId>,
    ) -> Result<StaffMember, UserError> {
        self.actor(caller)?.may(Action::ManageStaff)?;
        let member = self.users.find(id)?.ok_or(UserError::NotFound)?;
        if member.user.role() == Role::Admin {
            return Err(StaffLocationsError::ForAdmin.into());
        }
        let locations = self.existing(locations, true)?;
        if !self.users.set_locations(id, &locations)? {
            return Err(UserError::NotFound);
        }
        Ok(StaffMember { user: member.user, locations })
    }

    pub fn me(&self, caller: &Caller) -> Result<StaffMember, UserError> {
        let member = self.users.find(caller.user_id)?.ok_or(UserError::ActorGone)?;
        self.complete(vec![member]).map(|mut m| m.remove(0))
    }

    /// A user, for an admin or for the user itself.
    pub fn get(&self, caller: &Caller, id: UserId) -> Result<StaffMember, UserError> {
        let actor = self.actor(caller)?;
        if actor.user_id != id {
            actor.may(Action::ManageStaff)?;
        }
        let member = self.users.find(id)?.ok_or(UserError::NotFound)?;
        self.complete(vec![member]).map(|mut m| m.remove(0))
    }

    pub fn list(&self, caller: &Caller, page: PageRequest) -> Result<Page<StaffMember>, UserError> {
        self.actor(caller)?.may(Action::ManageStaff)?;
        let rows = self.complete(self.users.list(&page)?)?;
        Ok(Page::from_rows(rows, page.limit, |m| crate::page::Cursor {
            created_at: m.user.created_at(),
            id: m.user.id().0,
        }))
    }

    pub fn find_by_email(&self, email: &Email) -> Result<Option<User>, UserError> {
        Ok(self.users.find_credentials(email)?.map(|(user, _)| user))
    }

    pub fn count_admins(&self) -> Result<i64, UserError> {
        Ok(self.users.count_admins()?)
    }

    fn actor(&self, caller: &Caller) -> Result<Actor, UserError> {
        self.users.actor(caller)?.ok_or(UserError::ActorGone)
    }

    /// The ids, each once and in order, if every one names a location.
    fn existing(&self, ids: Vec<LocationId>, allow_empty: bool) -> Result<Vec<LocationId>, UserError> {
        let wanted: BTreeSet<LocationId> = ids.into_iter().collect();
        if wanted.is_empty() && !allow_empty {
            return Err(StaffLocationsError::Empty.into());
        }
        let known: BTreeSet<LocationId> = self.locations.ids()?.into_iter().collect();
        let unknown: Vec<String> = wanted.difference(&known).map(ToString::to_string).collect();
        if !unknown.is_empty() {
            return Err(StaffLocationsError::Unknown(unknown.join(", ")).into());
        }
        Ok(wanted.into_iter().collect())
    }

    /// Admins work in every location: their list is every location's id.
    fn complete(&self, mut members: Vec<StaffMember>) -> Result<Vec<StaffMember>, UserError> {
        if members.iter().any(|m| m.user.role() == Role::Admin) {
            let all = self.locations.ids()?;
            for member in members.iter_mut().filter(|m| m.user.role() == Role::Admin) {
                member.locations = all.clone();
            }
        }
        Ok(members)
    }
}
