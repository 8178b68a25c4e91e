//! Authentication: logging in with email and password, and turning a token into an actor.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{instrument, warn};

use domain::{Email, Password};

use crate::actor::Caller;
use crate::ports::{AccessToken, HashError, PasswordHasher, TokenError, TokenService, UserRepository};
use crate::store::StoreError;

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
