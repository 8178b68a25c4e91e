//! The menu: categories, items, their prices, and what each location has sold out.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use uuid::Uuid;
use validator::Validate;

use domain::{CategoryId, LocationId, MenuItemId};

use crate::dto::menu::{
    CategoryResponse, CreateCategoryRequest, CreateMenuItemRequest, ListMenuItemsQuery, MenuItemQuery,
    MenuItemResponse, PriceResponse, UpdateCategoryRequest, UpdateMenuItemRequest,
};
use crate::dto::{Object, PageQuery, PageResponse, page_request};
use crate::error::ApiError;
use crate::extract::SignedIn;
use crate::problem::Problem;
use crate::routes::blocking;
use crate::state::AppState;

/// Create a menu category (admin). Names are unique ignoring case.
#[utoipa::path(
    post,
    path = "/api/v1/menu/categories",
    tag = "menu",
    request_body = CreateCategoryRequest,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 201, body = CategoryResponse, headers(("Location" = String, description = "the new category"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the name is taken (ignoring case)"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_category(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    body: web::Json<Object<CreateCategoryRequest>>,
) -> Result<HttpResponse, ApiError> {
    let (name, position) = body.into_inner().0.parse().map_err(ApiError::validation)?;
    let menu = state.menu.clone();
    let category = blocking(&state, move || menu.create_category(&caller, name, position)).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/menu/categories/{}", category.id)))
        .json(CategoryResponse::from(&category)))
}

/// Menu categories, newest first (any signed-in user); `position` says where each comes in a
/// menu.
#[utoipa::path(
    get,
    path = "/api/v1/menu/categories",
    tag = "menu",
    params(PageQuery),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = PageResponse<CategoryResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "unreadable query or cursor"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_categories(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page_request(query.limit, query.cursor.as_deref(), &state.cursors, query.validate())?;
    let menu = state.menu.clone();
    let page = blocking(&state, move || menu.categories(&caller, page)).await?;
    Ok(HttpResponse::Ok().json(PageResponse {
        items: page.items.iter().map(CategoryResponse::from).collect::<Vec<_>>(),
        next_cursor: page.next.map(|c| state.cursors.encode(&c)),
    }))
}

