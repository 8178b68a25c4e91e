//! The ports the use cases need beyond their aggregates' own: users (every use case looks up
//! its caller), password hashing and tokens. A leaf of the crate: it depends on the domain and
//! on the storage error only.

use domain::{Email, LocationId, Password, Role, User, UserId};

use crate::actor::{Actor, Caller};
use crate::page::PageRequest;
use crate::store::StoreError;

/// A user and the locations they work in (as stored: none for admins, who work everywhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffMember {
    pub user: User,
    pub locations: Vec<LocationId>,
}

/// Storage of users. A user's email, name and role never change; the locations they work in
/// do, and a password hash may be replaced by a stronger hash of the same password.
pub trait UserRepository: Send + Sync {
    /// Inserts a user working in `locations`; `Ok(false)` when the email (ignoring case) is
    /// taken.
    fn insert(&self, user: &User, password_hash: &str, locations: &[LocationId]) -> Result<bool, StoreError>;
    fn find(&self, id: UserId) -> Result<Option<StaffMember>, StoreError>;
    /// The user's role and locations right now, or `None` when the user does not exist.
    fn find_access(&self, id: UserId) -> Result<Option<(Role, Vec<LocationId>)>, StoreError>;
    /// The caller as storage knows them now (their current role and locations), or `None` when
    /// the user no longer exists: every use case authorizes on this, never on the token's
    /// claims.
    fn actor(&self, caller: &Caller) -> Result<Option<Actor>, StoreError> {
        Ok(self.find_access(caller.user_id)?.map(|(role, locations)| Actor {
            user_id: caller.user_id,
            role,
            locations,
        }))
    }
    /// Replaces the locations the user works in; `Ok(false)` when there is no such user.
    fn set_locations(&self, id: UserId, locations: &[LocationId]) -> Result<bool, StoreError>;
    fn find_credentials(&self, email: &Email) -> Result<Option<(User, String)>, StoreError>;
    /// One stored password hash made with the parameters that most stored hashes have (`None`
    /// when there are no users).
    fn typical_password_hash(&self) -> Result<Option<String>, StoreError>;
    /// Replaces the hash only if it is still `old_hash` (a concurrent login may have done it).
    fn replace_password_hash(&self, id: UserId, old_hash: &str, new_hash: &str) -> Result<(), StoreError>;
    /// Up to `page.limit + 1` users, newest first, after the cursor.
    fn list(&self, page: &PageRequest) -> Result<Vec<StaffMember>, StoreError>;
    fn count_admins(&self) -> Result<i64, StoreError>;
}

/// A signed access token and how long it lives.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: String,
    pub expires_in_seconds: u64,
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub matches: bool,
    /// The hash was made with other parameters than today's: hash the password again.
    pub needs_rehash: bool,
}

/// Password hashing (Argon2id in production). CPU-heavy: callers run it on a bounded pool.
pub trait PasswordHasher: Send + Sync {
    fn hash(&self, password: &Password) -> Result<String, HashError>;
    fn verify(&self, password: &Password, hash: &str) -> Result<Verified, HashError>;
    /// A hash of a random password made with the algorithm and parameters of `stored`: what a
    /// login for an unknown email is checked against, so that it costs what checking a stored
    /// hash costs.
    fn dummy_like(&self, stored: &str) -> Result<String, HashError>;
}

/// A hash that could not be made or read: what failed, and why.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {what}")]
pub struct HashError {
    pub what: &'static str,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl HashError {
    pub fn new(what: &'static str) -> Self {
        Self { what, source: None }
    }

    pub fn caused(what: &'static str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self { what, source: Some(source.into()) }
    }
}

/// Why a token is refused; the detail is for logs, the client only learns that it is invalid.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is invalid: {reason}")]
    Invalid {
        reason: &'static str,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error("the token could not be signed")]
    Signing(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Issuing and checking access tokens (JWT, HS256).
pub trait TokenService: Send + Sync {
    fn issue(&self, user: &User) -> Result<AccessToken, TokenError>;
    /// The caller a valid token names (its role claim is not trusted: see [`Caller`]).
    fn verify(&self, token: &str) -> Result<Caller, TokenError>;
}
