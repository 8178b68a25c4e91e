//! `MenuRepository` on PostgreSQL, and the menu that each process keeps in memory to price new
//! lines (see [`crate::snapshots`]).

use chrono::{DateTime, TimeDelta, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use application::{ListedItem, Menu, MenuFilter, MenuRepository, MenuStoreError, PageRequest, StoreError};
use domain::{
    Category, CategoryId, CategoryName, LocationId, MenuItem, MenuItemId, Money, Position, PriceSpan, ProductName,
    UserId,
};

use crate::db::{Database, foreign_key_violation, store_error, unique_violation};
use crate::schema::{locations, menu_categories, menu_item_prices, menu_items, menu_version, sold_out_items};
use crate::snapshots::PgSnapshots;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = menu_categories, check_for_backend(Pg))]
struct CategoryRow {
    id: Uuid,
    name: String,
    name_key: String,
    position: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = menu_items, check_for_backend(Pg))]
struct ItemRow {
    id: Uuid,
    name: String,
    name_key: String,
    category_id: Uuid,
    active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Stored menu data that no longer parses: a bug or a hand edit.
#[derive(Debug, thiserror::Error)]
#[error("stored menu {what} {id} is invalid: {reason}")]
struct CorruptMenu {
    what: &'static str,
    id: Uuid,
    reason: String,
}

fn corrupt(what: &'static str, id: Uuid, reason: impl ToString) -> StoreError {
    StoreError::other(CorruptMenu { what, id, reason: reason.to_string() })
}

impl From<&Category> for CategoryRow {
    fn from(c: &Category) -> Self {
        Self {
            id: c.id.0,
            name: c.name.as_ref().to_owned(),
            name_key: c.name.key(),
            position: i32::from(c.position.get()),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

impl TryFrom<CategoryRow> for Category {
    type Error = StoreError;
    fn try_from(row: CategoryRow) -> Result<Self, StoreError> {
        Ok(Category {
            id: CategoryId(row.id),
            name: CategoryName::restore(&row.name).map_err(|e| corrupt("category", row.id, e))?,
            position: Position::new(i64::from(row.position)).map_err(|e| corrupt("category", row.id, e))?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

impl From<&MenuItem> for ItemRow {
    fn from(i: &MenuItem) -> Self {
        Self {
            id: i.id.0,
            name: i.name.as_ref().to_owned(),
            name_key: i.name.key().as_ref().to_owned(),
            category_id: i.category_id.0,
            active: i.active,
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

fn to_item(row: ItemRow, price: Decimal) -> Result<MenuItem, StoreError> {
    Ok(MenuItem {
        id: MenuItemId(row.id),
        name: ProductName::restore(&row.name).map_err(|e| corrupt("item", row.id, e))?,
        category_id: CategoryId(row.category_id),
        price: Money::from_decimal(price).map_err(|e| corrupt("item", row.id, e))?,
        active: row.active,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

const CATEGORY_NAME_TAKEN: &str = "menu_categories_name_key_key";
const ITEM_NAME_TAKEN: &str = "menu_items_active_name_key";
const ITEM_CATEGORY: &str = "menu_items_category_id_fkey";
const SOLD_OUT_LOCATION: &str = "sold_out_items_location_id_fkey";
const SOLD_OUT_ITEM: &str = "sold_out_items_menu_item_id_fkey";

/// A database error of a menu write, as the port says it.
fn refused(error: diesel::result::Error) -> MenuStoreError {
    if let Some(name) = unique_violation(&error)
        && (name == CATEGORY_NAME_TAKEN || name == ITEM_NAME_TAKEN)
    {
        return MenuStoreError::NameTaken;
    }
    match foreign_key_violation(&error) {
        Some(ITEM_CATEGORY) => MenuStoreError::UnknownCategory,
        Some(SOLD_OUT_LOCATION) => MenuStoreError::UnknownLocation,
        Some(SOLD_OUT_ITEM) => MenuStoreError::NotFound,
        _ => MenuStoreError::Store(store_error(error)),
    }
}

/// Why a change transaction ended without committing.
enum ChangeFailed {
    Db(diesel::result::Error),
    Port(MenuStoreError),
}

impl From<diesel::result::Error> for ChangeFailed {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(error)
    }
}

impl From<ChangeFailed> for MenuStoreError {
    fn from(failed: ChangeFailed) -> Self {
        match failed {
            ChangeFailed::Db(e) => refused(e),
            ChangeFailed::Port(e) => e,
        }
    }
}

/// Items with their current price (and, for `location`, whether it has sold them out).
type ItemSelection = (ItemRow, Decimal, bool);

/// The items with their current price and whether the location `$at` (a UUID) has sold them
/// out: a macro, because the query's type (a join with a subquery) cannot be named short.
macro_rules! items_query {
    ($at:expr) => {
        menu_items::table.inner_join(menu_item_prices::table).filter(menu_item_prices::valid_to.is_null()).select((
            ItemRow::as_select(),
            menu_item_prices::price,
            diesel::dsl::exists(
                sold_out_items::table
                    .filter(sold_out_items::menu_item_id.eq(menu_items::id))
                    .filter(sold_out_items::location_id.eq($at)),
            ),
        ))
    };
}

/// The id a sold-out question is asked for: the location's, or one no location has.
fn asked(location: Option<LocationId>) -> Uuid {
    location.map_or(Uuid::nil(), |l| l.0)
}

fn listed(selection: ItemSelection, location: Option<LocationId>) -> Result<ListedItem, StoreError> {
    let (row, price, sold_out) = selection;
    Ok(ListedItem { item: to_item(row, price)?, sold_out: location.map(|_| sold_out) })
}

#[derive(Debug, Clone)]
pub struct PgMenuRepository {
    db: Database,
}

impl PgMenuRepository {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

impl MenuRepository for PgMenuRepository {
    fn insert_category(&self, category: &Category) -> Result<(), MenuStoreError> {
        let mut conn = self.db.conn()?;
        diesel::insert_into(menu_categories::table)
            .values(CategoryRow::from(category))
            .execute(&mut conn)
            .map(drop)
            .map_err(refused)
    }

    fn find_category(&self, id: CategoryId) -> Result<Option<Category>, StoreError> {
        let mut conn = self.db.conn()?;
        menu_categories::table
            .find(id.0)
            .select(CategoryRow::as_select())
            .first(&mut conn)
            .optional()
            .map_err(store_error)?
            .map(Category::try_from)
            .transpose()
    }

    fn categories(&self, page: &PageRequest) -> Result<Vec<Category>, StoreError> {
        let mut conn = self.db.conn()?;
        let mut query = menu_categories::table
            .select(CategoryRow::as_select())
            .order((menu_categories::created_at.desc(), menu_categories::id.desc()))
            .limit(i64::from(page.limit) + 1)
            .into_boxed();
        if let Some(after) = page.after {
            query = query.filter(menu_categories::created_at.le(after.created_at)).filter(
                menu_categories::created_at
                    .lt(after.created_at)
                    .or(menu_categories::created_at.eq(after.created_at).and(menu_categories::id.lt(after.id))),
            );
        }
        query.load(&mut conn).map_err(store_error)?.into_iter().map(Category::try_from).collect()
    }

    fn change_category(
        &self,
        id: CategoryId,
        change: &mut dyn FnMut(&mut Category),
    ) -> Result<Category, MenuStoreError> {
        let mut conn = self.db.conn()?;
        Ok(conn.transaction::<_, ChangeFailed, _>(|conn| {
            let row: Option<CategoryRow> = menu_categories::table
                .find(id.0)
                .select(CategoryRow::as_select())
                .for_update()
                .first(conn)
                .optional()?;
            let row = row.ok_or(ChangeFailed::Port(MenuStoreError::NotFound))?;
            let mut category = Category::try_from(row).map_err(|e| ChangeFailed::Port(e.into()))?;
            let before = category.clone();
            change(&mut category);
            if category != before {
                diesel::update(menu_categories::table.find(id.0)).set(CategoryRow::from(&category)).execute(conn)?;
            }
            Ok(category)
        })?)
    }

    fn insert_item(&self, item: &MenuItem) -> Result<(), MenuStoreError> {
        let mut conn = self.db.conn()?;
        conn.transaction(|conn| {
            diesel::insert_into(menu_items::table).values(ItemRow::from(item)).execute(conn)?;
            diesel::insert_into(menu_item_prices::table)
                .values((
                    menu_item_prices::menu_item_id.eq(item.id.0),
                    menu_item_prices::price.eq(item.price.amount()),
                    menu_item_prices::valid_from.eq(item.created_at),
                ))
                .execute(conn)
                .map(drop)
        })
        .map_err(refused)
    }

    fn find_item(&self, id: MenuItemId, location: Option<LocationId>) -> Result<Option<ListedItem>, StoreError> {
        let mut conn = self.db.conn()?;
        items_query!(asked(location))
            .filter(menu_items::id.eq(id.0))
            .first::<ItemSelection>(&mut conn)
            .optional()
            .map_err(store_error)?
            .map(|s| listed(s, location))
            .transpose()
    }

    fn items(&self, filter: &MenuFilter, page: &PageRequest) -> Result<Vec<ListedItem>, StoreError> {
        let mut conn = self.db.conn()?;
        let mut query = items_query!(asked(filter.location_id))
            .order((menu_items::created_at.desc(), menu_items::id.desc()))
            .limit(i64::from(page.limit) + 1)
            .into_boxed();
        if let Some(category) = filter.category_id {
            query = query.filter(menu_items::category_id.eq(category.0));
        }
        if let Some(active) = filter.active {
            query = query.filter(menu_items::active.eq(active));
        }
        if let Some(after) = page.after {
            query = query.filter(menu_items::created_at.le(after.created_at)).filter(
                menu_items::created_at
                    .lt(after.created_at)
                    .or(menu_items::created_at.eq(after.created_at).and(menu_items::id.lt(after.id))),
            );
        }
        query
            .load::<ItemSelection>(&mut conn)
            .map_err(store_error)?
            .into_iter()
            .map(|s| listed(s, filter.location_id))
            .collect()
    }

    fn change_item(
        &self,
        id: MenuItemId,
        change: &mut dyn FnMut(&mut MenuItem) -> bool,
    ) -> Result<MenuItem, MenuStoreError> {
        let mut conn = self.db.conn()?;
        Ok(conn.transaction::<_, ChangeFailed, _>(|conn| {
            let row: Option<ItemRow> =
                menu_items::table.find(id.0).select(ItemRow::as_select()).for_update().first(conn).optional()?;
            let row = row.ok_or(ChangeFailed::Port(MenuStoreError::NotFound))?;
            let (price, since): (Decimal, DateTime<Utc>) = menu_item_prices::table
                .filter(menu_item_prices::menu_item_id.eq(id.0))
                .filter(menu_item_prices::valid_to.is_null())
                .select((menu_item_prices::price, menu_item_prices::valid_from))
                .first(conn)?;
            let mut item = to_item(row, price).map_err(|e| ChangeFailed::Port(e.into()))?;
            let before = item.clone();
            let repriced = change(&mut item);
            if item == before {
                return Ok(item);
            }
            if repriced {
                // The next span starts where the last one ends, strictly after it began (the
                // clocks of two replicas may differ a little).
                let boundary = item.updated_at.max(since + TimeDelta::microseconds(1));
                item.updated_at = boundary;
                diesel::update(
                    menu_item_prices::table
                        .filter(menu_item_prices::menu_item_id.eq(id.0))
                        .filter(menu_item_prices::valid_to.is_null()),
                )
                .set(menu_item_prices::valid_to.eq(boundary))
                .execute(conn)?;
                diesel::insert_into(menu_item_prices::table)
                    .values((
                        menu_item_prices::menu_item_id.eq(id.0),
                        menu_item_prices::price.eq(item.price.amount()),
                        menu_item_prices::valid_from.eq(boundary),
                    ))
                    .execute(conn)?;
            }
            diesel::update(menu_items::table.find(id.0)).set(ItemRow::from(&item)).execute(conn)?;
            Ok(item)
        })?)
    }

    fn prices(&self, id: MenuItemId) -> Result<Option<Vec<PriceSpan>>, StoreError> {
        let mut conn = self.db.conn()?;
        let rows: Vec<(Decimal, DateTime<Utc>, Option<DateTime<Utc>>)> = menu_item_prices::table
            .filter(menu_item_prices::menu_item_id.eq(id.0))
            .order(menu_item_prices::valid_from.asc())
            .select((menu_item_prices::price, menu_item_prices::valid_from, menu_item_prices::valid_to))
            .load(&mut conn)
            .map_err(store_error)?;
        if rows.is_empty() {
            return Ok(None);
        }
        rows.into_iter()
            .map(|(price, from, to)| {
                let price = Money::from_decimal(price).map_err(|e| corrupt("price", id.0, e))?;
                Ok(PriceSpan { price, from, to })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn set_sold_out(
        &self,
        location: LocationId,
        item: MenuItemId,
        sold_out: Option<(UserId, DateTime<Utc>)>,
    ) -> Result<(), MenuStoreError> {
        let mut conn = self.db.conn()?;
        let (item_exists, location_exists): (bool, bool) = diesel::select((
            diesel::dsl::exists(menu_items::table.find(item.0)),
            diesel::dsl::exists(locations::table.find(location.0)),
        ))
        .get_result(&mut conn)
        .map_err(store_error)?;
        if !item_exists {
            return Err(MenuStoreError::NotFound);
        }
        if !location_exists {
            return Err(MenuStoreError::UnknownLocation);
        }
        let at = sold_out_items::table
            .filter(sold_out_items::location_id.eq(location.0))
            .filter(sold_out_items::menu_item_id.eq(item.0));
        match sold_out {
            Some((by, since)) => diesel::insert_into(sold_out_items::table)
                .values((
                    sold_out_items::location_id.eq(location.0),
                    sold_out_items::menu_item_id.eq(item.0),
                    sold_out_items::marked_by.eq(by.0),
                    sold_out_items::since.eq(since),
                ))
                .on_conflict_do_nothing()
                .execute(&mut conn),
            None => diesel::delete(at).execute(&mut conn),
        }
        .map(drop)
        .map_err(refused)
    }
}

fn menu_version(conn: &mut PgConnection) -> QueryResult<i64> {
    menu_version::table.select(menu_version::version).first(conn)
}

/// Reads the whole menu in one read-only snapshot.
fn load_menu(db: &Database) -> Result<Menu, StoreError> {
    let mut conn = db.conn()?;
    let (version, items, categories, sold_out) = conn
        .build_transaction()
        .repeatable_read()
        .read_only()
        .run(|conn| {
            let version = menu_version(conn)?;
            let items: Vec<ItemSelection> = items_query!(asked(None)).load(conn)?;
            let categories: Vec<CategoryRow> = menu_categories::table.select(CategoryRow::as_select()).load(conn)?;
            let sold_out: Vec<(Uuid, Uuid)> =
                sold_out_items::table.select((sold_out_items::location_id, sold_out_items::menu_item_id)).load(conn)?;
            Ok::<_, diesel::result::Error>((version, items, categories, sold_out))
        })
        .map_err(store_error)?;
    let items = items.into_iter().map(|(row, price, _)| to_item(row, price)).collect::<Result<Vec<_>, _>>()?;
    let categories = categories.into_iter().map(Category::try_from).collect::<Result<Vec<_>, _>>()?;
    let sold_out = sold_out.into_iter().map(|(l, i)| (LocationId(l), MenuItemId(i))).collect();
    Ok(Menu::new(version, items, categories, sold_out))
}

/// The menu as this process holds it.
pub type PgMenu = PgSnapshots<Menu>;

/// The menu of `db`, loaded at the first order with a menu line.
pub fn menu_snapshots(db: Database) -> PgMenu {
    PgSnapshots::new(db, Menu::never_loaded(), menu_version, load_menu)
}
