//! The menu: categories and items managed by admins, prices with their history, and the items
//! each location has sold out. The menu as a whole is also a versioned snapshot (see
//! [`crate::snapshot`]) from which new order lines are priced.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::instrument;
use uuid::Uuid;

use domain::{
    Action, Category, CategoryId, CategoryName, LocationId, MenuItem, MenuItemChange, MenuItemId, Money, Position,
    PriceSpan, ProductName, UserId,
};

use crate::actor::{Actor, Caller, Denied};
use crate::clock::Clock;
use crate::page::{Cursor, Page, PageRequest};
use crate::ports::UserRepository;
use crate::snapshot::Versioned;
use crate::store::StoreError;

/// The whole menu at one version of storage: what new lines are priced from.
#[derive(Debug, Clone, Default)]
pub struct Menu {
    version: i64,
    items: HashMap<MenuItemId, MenuItem>,
    categories: HashMap<CategoryId, Category>,
    sold_out: HashSet<(LocationId, MenuItemId)>,
}

impl Versioned for Menu {
    fn version(&self) -> i64 {
        self.version
    }
}

/// Why a menu item cannot be ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unorderable {
    Retired,
    SoldOut,
}

impl Menu {
    /// An empty snapshot that storage will find stale at the first write.
    pub fn never_loaded() -> Self {
        Self { version: Self::NEVER_LOADED, ..Self::default() }
    }

    pub fn new(
        version: i64,
        items: Vec<MenuItem>,
        categories: Vec<Category>,
        sold_out: Vec<(LocationId, MenuItemId)>,
    ) -> Self {
        Self {
            version,
            items: items.into_iter().map(|i| (i.id, i)).collect(),
            categories: categories.into_iter().map(|c| (c.id, c)).collect(),
            sold_out: sold_out.into_iter().collect(),
        }
    }

    /// The item and its category as they are now, if the item exists; with why it cannot be
    /// ordered at `location`, if it cannot.
    pub fn orderable(
        &self,
        id: MenuItemId,
        location: LocationId,
    ) -> Option<(&MenuItem, &Category, Result<(), Unorderable>)> {
        let item = self.items.get(&id)?;
        let category = self.categories.get(&item.category_id)?;
        let state = if !item.active {
            Err(Unorderable::Retired)
        } else if self.sold_out.contains(&(location, id)) {
            Err(Unorderable::SoldOut)
        } else {
            Ok(())
        };
        Some((item, category, state))
    }
}

/// An item as a list shows it: with `sold_out` when a location was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedItem {
    pub item: MenuItem,
    pub sold_out: Option<bool>,
}

/// Filters of the item list; every one optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MenuFilter {
    pub category_id: Option<CategoryId>,
    pub active: Option<bool>,
    /// Each item then says whether this location has sold it out.
    pub location_id: Option<LocationId>,
}

/// A change to a category; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CategoryChange {
    pub name: Option<CategoryName>,
    pub position: Option<Position>,
}

