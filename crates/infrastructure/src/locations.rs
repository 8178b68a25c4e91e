//! `LocationRepository` on PostgreSQL, and the staff directory that each process keeps in
//! memory (see [`crate::snapshots`]).

use chrono::{DateTime, NaiveTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use application::{Directory, LocationChangeError, LocationRepository, LocationScope, PageRequest, StoreError};
use domain::{BusinessDayStart, Location, LocationId, LocationName, LocationSettings, Role, TaxRate, TimeZone, UserId};

use crate::db::{Database, store_error, unique_violation};
use crate::schema::{locations, staff_directory, user_locations, users};
use crate::snapshots::PgSnapshots;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = locations, check_for_backend(Pg))]
struct LocationRow {
    id: Uuid,
    name: String,
    name_key: String,
    time_zone: String,
    business_day_start: NaiveTime,
    tax_rate: Decimal,
    prices_include_tax: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A stored row that no longer parses: a bug, a hand edit, or a time zone that this build's
/// database does not know.
#[derive(Debug, thiserror::Error)]
#[error("stored location {id} is invalid: {reason}")]
struct CorruptLocation {
    id: Uuid,
    reason: String,
}

impl From<&Location> for LocationRow {
    fn from(location: &Location) -> Self {
        let settings = location.settings();
        Self {
            id: location.id().0,
            name: location.name().as_ref().to_owned(),
            name_key: location.name().key(),
            time_zone: settings.time_zone.name().to_owned(),
            business_day_start: settings.business_day_start.time(),
            tax_rate: settings.tax_rate.percent(),
            prices_include_tax: settings.prices_include_tax,
            created_at: location.created_at(),
            updated_at: location.updated_at(),
        }
    }
}

impl TryFrom<LocationRow> for Location {
    type Error = StoreError;
    fn try_from(row: LocationRow) -> Result<Self, StoreError> {
        let corrupt = |reason: String| StoreError::other(CorruptLocation { id: row.id, reason });
        let name = LocationName::parse(&row.name).map_err(|e| corrupt(format!("name {e}")))?;
        let settings = LocationSettings {
            time_zone: TimeZone::parse(&row.time_zone).map_err(|e| corrupt(format!("time zone {e}")))?,
            business_day_start: BusinessDayStart::from_time(row.business_day_start)
                .map_err(|e| corrupt(format!("business day start {e}")))?,
            tax_rate: TaxRate::new(row.tax_rate).map_err(|e| corrupt(format!("tax rate {e}")))?,
            prices_include_tax: row.prices_include_tax,
        };
        Ok(Location::restore(LocationId(row.id), name, settings, row.created_at, row.updated_at))
    }
}

const NAME_TAKEN: &str = "locations_name_key";

#[derive(Debug, Clone)]
pub struct PgLocationRepository {
    db: Database,
}

impl PgLocationRepository {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

/// Why a change transaction ended without committing.
enum ChangeFailed {
    Db(diesel::result::Error),
    Port(LocationChangeError),
}

impl From<diesel::result::Error> for ChangeFailed {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(error)
    }
}

impl LocationRepository for PgLocationRepository {
    fn insert(&self, location: &Location) -> Result<bool, StoreError> {
        let mut conn = self.db.conn()?;
        match diesel::insert_into(locations::table).values(LocationRow::from(location)).execute(&mut conn) {
            Ok(_) => Ok(true),
            Err(e) if unique_violation(&e) == Some(NAME_TAKEN) => Ok(false),
            Err(e) => Err(store_error(e)),
        }
    }

    fn find(&self, id: LocationId) -> Result<Option<Location>, StoreError> {
        let mut conn = self.db.conn()?;
        locations::table
            .find(id.0)
            .select(LocationRow::as_select())
            .first(&mut conn)
            .optional()
            .map_err(store_error)?
            .map(Location::try_from)
            .transpose()
    }

