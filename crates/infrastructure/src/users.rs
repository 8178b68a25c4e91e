//! `UserRepository` on PostgreSQL.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use std::collections::HashMap;

use application::{PageRequest, StaffMember, StoreError, UserRepository};
use domain::{Email, LocationId, PersonName, Role, User, UserId};

use crate::db::{Database, store_error, unique_violation};
use crate::schema::{user_locations, users};

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
struct UserRow {
    id: Uuid,
    email: String,
    name: String,
    role: String,
    created_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
struct NewUserRow<'a> {
    id: Uuid,
    email: &'a str,
    email_key: String,
    name: &'a str,
    role: &'a str,
    password_hash: &'a str,
    created_at: DateTime<Utc>,
}

#[derive(Debug, QueryableByName)]
struct StoredHash {
    #[diesel(sql_type = diesel::sql_types::Text)]
    password_hash: String,
}

/// A stored row that no longer parses: a bug or a hand edit.
#[derive(Debug, thiserror::Error)]
#[error("stored user {id} is invalid: {reason}")]
struct CorruptUser {
    id: Uuid,
    reason: String,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(row: UserRow) -> Result<Self, StoreError> {
        let corrupt = |reason: String| StoreError::other(CorruptUser { id: row.id, reason });
        let email = Email::parse_existing(&row.email).map_err(|e| corrupt(format!("email {e}")))?;
        let name = PersonName::parse(&row.name).map_err(|e| corrupt(format!("name {e}")))?;
        let role = Role::parse(&row.role).map_err(|e| corrupt(format!("role {e}")))?;
        Ok(User::new(UserId(row.id), email, name, role, row.created_at))
    }
}

#[derive(Debug, Clone)]
pub struct PgUserRepository {
    db: Database,
}

impl PgUserRepository {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

/// The locations of each of the given users, in id order.
fn locations_of(conn: &mut PgConnection, ids: &[Uuid]) -> QueryResult<HashMap<Uuid, Vec<LocationId>>> {
    let rows: Vec<(Uuid, Uuid)> = user_locations::table
        .filter(user_locations::user_id.eq_any(ids))
        .select((user_locations::user_id, user_locations::location_id))
        .order((user_locations::user_id, user_locations::location_id))
        .load(conn)?;
    let mut of: HashMap<Uuid, Vec<LocationId>> = HashMap::new();
    for (user, location) in rows {
        of.entry(user).or_default().push(LocationId(location));
    }
    Ok(of)
}

fn assign(conn: &mut PgConnection, user: Uuid, locations: &[LocationId]) -> QueryResult<usize> {
    let rows: Vec<_> =
        locations.iter().map(|l| (user_locations::user_id.eq(user), user_locations::location_id.eq(l.0))).collect();
    diesel::insert_into(user_locations::table).values(rows).execute(conn)
}

impl UserRepository for PgUserRepository {
    fn insert(&self, user: &User, password_hash: &str, locations: &[LocationId]) -> Result<bool, StoreError> {
        let row = NewUserRow {
            id: user.id().0,
            email: user.email().as_ref(),
            email_key: user.email().key(),
            name: user.name().as_ref(),
            role: user.role().as_str(),
            password_hash,
            created_at: user.created_at(),
        };
        let mut conn = self.db.conn()?;
        let inserted = conn.transaction(|conn| {
            diesel::insert_into(users::table).values(&row).execute(conn)?;
            assign(conn, row.id, locations)
        });
        match inserted {
            Ok(_) => Ok(true),
            Err(e) if unique_violation(&e) == Some("users_email_key") => Ok(false),
            Err(e) => Err(store_error(e)),
        }
    }

    fn find(&self, id: UserId) -> Result<Option<StaffMember>, StoreError> {
        let mut conn = self.db.conn()?;
        let row =
            users::table.find(id.0).select(UserRow::as_select()).first(&mut conn).optional().map_err(store_error)?;
        let Some(row) = row else { return Ok(None) };
        let locations = locations_of(&mut conn, &[id.0]).map_err(store_error)?.remove(&id.0).unwrap_or_default();
        Ok(Some(StaffMember { user: User::try_from(row)?, locations }))
    }

