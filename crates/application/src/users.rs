//! Staff users: creating them (admins only), reading them, listing them.

use std::sync::Arc;

use tracing::instrument;
use uuid::Uuid;

use domain::{Email, Password, PersonName, Role, User, UserId};

use crate::actor::{Actor, Caller};
use crate::clock::Clock;
use crate::page::{Page, PageRequest};
use crate::ports::{HashError, PasswordHasher, UserRepository};
use crate::store::StoreError;

/// A user to create, already parsed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub name: PersonName,
    pub password: Password,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("only an admin may do this")]
    Forbidden,
    #[error("no such user")]
    NotFound,
    #[error("a user with this email already exists")]
    DuplicateEmail,
    /// The token's user no longer exists.
    #[error("the signed-in user no longer exists")]
    ActorGone,
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct UserService {
    users: Arc<dyn UserRepository>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for UserService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserService").finish_non_exhaustive()
    }
}

impl UserService {
    pub fn new(users: Arc<dyn UserRepository>, hasher: Arc<dyn PasswordHasher>, clock: Arc<dyn Clock>) -> Self {
        Self { users, hasher, clock }
    }

    /// Creates a user on behalf of an admin. Hashes the password: run it on the hashing pool.
    #[instrument(skip_all, fields(role = %new.role))]
    pub fn create(&self, caller: &Caller, new: NewUser) -> Result<User, UserError> {
        let actor = self.actor(caller)?;
        if !actor.is_admin() {
            return Err(UserError::Forbidden);
        }
        self.create_unchecked(new)
    }

    /// Creates a user with no actor: for `db-admin` (first admin, scripts).
    #[instrument(skip_all, fields(role = %new.role))]
    pub fn create_unchecked(&self, new: NewUser) -> Result<User, UserError> {
        let hash = self.hasher.hash(&new.password)?;
        let user = User::new(UserId(Uuid::now_v7()), new.email, new.name, new.role, self.clock.now());
        if self.users.insert(&user, &hash)? { Ok(user) } else { Err(UserError::DuplicateEmail) }
    }

    pub fn me(&self, caller: &Caller) -> Result<User, UserError> {
        self.users.find(caller.user_id)?.ok_or(UserError::ActorGone)
    }

    /// A user, for an admin or for the user itself.
    pub fn get(&self, caller: &Caller, id: UserId) -> Result<User, UserError> {
        let actor = self.actor(caller)?;
        if !actor.is_admin() && actor.user_id != id {
            return Err(UserError::Forbidden);
        }
        self.users.find(id)?.ok_or(UserError::NotFound)
    }

    pub fn list(&self, caller: &Caller, page: PageRequest) -> Result<Page<User>, UserError> {
        if !self.actor(caller)?.is_admin() {
            return Err(UserError::Forbidden);
        }
        let rows = self.users.list(&page)?;
        Ok(Page::from_rows(rows, page.limit, |u| crate::page::Cursor { created_at: u.created_at(), id: u.id().0 }))
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
}