    fn list(&self, scope: &LocationScope, page: &PageRequest) -> Result<Vec<Location>, StoreError> {
        let mut conn = self.db.conn()?;
        let mut query = locations::table
            .select(LocationRow::as_select())
            .order((locations::created_at.desc(), locations::id.desc()))
            .limit(i64::from(page.limit) + 1)
            .into_boxed();
        if let LocationScope::Only(ids) = scope {
            query = query.filter(locations::id.eq_any(ids.iter().map(|l| l.0).collect::<Vec<_>>()));
        }
        if let Some(after) = page.after {
            query = query.filter(locations::created_at.le(after.created_at)).filter(
                locations::created_at
                    .lt(after.created_at)
                    .or(locations::created_at.eq(after.created_at).and(locations::id.lt(after.id))),
            );
        }
        query.load(&mut conn).map_err(store_error)?.into_iter().map(Location::try_from).collect()
    }

    fn change(&self, id: LocationId, change: &mut dyn FnMut(&mut Location)) -> Result<Location, LocationChangeError> {
        let mut conn = self.db.conn()?;
        let result = conn.transaction::<_, ChangeFailed, _>(|conn| {
            let row: Option<LocationRow> =
                locations::table.find(id.0).select(LocationRow::as_select()).for_update().first(conn).optional()?;
            let row = row.ok_or(ChangeFailed::Port(LocationChangeError::NotFound))?;
            let mut location = Location::try_from(row).map_err(|e| ChangeFailed::Port(e.into()))?;
            let before = location.clone();
            change(&mut location);
            if location != before {
                diesel::update(locations::table.find(id.0)).set(LocationRow::from(&location)).execute(conn)?;
            }
            Ok(location)
        });
        match result {
            Ok(location) => Ok(location),
            Err(ChangeFailed::Port(e)) => Err(e),
            Err(ChangeFailed::Db(e)) if unique_violation(&e) == Some(NAME_TAKEN) => Err(LocationChangeError::NameTaken),
            Err(ChangeFailed::Db(e)) => Err(store_error(e).into()),
        }
    }

    fn all(&self, scope: &LocationScope) -> Result<Vec<Location>, StoreError> {
        let mut conn = self.db.conn()?;
        load_locations(&mut conn, scope).map_err(store_error)?.into_iter().map(Location::try_from).collect()
    }
}

fn load_locations(conn: &mut PgConnection, scope: &LocationScope) -> QueryResult<Vec<LocationRow>> {
    let mut query = locations::table
        .select(LocationRow::as_select())
        .order((locations::created_at.asc(), locations::id.asc()))
        .into_boxed();
    if let LocationScope::Only(ids) = scope {
        query = query.filter(locations::id.eq_any(ids.iter().map(|l| l.0).collect::<Vec<_>>()));
    }
    query.load(conn)
}

/// Reads the whole directory in one read-only snapshot.
fn load_directory(db: &Database) -> Result<Directory, StoreError> {
    let mut conn = db.conn()?;
    let (version, rows, staff, assignments) = conn
        .build_transaction()
        .repeatable_read()
        .read_only()
        .run(|conn| {
            let version = directory_version(conn)?;
            let rows = load_locations(conn, &LocationScope::All)?;
            let staff: Vec<(Uuid, String)> = users::table.select((users::id, users::role)).load(conn)?;
            let assignments: Vec<(Uuid, Uuid)> =
                user_locations::table.select((user_locations::user_id, user_locations::location_id)).load(conn)?;
            Ok::<_, diesel::result::Error>((version, rows, staff, assignments))
        })
        .map_err(store_error)?;
    let locations = rows.into_iter().map(Location::try_from).collect::<Result<Vec<_>, _>>()?;
    let mut of_user: std::collections::HashMap<Uuid, Vec<LocationId>> = std::collections::HashMap::new();
    for (user, location) in assignments {
        of_user.entry(user).or_default().push(LocationId(location));
    }
    let staff = staff
        .into_iter()
        .map(|(id, role)| {
            let role = Role::parse(&role)
                .map_err(|e| StoreError::other(CorruptLocation { id, reason: format!("its user's role {e}") }))?;
            Ok((UserId(id), role, of_user.remove(&id).unwrap_or_default()))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Directory::new(version, locations, staff))
}

/// The staff directory as this process holds it.
pub type PgStaffDirectory = PgSnapshots<Directory>;

/// The staff directory of `db`, loaded at the first order.
pub fn staff_directory(db: Database) -> PgStaffDirectory {
    PgSnapshots::new(db, Directory::never_loaded(), directory_version, load_directory)
}

fn directory_version(conn: &mut PgConnection) -> QueryResult<i64> {
    staff_directory::table.select(staff_directory::version).first(conn)
}
