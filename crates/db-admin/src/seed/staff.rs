//! The seeded staff, `waiter1@seed.comanda.local`, `manager1@...`, `kitchen1@...` and on: users
//! of the domain, stored by the service's own repository, each working in one of the seeded
//! locations, reused when they already exist.

use std::collections::HashMap;

use anyhow::Context;
use diesel::prelude::*;
use uuid::Uuid;

use application::{PasswordHasher as _, UserRepository as _};
use domain::{Email, LocationId, Password, PersonName, Role, User, UserId};
use infrastructure::schema::{user_locations, users};
use infrastructure::{Argon2Hasher, Database, PgUserRepository, Settings};

use super::STAFF_DOMAIN;
use super::times::{MICROS_PER_SECOND, timestamp};

/// What [`ensure`] needs besides the role and the count.
pub(super) struct StaffPlan<'a> {
    pub database: &'a Database,
    pub password: &'a str,
    pub settings: &'a Settings,
    /// When the created users were made (a second apart, from here).
    pub created_at_us: i64,
    /// The `i`-th user (from 0) works in `locations[i % len]`.
    pub locations: &'a [LocationId],
}

/// The users `<role>1@...` to `<role>N@...` in that order: the existing ones, and the missing
/// ones created. Returns each one's id and location, and how many were created.
pub(super) fn ensure(
    conn: &mut PgConnection,
    role: Role,
    count: usize,
    plan: &StaffPlan<'_>,
) -> anyhow::Result<(Vec<(Uuid, LocationId)>, usize)> {
    let title = role.as_str();
    let mut people = Vec::with_capacity(count);
    for i in 1..=count {
        let email = Email::parse(&format!("{title}{i}@{STAFF_DOMAIN}"))
            .map_err(|e| anyhow::anyhow!("the seeded staff's email {e}"))?;
        let mut name = format!("{title} {i}");
        name[..1].make_ascii_uppercase();
        let name = PersonName::parse(&name).map_err(|e| anyhow::anyhow!("the seeded staff's name {e}"))?;
        people.push((email, name));
    }
    // The password must be acceptable for everyone (it must not be one's address or name).
    let mut checked = None;
    for (email, name) in &people {
        checked = Some(
            Password::parse_new(plan.password, Some(email), Some(name))
                .map_err(|e| anyhow::anyhow!("--password {e}"))?,
        );
    }
    let password = checked.context("at least one user of each role is needed")?;
    let keys: Vec<String> = people.iter().map(|(email, _)| email.key()).collect();
    let home = |i: usize| plan.locations[i % plan.locations.len()];

    let mut existing = find(conn, &keys)?;
    let missing: Vec<usize> = (0..count).filter(|&i| !existing.contains_key(&keys[i])).collect();
    let repository = PgUserRepository::new(plan.database.clone());
    if !missing.is_empty() {
        // One Argon2id hash (the configured parameters, its own random salt) shared by every
        // user created here: they are demo accounts with the same password, and hashing is
        // deliberately slow. Each stored PHC string verifies on its own like any other.
        let hash = Argon2Hasher::new(plan.settings.argon2)?
            .hash(&password)
            .context("could not hash the seeded staff's password")?;
        for &i in &missing {
            let (email, name) = people[i].clone();
            let created_at = timestamp(plan.created_at_us + i64::try_from(i)? * MICROS_PER_SECOND);
            let id = Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                u64::try_from(created_at.timestamp())?,
                created_at.timestamp_subsec_nanos(),
            ));
            let user = User::new(UserId(id), email, name, role, created_at);
            // `false` when the address exists already: a concurrent seed created it, and its
            // user is kept.
            repository.insert(&user, &hash, &[home(i)]).context("could not create the seeded staff")?;
        }
        existing = find(conn, &keys)?;
    }
    let mut found = Vec::with_capacity(count);
    for (i, key) in keys.iter().enumerate() {
        let (id, location) =
            existing.get(key).copied().with_context(|| format!("the user {key} could not be created"))?;
        let location = match location {
            Some(location) => location,
            // Someone took every location away from them: they work in their seeded one again.
            None => {
                repository.set_locations(UserId(id), &[home(i)]).context("could not place the seeded staff")?;
                home(i)
            }
        };
        found.push((id, location));
    }
    Ok((found, missing.len()))
}

/// The ids of the users with these email keys ([`Email::key`]) and the first location each works
/// in, in one query (a run may reuse up to a thousand waiters).
fn find(conn: &mut PgConnection, keys: &[String]) -> anyhow::Result<HashMap<String, (Uuid, Option<LocationId>)>> {
    let found: Vec<(String, Uuid, Option<Uuid>)> = users::table
        .left_join(user_locations::table)
        .filter(users::email_key.eq_any(keys))
        .select((users::email_key, users::id, user_locations::location_id.nullable()))
        .order((users::email_key, user_locations::location_id))
        .load(conn)
        .context("could not look the seeded staff up")?;
    let mut by_key = HashMap::with_capacity(found.len());
    for (key, id, location) in found {
        by_key.entry(key).or_insert((id, location.map(LocationId)));
    }
    Ok(by_key)
}
