//! Small in-memory fakes of the application's ports, for use-case tests that need no database
//! (anything about what storage does is tested against PostgreSQL instead).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use application::{
    AccessToken, Caller, Clock, HashError, PageRequest, PasswordHasher, StaffMember, StoreError, TokenError,
    TokenService, UserRepository, Verified,
};
use domain::{Email, LocationId, Password, Role, User, UserId};

/// A clock that says what it is told.
#[derive(Debug)]
pub struct FixedClock(pub Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn at(now: DateTime<Utc>) -> Self {
        Self(Mutex::new(now))
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self.0.lock().unwrap() = now;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// Users in a map, with their password hashes.
#[derive(Debug, Default)]
pub struct MemoryUsers {
    users: Mutex<HashMap<UserId, (User, String)>>,
}

impl MemoryUsers {
    pub fn with(users: impl IntoIterator<Item = (User, String)>) -> Self {
        Self { users: Mutex::new(users.into_iter().map(|(u, h)| (u.id(), (u, h))).collect()) }
    }
}

impl UserRepository for MemoryUsers {
    fn insert(&self, user: &User, password_hash: &str, _locations: &[LocationId]) -> Result<bool, StoreError> {
        let mut users = self.users.lock().unwrap();
        if users.values().any(|(u, _)| u.email() == user.email()) {
            return Ok(false);
        }
        users.insert(user.id(), (user.clone(), password_hash.to_owned()));
        Ok(true)
    }

    fn find(&self, id: UserId) -> Result<Option<StaffMember>, StoreError> {
        Ok(self.users.lock().unwrap().get(&id).map(|(u, _)| StaffMember { user: u.clone(), locations: Vec::new() }))
    }

    fn find_access(&self, id: UserId) -> Result<Option<(Role, Vec<LocationId>)>, StoreError> {
        Ok(self.users.lock().unwrap().get(&id).map(|(u, _)| (u.role(), Vec::new())))
    }

    fn set_locations(&self, id: UserId, _locations: &[LocationId]) -> Result<bool, StoreError> {
        Ok(self.users.lock().unwrap().contains_key(&id))
    }

    fn find_credentials(&self, email: &Email) -> Result<Option<(User, String)>, StoreError> {
        Ok(self.users.lock().unwrap().values().find(|(u, _)| u.email() == email).cloned())
    }

    fn typical_password_hash(&self) -> Result<Option<String>, StoreError> {
        let users = self.users.lock().unwrap();
        let mut by_params: HashMap<String, (usize, String)> = HashMap::new();
        for (_, hash) in users.values() {
            let params = FakeHasher::params_of(hash).unwrap_or_default().to_owned();
            by_params.entry(params).or_insert((0, hash.clone())).0 += 1;
        }
        Ok(by_params.into_values().max_by_key(|(n, _)| *n).map(|(_, hash)| hash))
    }

    fn replace_password_hash(&self, id: UserId, old_hash: &str, new_hash: &str) -> Result<(), StoreError> {
        if let Some((_, hash)) = self.users.lock().unwrap().get_mut(&id)
            && hash == old_hash
        {
            *hash = new_hash.to_owned();
        }
        Ok(())
    }

    fn list(&self, page: &PageRequest) -> Result<Vec<StaffMember>, StoreError> {
        let mut users: Vec<User> = self.users.lock().unwrap().values().map(|(u, _)| u.clone()).collect();
        users.sort_by_key(|u| std::cmp::Reverse((u.created_at(), u.id())));
        users.truncate(page.limit as usize + 1);
        Ok(users.into_iter().map(|user| StaffMember { user, locations: Vec::new() }).collect())
    }

    fn count_admins(&self) -> Result<i64, StoreError> {
        Ok(self.users.lock().unwrap().values().filter(|(u, _)| u.role() == Role::Admin).count() as i64)
    }
}

/// A hasher whose hashes say their parameters in clear (`fake$<params>$<password>`), and which
/// remembers with which parameters each verification was made: what a check costs is what its
/// parameters are.
#[derive(Debug)]
pub struct FakeHasher {
    params: String,
    pub verified_with: Mutex<Vec<String>>,
}

impl FakeHasher {
    /// A hasher making hashes with `params` (say `m=19456,t=2`).
    pub fn new(params: &str) -> Self {
        Self { params: params.to_owned(), verified_with: Mutex::new(Vec::new()) }
    }

    pub fn hash_with(params: &str, password: &str) -> String {
        format!("fake${params}${password}")
    }

    fn params_of(hash: &str) -> Option<&str> {
        hash.strip_prefix("fake$")?.split_once('$').map(|(params, _)| params)
    }
}

impl PasswordHasher for FakeHasher {
    fn hash(&self, password: &Password) -> Result<String, HashError> {
        Ok(Self::hash_with(&self.params, password.expose()))
    }

    fn verify(&self, password: &Password, hash: &str) -> Result<Verified, HashError> {
        let (params, expected) = hash
            .strip_prefix("fake$")
            .and_then(|rest| rest.split_once('$'))
            .ok_or_else(|| HashError::new("not a fake hash"))?;
        self.verified_with.lock().unwrap().push(params.to_owned());
        Ok(Verified { matches: expected == password.expose(), needs_rehash: params != self.params })
    }

    fn dummy_like(&self, stored: &str) -> Result<String, HashError> {
        let params = Self::params_of(stored).ok_or_else(|| HashError::new("not a fake hash"))?;
        Ok(Self::hash_with(params, &uuid::Uuid::now_v7().to_string()))
    }
}

/// Tokens that are the user's id in clear.
#[derive(Debug, Default)]
pub struct FakeTokens;

impl TokenService for FakeTokens {
    fn issue(&self, user: &User) -> Result<AccessToken, TokenError> {
        Ok(AccessToken { token: user.id().to_string(), expires_in_seconds: 60 })
    }

    fn verify(&self, token: &str) -> Result<Caller, TokenError> {
        let id = uuid::Uuid::parse_str(token)
            .map_err(|e| TokenError::Invalid { reason: "not a user id", source: Some(Box::new(e)) })?;
        Ok(Caller { user_id: UserId(id) })
    }
}
