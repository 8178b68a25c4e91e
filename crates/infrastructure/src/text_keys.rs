//! A data migration that SQL cannot do: rewriting the stored keys (order lines' product keys,
//! users' email keys) when the domain's key functions change. Those functions are Unicode
//! normalization, case folding and confusable skeletons (`domain::text`), so the keys are
//! computed here, in Rust, over the distinct stored names. It runs after the SQL migrations
//! (`db::run_pending_migrations`), once per version: the table `text_keys` records which version
//! the stored keys have, and a database whose keys are older counts as having a pending
//! migration (the server refuses it, readiness reports it).

use diesel::prelude::*;
use diesel::sql_types::{Array, Integer, Nullable, Text, Uuid as SqlUuid};
use tracing::warn;
use uuid::Uuid;

use domain::{Email, ProductName, text};

/// The version of the key functions this build computes keys with. Version 1 lower-cased;
/// version 2 is `text::fold_key` for products (NFKC, capitals, confusable skeleton, case fold)
/// and `text::case_key` for emails.
pub const TEXT_KEYS_VERSION: i32 = 2;

/// How a pending rewrite's name begins among the pending migrations' names.
pub const PENDING_PREFIX: &str = "text keys version ";

/// How the pending rewrite is named among the pending migrations.
pub fn pending_name(stored: i32) -> String {
    format!("{PENDING_PREFIX}{stored} to {TEXT_KEYS_VERSION}")
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Nullable<Integer>)]
    version: Option<i32>,
}

/// The stored keys' version, or `None` before the migration that records it.
pub fn stored_version(conn: &mut PgConnection) -> QueryResult<Option<i32>> {
    let found: Version =
        diesel::sql_query("SELECT CASE WHEN to_regclass('text_keys') IS NULL THEN NULL ELSE 0 END AS version")
            .get_result(conn)?;
    if found.version.is_none() {
        return Ok(None);
    }
    let row: Option<Version> = diesel::sql_query("SELECT version FROM text_keys").get_result(conn).optional()?;
    Ok(row.and_then(|r| r.version))
}

/// Rewrites every stored key made by an older version; returns what it did, or `None` when the
/// keys are current.
pub fn upgrade(conn: &mut PgConnection) -> QueryResult<Option<String>> {
    conn.transaction(|conn| {
        let Some(Version { version: Some(stored) }) =
            diesel::sql_query("SELECT version FROM text_keys FOR UPDATE").get_result::<Version>(conn).optional()?
        else {
            return Ok(None);
        };
        if stored >= TEXT_KEYS_VERSION {
            return Ok(None);
        }
        let lines = rekey_products(conn)?;
        let emails = rekey_emails(conn)?;
        diesel::sql_query("UPDATE text_keys SET version = $1").bind::<Integer, _>(TEXT_KEYS_VERSION).execute(conn)?;
        Ok(Some(format!("{} ({lines} order line(s) and {emails} email(s) rekeyed)", pending_name(stored))))
    })
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// Gives every order line the key of its name. Two lines of one order whose names now share a
/// key (they looked alike but were two products) stay two lines: the later one's key gets its
/// line number (`<key> #<n>`), as the primary key (order, product key) requires. When any key
/// changed, the sales rollup is emptied, and the background job rebuilds it.
fn rekey_products(conn: &mut PgConnection) -> QueryResult<usize> {
    let names: Vec<String> = diesel::sql_query("SELECT DISTINCT product_name AS name FROM order_items")
        .load::<Name>(conn)?
        .into_iter()
        .map(|n| n.name)
        .collect();
    let keys: Vec<String> = names
        .iter()
        .map(|name| ProductName::restore(name).map_or_else(|_| text::fold_key(name), |n| n.key().as_ref().to_owned()))
        .collect();
    diesel::sql_query(
        "CREATE TEMP TABLE rekey ON COMMIT DROP AS SELECT * FROM unnest($1::text[], $2::text[]) AS r (name, key)",
    )
    .bind::<Array<Text>, _>(&names)
    .bind::<Array<Text>, _>(&keys)
    .execute(conn)?;
    diesel::sql_query("CREATE TEMP TABLE changed (order_id uuid, line_no smallint) ON COMMIT DROP").execute(conn)?;
    // First out of the way (a key nothing else can have: a control character and the line
    // number), so that no line takes a key that another line still holds.
    let changed = diesel::sql_query(
        "WITH moved AS (
             UPDATE order_items i SET product_key = chr(1) || i.line_no
             FROM rekey r WHERE i.product_name = r.name AND i.product_key <> r.key
             RETURNING i.order_id, i.line_no)
         INSERT INTO changed SELECT order_id, line_no FROM moved",
    )
    .execute(conn)?;
    if changed == 0 {
        return Ok(0);
    }
    // Then to the new key; among lines of one order with the same new key, an unchanged line
    // keeps it and the others are numbered.
    diesel::sql_query(
        "WITH target AS (
             SELECT i.order_id, i.line_no, r.key, c.order_id IS NOT NULL AS moved,
                    row_number() OVER (PARTITION BY i.order_id, r.key
                                       ORDER BY c.order_id IS NOT NULL, i.line_no) AS rank
             FROM order_items i
             JOIN rekey r ON r.name = i.product_name
             LEFT JOIN changed c ON c.order_id = i.order_id AND c.line_no = i.line_no
             WHERE i.order_id IN (SELECT order_id FROM changed))
         UPDATE order_items i
         SET product_key = CASE WHEN t.rank = 1 THEN t.key ELSE left(t.key, 350) || ' #' || i.line_no END
         FROM target t
         WHERE t.moved AND i.order_id = t.order_id AND i.line_no = t.line_no",
    )
    .execute(conn)?;
    crate::reports::clear(conn)?;
    Ok(changed)
}

#[derive(QueryableByName)]
struct StoredEmail {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    email: String,
    #[diesel(sql_type = Text)]
    email_key: String,
}

/// Gives every user the email key of today's function. A key that another user already has
/// (two addresses that were distinct and now fold together) is left as it was, with a warning:
/// both users keep working, and the address can no longer be registered a third time.
fn rekey_emails(conn: &mut PgConnection) -> QueryResult<usize> {
    let users: Vec<StoredEmail> = diesel::sql_query("SELECT id, email, email_key FROM users").load(conn)?;
    let mut rekeyed = 0;
    for user in users {
        let key = Email::parse_existing(&user.email).map_or_else(|_| text::case_key(&user.email), |e| e.key());
        if key == user.email_key {
            continue;
        }
        let updated = conn.transaction(|conn| {
            diesel::sql_query("UPDATE users SET email_key = $1 WHERE id = $2")
                .bind::<Text, _>(&key)
                .bind::<SqlUuid, _>(user.id)
                .execute(conn)
        });
        match updated {
            Ok(_) => rekeyed += 1,
            Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => {
                warn!(user_id = %user.id, "kept an old email key: another user's address folds to the same key");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(rekeyed)
}