/// A menu category (any signed-in user).
#[utoipa::path(
    get,
    path = "/api/v1/menu/categories/{id}",
    tag = "menu",
    params(("id" = Uuid, Path, description = "the category's id")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = CategoryResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_category(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let menu = state.menu.clone();
    let id = CategoryId(id.into_inner());
    let category = blocking(&state, move || menu.category(&caller, id)).await?;
    Ok(HttpResponse::Ok().json(CategoryResponse::from(&category)))
}

/// Change a menu category (admin): the fields present replace the current ones. Lines already
/// on orders keep the category name they were added with.
#[utoipa::path(
    patch,
    path = "/api/v1/menu/categories/{id}",
    tag = "menu",
    request_body = UpdateCategoryRequest,
    params(("id" = Uuid, Path, description = "the category's id")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = CategoryResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "the name is taken (ignoring case)"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update_category(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    id: web::Path<Uuid>,
    body: web::Json<Object<UpdateCategoryRequest>>,
) -> Result<HttpResponse, ApiError> {
    let change = body.into_inner().0.parse().map_err(ApiError::validation)?;
    let menu = state.menu.clone();
    let id = CategoryId(id.into_inner());
    let category = blocking(&state, move || menu.change_category(&caller, id, change)).await?;
    Ok(HttpResponse::Ok().json(CategoryResponse::from(&category)))
}

/// Create a menu item (admin). Names are unique ignoring case among active items; the price
/// is the first of its history.
#[utoipa::path(
    post,
    path = "/api/v1/menu/items",
    tag = "menu",
    request_body = CreateMenuItemRequest,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 201, body = MenuItemResponse, headers(("Location" = String, description = "the new item"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "an active item has this name (ignoring case)"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "a field is invalid, or `category_id` names no category"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_item(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    body: web::Json<Object<CreateMenuItemRequest>>,
) -> Result<HttpResponse, ApiError> {
    let new = body.into_inner().0.parse().map_err(ApiError::validation)?;
    let menu = state.menu.clone();
    let item = blocking(&state, move || menu.create_item(&caller, new)).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/menu/items/{}", item.id)))
        .json(MenuItemResponse::new(&item, None)))
}

/// Menu items, newest first (any signed-in user), by category and active or retired; with
/// `location_id`, each says whether that location has sold it out.
#[utoipa::path(
    get,
    path = "/api/v1/menu/items",
    tag = "menu",
    params(ListMenuItemsQuery),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = PageResponse<MenuItemResponse>),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "unreadable query or cursor"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "`location_id` names a location the user does not work in"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_items(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    query: web::Query<ListMenuItemsQuery>,
) -> Result<HttpResponse, ApiError> {
    let (filter, page) = query.parse(&state.cursors)?;
    let menu = state.menu.clone();
    let page = blocking(&state, move || menu.items(&caller, &filter, page)).await?;
    Ok(HttpResponse::Ok().json(PageResponse {
        items: page.items.iter().map(MenuItemResponse::from).collect::<Vec<_>>(),
        next_cursor: page.next.map(|c| state.cursors.encode(&c)),
    }))
}

/// A menu item (any signed-in user); with `location_id`, whether that location has sold it out.
#[utoipa::path(
    get,
    path = "/api/v1/menu/items/{id}",
    tag = "menu",
    params(("id" = Uuid, Path, description = "the item's id"), MenuItemQuery),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = MenuItemResponse),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "unreadable query"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "`location_id` names a location the user does not work in"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_item(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    id: web::Path<Uuid>,
    query: web::Query<MenuItemQuery>,
) -> Result<HttpResponse, ApiError> {
    let menu = state.menu.clone();
    let id = MenuItemId(id.into_inner());
    let location = query.location_id.map(LocationId);
    let listed = blocking(&state, move || menu.item(&caller, id, location)).await?;
    Ok(HttpResponse::Ok().json(MenuItemResponse::from(&listed)))
}

/// Change a menu item (admin): the fields present replace the current ones. A new price holds
/// for every line added after this answer, and begins a new span of the item's price history;
/// `active: false` retires the item. Lines already on orders keep their name, category and
/// price.
#[utoipa::path(
    patch,
    path = "/api/v1/menu/items/{id}",
    tag = "menu",
    request_body = UpdateMenuItemRequest,
    params(("id" = Uuid, Path, description = "the item's id")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = MenuItemResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "an active item has this name (ignoring case)"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "a field is invalid, or `category_id` names no category"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update_item(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    id: web::Path<Uuid>,
    body: web::Json<Object<UpdateMenuItemRequest>>,
) -> Result<HttpResponse, ApiError> {
    let change = body.into_inner().0.parse().map_err(ApiError::validation)?;
    let menu = state.menu.clone();
    let id = MenuItemId(id.into_inner());
    let item = blocking(&state, move || menu.change_item(&caller, id, change)).await?;
    Ok(HttpResponse::Ok().json(MenuItemResponse::new(&item, None)))
}

/// A menu item's price history, oldest first (any signed-in user): each price from when it
/// held until the next replaced it (`to` null for the current price).
#[utoipa::path(
    get,
    path = "/api/v1/menu/items/{id}/prices",
    tag = "menu",
    params(("id" = Uuid, Path, description = "the item's id")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, body = Vec<PriceResponse>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn item_prices(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let menu = state.menu.clone();
    let id = MenuItemId(id.into_inner());
    let prices = blocking(&state, move || menu.prices(&caller, id)).await?;
    Ok(HttpResponse::Ok().json(prices.iter().map(PriceResponse::from).collect::<Vec<_>>()))
}

/// The ids of a sold-out mark: the location and the item.
type SoldOutPath = web::Path<(Uuid, Uuid)>;

async fn set_sold_out(
    state: web::Data<AppState>,
    caller: application::Caller,
    path: SoldOutPath,
    sold_out: bool,
) -> Result<HttpResponse, ApiError> {
    let (location, item) = path.into_inner();
    let menu = state.menu.clone();
    blocking(&state, move || menu.set_sold_out(&caller, LocationId(location), MenuItemId(item), sold_out)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Mark an item sold out ("86") at a location: that location's managers, or an admin. Every
/// order placed after this answer refuses the item there (409); a mark already set stays.
#[utoipa::path(
    put,
    path = "/api/v1/locations/{id}/sold-out/{item_id}",
    tag = "menu",
    params(("id" = Uuid, Path, description = "the location's id"), ("item_id" = Uuid, Path, description = "the menu item's id")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 204, description = "the item is sold out at the location"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such item, or no such location (or one the user does not work in)"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn mark_sold_out(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    path: SoldOutPath,
) -> Result<HttpResponse, ApiError> {
    set_sold_out(state, caller, path, true).await
}

/// Clear an item's sold-out mark at a location: that location's managers, or an admin. A mark
/// that is not set is no error.
#[utoipa::path(
    delete,
    path = "/api/v1/locations/{id}/sold-out/{item_id}",
    tag = "menu",
    params(("id" = Uuid, Path, description = "the location's id"), ("item_id" = Uuid, Path, description = "the menu item's id")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 204, description = "the item is not sold out at the location"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "no such item, or no such location (or one the user does not work in)"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "rate limited; see Retry-After"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn clear_sold_out(
    state: web::Data<AppState>,
    SignedIn(caller): SignedIn,
    path: SoldOutPath,
) -> Result<HttpResponse, ApiError> {
    set_sold_out(state, caller, path, false).await
}