/// Why storage refused a menu write.
#[derive(Debug, thiserror::Error)]
pub enum MenuStoreError {
    #[error("no such menu item or category")]
    NotFound,
    #[error("another category or active item has this name")]
    NameTaken,
    #[error("no such category")]
    UnknownCategory,
    #[error("no such location")]
    UnknownLocation,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Storage of the menu. Nothing of it is ever deleted but sold-out marks.
pub trait MenuRepository: Send + Sync {
    fn insert_category(&self, category: &Category) -> Result<(), MenuStoreError>;
    fn find_category(&self, id: CategoryId) -> Result<Option<Category>, StoreError>;
    /// Up to `page.limit + 1` categories, newest first, after the cursor.
    fn categories(&self, page: &PageRequest) -> Result<Vec<Category>, StoreError>;
    /// In one transaction: locks the category, lets `change` apply, saves it.
    fn change_category(
        &self,
        id: CategoryId,
        change: &mut dyn FnMut(&mut Category),
    ) -> Result<Category, MenuStoreError>;
    /// Inserts an item and the first span of its price history (from its creation).
    fn insert_item(&self, item: &MenuItem) -> Result<(), MenuStoreError>;
    fn find_item(&self, id: MenuItemId, location: Option<LocationId>) -> Result<Option<ListedItem>, StoreError>;
    /// Up to `page.limit + 1` items of the filter, newest first, after the cursor.
    fn items(&self, filter: &MenuFilter, page: &PageRequest) -> Result<Vec<ListedItem>, StoreError>;
    /// In one transaction: locks the item, lets `change` apply (it says whether the price
    /// changed), saves it, and when the price changed closes the current span of its history
    /// at the item's `updated_at` and opens the next one there.
    fn change_item(
        &self,
        id: MenuItemId,
        change: &mut dyn FnMut(&mut MenuItem) -> bool,
    ) -> Result<MenuItem, MenuStoreError>;
    /// The item's price history, oldest first; `None` when there is no such item.
    fn prices(&self, id: MenuItemId) -> Result<Option<Vec<PriceSpan>>, StoreError>;
    /// Marks the item sold out at the location (`by`, since `at`), or clears the mark; either is
    /// a no-op when already so.
    fn set_sold_out(
        &self,
        location: LocationId,
        item: MenuItemId,
        sold_out: Option<(UserId, DateTime<Utc>)>,
    ) -> Result<(), MenuStoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum MenuError {
    #[error("your role may not do this")]
    Forbidden,
    #[error("no such menu item, category or location")]
    NotFound,
    #[error("another category or active item has this name")]
    NameTaken,
    #[error("no such category")]
    UnknownCategory,
    #[error("the signed-in user no longer exists")]
    ActorGone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Denied> for MenuError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::Forbidden => Self::Forbidden,
            Denied::Hidden => Self::NotFound,
        }
    }
}

impl From<MenuStoreError> for MenuError {
    fn from(error: MenuStoreError) -> Self {
        match error {
            MenuStoreError::NotFound | MenuStoreError::UnknownLocation => Self::NotFound,
            MenuStoreError::NameTaken => Self::NameTaken,
            MenuStoreError::UnknownCategory => Self::UnknownCategory,
            MenuStoreError::Store(e) => Self::Store(e),
        }
    }
}

/// A new item, parsed.
#[derive(Debug, Clone)]
pub struct NewMenuItem {
    pub name: ProductName,
    pub category_id: CategoryId,
    pub price: Money,
}

pub struct MenuService {
    menu: Arc<dyn MenuRepository>,
    users: Arc<dyn UserRepository>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MenuService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MenuService").finish_non_exhaustive()
    }
}

impl MenuService {
    pub fn new(menu: Arc<dyn MenuRepository>, users: Arc<dyn UserRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { menu, users, clock }
    }

    #[instrument(skip_all)]
    pub fn create_category(
        &self,
        caller: &Caller,
        name: CategoryName,
        position: Option<Position>,
    ) -> Result<Category, MenuError> {
        self.actor(caller)?.may(Action::ManageMenu)?;
        let now = self.clock.now();
        let category = Category {
            id: CategoryId(Uuid::now_v7()),
            name,
            position: position.unwrap_or_default(),
            created_at: now,
            updated_at: now,
        };
        self.menu.insert_category(&category)?;
        Ok(category)
    }

    pub fn categories(&self, caller: &Caller, page: PageRequest) -> Result<Page<Category>, MenuError> {
        self.actor(caller)?.may(Action::ReadMenu)?;
        let rows = self.menu.categories(&page)?;
        Ok(Page::from_rows(rows, page.limit, |c| Cursor { created_at: c.created_at, id: c.id.0 }))
    }

    pub fn category(&self, caller: &Caller, id: CategoryId) -> Result<Category, MenuError> {
        self.actor(caller)?.may(Action::ReadMenu)?;
        self.menu.find_category(id)?.ok_or(MenuError::NotFound)
    }