    fn find_access(&self, id: UserId) -> Result<Option<(Role, Vec<LocationId>)>, StoreError> {
        let mut conn = self.db.conn()?;
        // One round trip: the role, and the locations as an array beside it.
        let found: Option<(String, Vec<Uuid>)> = users::table
            .find(id.0)
            .select((
                users::role,
                diesel::dsl::sql::<diesel::sql_types::Array<diesel::sql_types::Uuid>>(
                    "ARRAY(SELECT ul.location_id FROM user_locations ul WHERE ul.user_id = users.id ORDER BY 1)",
                ),
            ))
            .first(&mut conn)
            .optional()
            .map_err(store_error)?;
        found
            .map(|(role, locations)| {
                let role = Role::parse(&role)
                    .map_err(|e| StoreError::other(CorruptUser { id: id.0, reason: format!("role {e}") }))?;
                Ok((role, locations.into_iter().map(LocationId).collect()))
            })
            .transpose()
    }

    fn set_locations(&self, id: UserId, locations: &[LocationId]) -> Result<bool, StoreError> {
        let mut conn = self.db.conn()?;
        conn.transaction(|conn| {
            // The user's row locked: two replacements of one user's locations take turns.
            let exists = users::table.find(id.0).select(users::id).for_update().first::<Uuid>(conn).optional()?;
            if exists.is_none() {
                return Ok(false);
            }
            diesel::delete(user_locations::table.filter(user_locations::user_id.eq(id.0))).execute(conn)?;
            assign(conn, id.0, locations)?;
            Ok(true)
        })
        .map_err(store_error)
    }

    fn typical_password_hash(&self) -> Result<Option<String>, StoreError> {
        // The PHC string's fourth `$` field holds the parameters (`m=19456,t=2,p=1`).
        let mut conn = self.db.conn()?;
        diesel::sql_query(
            "SELECT password_hash FROM users WHERE split_part(password_hash, '$', 4) = \
             (SELECT split_part(password_hash, '$', 4) FROM users GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1) \
             LIMIT 1",
        )
        .get_result::<StoredHash>(&mut conn)
        .optional()
        .map(|found| found.map(|row| row.password_hash))
        .map_err(store_error)
    }

    fn find_credentials(&self, email: &Email) -> Result<Option<(User, String)>, StoreError> {
        let mut conn = self.db.conn()?;
        let found: Option<(UserRow, String)> = users::table
            .filter(users::email_key.eq(email.key()))
            .select((UserRow::as_select(), users::password_hash))
            .first(&mut conn)
            .optional()
            .map_err(store_error)?;
        found.map(|(row, hash)| Ok((User::try_from(row)?, hash))).transpose()
    }

    fn replace_password_hash(&self, id: UserId, old_hash: &str, new_hash: &str) -> Result<(), StoreError> {
        let mut conn = self.db.conn()?;
        diesel::update(users::table.find(id.0).filter(users::password_hash.eq(old_hash)))
            .set(users::password_hash.eq(new_hash))
            .execute(&mut conn)
            .map(drop)
            .map_err(store_error)
    }

    fn list(&self, page: &PageRequest) -> Result<Vec<StaffMember>, StoreError> {
        let mut conn = self.db.conn()?;
        let mut query = users::table
            .select(UserRow::as_select())
            .order((users::created_at.desc(), users::id.desc()))
            .limit(i64::from(page.limit) + 1)
            .into_boxed();
        if let Some(after) = page.after {
            // `le` for the index to seek to, the `or` for ties (as in the orders' list).
            query = query.filter(users::created_at.le(after.created_at)).filter(
                users::created_at
                    .lt(after.created_at)
                    .or(users::created_at.eq(after.created_at).and(users::id.lt(after.id))),
            );
        }
        let rows: Vec<UserRow> = query.load(&mut conn).map_err(store_error)?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let mut of = locations_of(&mut conn, &ids).map_err(store_error)?;
        rows.into_iter()
            .map(|row| {
                let locations = of.remove(&row.id).unwrap_or_default();
                Ok(StaffMember { user: User::try_from(row)?, locations })
            })
            .collect()
    }

    fn count_admins(&self) -> Result<i64, StoreError> {
        let mut conn = self.db.conn()?;
        users::table.filter(users::role.eq(Role::Admin.as_str())).count().get_result(&mut conn).map_err(store_error)
    }
}
