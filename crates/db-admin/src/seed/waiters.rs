//! The seeded waiters, `waiter1@seed.comanda.local` and on: users of the domain, stored by the
//! service's own repository, reused when they already exist.

use std::collections::HashMap;

use anyhow::Context;
use diesel::prelude::*;
use uuid::Uuid;

use application::{PasswordHasher as _, UserRepository as _};
use domain::{Email, Password, PersonName, Role, User, UserId};
use infrastructure::schema::users;
use infrastructure::{Argon2Hasher, Database, PgUserRepository, Settings};

use super::WAITER_DOMAIN;
use super::times::{MICROS_PER_SECOND, timestamp};

/// The waiters `waiter1@...` to `waiterN@...` in that order: the existing ones, and the missing
/// ones created (`database` is opened only then). Returns their ids and how many were created.
pub(super) fn ensure(
    conn: &mut PgConnection,
    database: impl FnOnce() -> Database,
    count: usize,
    password: &str,
    settings: &Settings,
    created_at_us: i64,
) -> anyhow::Result<(Vec<Uuid>, usize)> {
    let mut waiters = Vec::with_capacity(count);
    for i in 1..=count {
        let email = Email::parse(&format!("waiter{i}@{WAITER_DOMAIN}"))
            .map_err(|e| anyhow::anyhow!("the seeded waiters' email {e}"))?;
        let name = PersonName::parse(&format!("Waiter {i}")).map_err(|e| anyhow::anyhow!("the waiter name {e}"))?;
        waiters.push((email, name));
    }
    // The password must be acceptable for every waiter (it must not be one's address or name).
    let mut checked = None;
    for (email, name) in &waiters {
        checked = Some(
            Password::parse_new(password, Some(email), Some(name)).map_err(|e| anyhow::anyhow!("--password {e}"))?,
        );
    }
    let password = checked.context("at least one waiter is needed")?;
    let keys: Vec<String> = waiters.iter().map(|(email, _)| email.key()).collect();

    let mut existing = find(conn, &keys)?;
    let missing: Vec<usize> = (0..count).filter(|&i| !existing.contains_key(&keys[i])).collect();
    if !missing.is_empty() {
        // One Argon2id hash (the configured parameters, its own random salt) shared by every
        // waiter created here: they are demo accounts with the same password, and hashing is
        // deliberately slow. Each stored PHC string verifies on its own like any other.
        let hash =
            Argon2Hasher::new(settings.argon2)?.hash(&password).context("could not hash the waiters' password")?;
        let repository = PgUserRepository::new(database());
        for &i in &missing {
            let (email, name) = waiters[i].clone();
            let created_at = timestamp(created_at_us + i64::try_from(i)? * MICROS_PER_SECOND);
            let id = Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                u64::try_from(created_at.timestamp())?,
                created_at.timestamp_subsec_nanos(),
            ));
            let user = User::new(UserId(id), email, name, Role::Waiter, created_at);
            // `false` when the address exists already: a concurrent seed created it, and its
            // waiter is kept.
            repository.insert(&user, &hash).context("could not create the seeded waiters")?;
        }
        existing = find(conn, &keys)?;
    }
    let ids = keys
        .iter()
        .map(|key| existing.get(key).copied().with_context(|| format!("the waiter {key} could not be created")))
        .collect::<anyhow::Result<Vec<Uuid>>>()?;
    Ok((ids, missing.len()))
}

/// The ids of the users with these email keys ([`Email::key`]), in one query (a run may reuse
/// up to a thousand waiters).
fn find(conn: &mut PgConnection, keys: &[String]) -> anyhow::Result<HashMap<String, Uuid>> {
    let found: Vec<(String, Uuid)> = users::table
        .filter(users::email_key.eq_any(keys))
        .select((users::email_key, users::id))
        .load(conn)
        .context("could not look the seeded waiters up")?;
    Ok(found.into_iter().collect())
}