    #[instrument(skip_all, fields(category_id = %id))]
    pub fn change_category(
        &self,
        caller: &Caller,
        id: CategoryId,
        change: CategoryChange,
    ) -> Result<Category, MenuError> {
        self.actor(caller)?.may(Action::ManageMenu)?;
        let now = self.clock.now();
        let mut change = Some(change);
        Ok(self.menu.change_category(id, &mut |category| {
            if let Some(CategoryChange { name, position }) = change.take() {
                category.change(name, position, now);
            }
        })?)
    }

    #[instrument(skip_all)]
    pub fn create_item(&self, caller: &Caller, new: NewMenuItem) -> Result<MenuItem, MenuError> {
        self.actor(caller)?.may(Action::ManageMenu)?;
        let now = self.clock.now();
        let item = MenuItem {
            id: MenuItemId(Uuid::now_v7()),
            name: new.name,
            category_id: new.category_id,
            price: new.price,
            active: true,
            created_at: now,
            updated_at: now,
        };
        self.menu.insert_item(&item)?;
        Ok(item)
    }

    /// One item; with a location, whether it has sold it out (a location the caller does not
    /// work in: 403).
    pub fn item(&self, caller: &Caller, id: MenuItemId, location: Option<LocationId>) -> Result<ListedItem, MenuError> {
        self.may_read(caller, location)?;
        self.menu.find_item(id, location)?.ok_or(MenuError::NotFound)
    }

    pub fn items(
        &self,
        caller: &Caller,
        filter: &MenuFilter,
        page: PageRequest,
    ) -> Result<Page<ListedItem>, MenuError> {
        self.may_read(caller, filter.location_id)?;
        let rows = self.menu.items(filter, &page)?;
        Ok(Page::from_rows(rows, page.limit, |i| Cursor { created_at: i.item.created_at, id: i.item.id.0 }))
    }

    /// Changes an item; a new price holds for every order placed after this returns.
    #[instrument(skip_all, fields(menu_item_id = %id))]
    pub fn change_item(&self, caller: &Caller, id: MenuItemId, change: MenuItemChange) -> Result<MenuItem, MenuError> {
        self.actor(caller)?.may(Action::ManageMenu)?;
        let now = self.clock.now();
        let mut change = Some(change);
        Ok(self.menu.change_item(id, &mut |item| change.take().is_some_and(|c| item.change(c, now)))?)
    }

    pub fn prices(&self, caller: &Caller, id: MenuItemId) -> Result<Vec<PriceSpan>, MenuError> {
        self.actor(caller)?.may(Action::ReadMenu)?;
        self.menu.prices(id)?.ok_or(MenuError::NotFound)
    }

    /// Marks an item sold out at a location (`true`) or clears the mark: that location's
    /// managers and admins. Holds for every order placed after this returns.
    #[instrument(skip_all, fields(location_id = %location, menu_item_id = %item, sold_out))]
    pub fn set_sold_out(
        &self,
        caller: &Caller,
        location: LocationId,
        item: MenuItemId,
        sold_out: bool,
    ) -> Result<(), MenuError> {
        let actor = self.actor(caller)?;
        actor.may_on(Action::MarkSoldOut, location, None)?;
        let mark = sold_out.then(|| (actor.user_id, self.clock.now()));
        Ok(self.menu.set_sold_out(location, item, mark)?)
    }

    fn may_read(&self, caller: &Caller, location: Option<LocationId>) -> Result<(), MenuError> {
        let actor = self.actor(caller)?;
        match location {
            None => actor.may(Action::ReadMenu)?,
            Some(location) => actor.may_in(Action::ReadMenu, location)?,
        }
        Ok(())
    }

    fn actor(&self, caller: &Caller) -> Result<Actor, MenuError> {
        self.users.actor(caller)?.ok_or(MenuError::ActorGone)
    }
}
