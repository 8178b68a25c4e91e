//! The seeded waiters, `waiter1@seed.comanda.local` and on, reused when they already exist.

use std::collections::HashMap;

use anyhow::Context;
use diesel::prelude::*;
use uuid::Uuid;

use application::PasswordHasher as _;
use domain::{Email, Password, PersonName, Role};
use infrastructure::schema::users;
use infrastructure::{Argon2Hasher, Settings};

use super::WAITER_DOMAIN;
use super::times::{MICROS_PER_SECOND, timestamp};

/// The waiters `waiter1@...` to `waiterN@...` in that order: the existing ones, and the missing
/// ones created. Returns their ids and how many were created.
pub(super) fn ensure(
    conn: &mut PgConnection,
    count: usize,
    password: &str,
    settings: &Settings,
    created_at_us: i64,
) -> anyhow::Result<(Vec<Uuid>, usize)> {
    let mut emails = Vec::with_capacity(count);
    for i in 1..=count {
        let email = Email::parse(&format!("waiter{i}@{WAITER_DOMAIN}"))
            .map_err(|e| anyhow::anyhow!("the seeded waiters' email {e}"))?;
        emails.push(email);
    }
    let mut checked = None;
    for email in &emails {
        checked =
            Some(Password::parse_new(password, Some(email), None).map_err(|e| anyhow::anyhow!("--password {e}"))?);
    }
    let password = checked.context("at least one waiter is needed")?;
    let keys: Vec<String> = emails.iter().map(Email::key).collect();

    let find = |conn: &mut PgConnection| -> anyhow::Result<HashMap<String, Uuid>> {
        let found: Vec<(String, Uuid)> = users::table
            .filter(users::email_key.eq_any(&keys))
            .select((users::email_key, users::id))
            .load(conn)
            .context("could not look the seeded waiters up")?;
        Ok(found.into_iter().collect())
    };
    let mut existing = find(conn)?;
    let missing: Vec<usize> = (0..count).filter(|&i| !existing.contains_key(&keys[i])).collect();
    if !missing.is_empty() {
        // One Argon2id hash (the configured parameters, its own random salt) shared by every
        // waiter created here: they are demo accounts with the same password, and hashing is
        // deliberately slow. Each stored PHC string verifies on its own like any other.
        let hash =
            Argon2Hasher::new(settings.argon2)?.hash(&password).context("could not hash the waiters' password")?;
        let mut rows = Vec::with_capacity(missing.len());
        for &i in &missing {
            let name =
                PersonName::parse(&format!("Waiter {}", i + 1)).map_err(|e| anyhow::anyhow!("the waiter name {e}"))?;
            let created_us = created_at_us + i64::try_from(i)? * MICROS_PER_SECOND;
            let created_at = timestamp(created_us);
            let id = Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                u64::try_from(created_at.timestamp())?,
                created_at.timestamp_subsec_nanos(),
            ));
            rows.push((
                users::id.eq(id),
                users::email.eq(emails[i].as_ref().to_owned()),
                users::email_key.eq(keys[i].clone()),
                users::name.eq(name.as_ref().to_owned()),
                users::role.eq(Role::Waiter.as_str()),
                users::password_hash.eq(hash.clone()),
                users::created_at.eq(created_at),
            ));
        }
        // A concurrent seed may have created some meanwhile: theirs are kept.
        diesel::insert_into(users::table)
            .values(&rows)
            .on_conflict_do_nothing()
            .execute(conn)
            .context("could not create the seeded waiters")?;
        existing = find(conn)?;
    }
    let ids = keys
        .iter()
        .map(|key| existing.get(key).copied().with_context(|| format!("the waiter {key} could not be created")))
        .collect::<anyhow::Result<Vec<Uuid>>>()?;
    Ok((ids, missing.len()))
}
