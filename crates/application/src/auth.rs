//! Authentication: logging in with email and password, and turning a token into an actor.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{instrument, warn};

use domain::{Email, Password, User};

use crate::actor::Caller;
use crate::store::StoreError;
use crate::users::UserRepository;

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

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown email or wrong password: the same answer for both.
    #[error("the email or the password is wrong")]
    InvalidCredentials,
    /// A missing, malformed, expired or forged token, or one whose user no longer exists.
    #[error("not signed in")]
    Unauthenticated(#[source] TokenError),
    #[error(transparent)]
    Token(TokenError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How long the stand-in hash follows the parameters most stored hashes were made with before
/// they are looked up again.
const DUMMY_REFRESH: Duration = Duration::from_secs(600);

/// The hash an unknown email is checked against.
struct DummyHash {
    hash: String,
    made: Option<Instant>,
}

/// Logs staff in and checks their tokens.
pub struct AuthService {
    users: Arc<dyn UserRepository>,
    hasher: Arc<dyn PasswordHasher>,
    tokens: Arc<dyn TokenService>,
    /// A hash of a random password with the parameters most stored hashes have (today's until
    /// the first login looks them up), verified against when the email is unknown, so that
    /// both kinds of failure cost the same whatever parameters the stored hashes were made with.
    dummy: Mutex<DummyHash>,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").finish_non_exhaustive()
    }
}

impl AuthService {
    pub fn new(
        users: Arc<dyn UserRepository>,
        hasher: Arc<dyn PasswordHasher>,
        tokens: Arc<dyn TokenService>,
    ) -> Result<Self, HashError> {
        let dummy =
            Password::candidate(&uuid::Uuid::now_v7().to_string()).ok_or_else(|| HashError::new("dummy password"))?;
        let hash = hasher.hash(&dummy)?;
        Ok(Self { users, hasher, tokens, dummy: Mutex::new(DummyHash { hash, made: None }) })
    }

    /// Checks the email and password and issues a token. A hash made with older parameters is
    /// replaced by one made with today's (the user's data does not change, only its protection).
    #[instrument(skip_all)]
    pub fn login(&self, email: &str, password: &str) -> Result<AccessToken, AuthError> {
        let candidate = Password::candidate(password);
        let found = match Email::parse_existing(email) {
            Ok(email) => self.users.find_credentials(&email)?,
            Err(_) => None,
        };
        let dummy;
        let (user, hash) = match (&found, &candidate) {
            (Some((user, hash)), Some(_)) => (Some(user), hash.as_str()),
            _ => {
                dummy = self.dummy_hash()?;
                (None, dummy.as_str())
            }
        };
        // Verify even when the outcome is known, so that every failure costs one hash.
        let fallback = Password::candidate("").ok_or_else(|| HashError::new("empty password"))?;
        let verified = self.hasher.verify(candidate.as_ref().unwrap_or(&fallback), hash)?;
        let (Some(user), Some(candidate), true) = (user, candidate.as_ref(), verified.matches) else {
            return Err(AuthError::InvalidCredentials);
        };
        if verified.needs_rehash {
            match self.hasher.hash(candidate) {
                Ok(new_hash) => {
                    if let Err(error) = self.users.replace_password_hash(user.id(), hash, &new_hash) {
                        warn!(user_id = %user.id(), error = %error, "could not upgrade a password hash");
                    }
                }
                Err(error) => {
                    warn!(user_id = %user.id(), error = %error, "could not rehash a password")
                }
            }
        }
        self.tokens.issue(user).map_err(AuthError::Token)
    }

    /// The stand-in hash, made again with the parameters most stored hashes have when it is
    /// older than [`DUMMY_REFRESH`] (one query and one hash every ten minutes at most).
    fn dummy_hash(&self) -> Result<String, AuthError> {
        let mut dummy = self.dummy.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if dummy.made.is_none_or(|made| made.elapsed() > DUMMY_REFRESH) {
            if let Some(typical) = self.users.typical_password_hash()? {
                dummy.hash = self.hasher.dummy_like(&typical)?;
            }
            dummy.made = Some(Instant::now());
        }
        Ok(dummy.hash.clone())
    }

    /// Turns a bearer token into the caller it names. Pure CPU: who the caller is now (role,
    /// existence) is looked up by each use case inside its own database work.
    pub fn authenticate(&self, token: &str) -> Result<Caller, AuthError> {
        self.tokens.verify(token).map_err(AuthError::Unauthenticated)
    }
}
