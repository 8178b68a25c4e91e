//! `UserRepository` on PostgreSQL.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use application::{PageRequest, StoreError, UserRepository};
use domain::{Email, PersonName, Role, User, UserId};

use crate::db::{Database, store_error, unique_violation};
use crate::schema::users;

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

impl UserRepository for PgUserRepository {
    fn insert(&self, user: &User, password_hash: &str) -> Result<bool, StoreError> {
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
        match diesel::insert_into(users::table).values(&row).execute(&mut conn) {
            Ok(_) => Ok(true),
            Err(e) if unique_violation(&e) == Some("users_email_key") => Ok(false),
            Err(e) => Err(store_error(e)),
        }
    }

    fn find(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let mut conn = self.db.conn()?;
        users::table
            .find(id.0)
            .select(UserRow::as_select())
            .first(&mut conn)
            .optional()
            .map_err(store_error)?
            .map(User::try_from)
            .transpose()
    }

    fn find_role(&self, id: UserId) -> Result<Option<Role>, StoreError> {
        let mut conn = self.db.conn()?;
        let role: Option<String> =
            users::table.find(id.0).select(users::role).first(&mut conn).optional().map_err(store_error)?;
        role.map(|r| {
            Role::parse(&r).map_err(|e| StoreError::other(CorruptUser { id: id.0, reason: format!("role {e}") }))
        })
        .transpose()
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

    fn list(&self, page: &PageRequest) -> Result<Vec<User>, StoreError> {
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
        query.load(&mut conn).map_err(store_error)?.into_iter().map(User::try_from).collect()
    }

    fn count_admins(&self) -> Result<i64, StoreError> {
        let mut conn = self.db.conn()?;
        users::table.filter(users::role.eq(Role::Admin.as_str())).count().get_result(&mut conn).map_err(store_error)
    }
}
