//! The OpenAPI document, generated from the handlers and DTOs (never written by hand). A test
//! compares it with the committed snapshot `docs/openapi.json`.

use utoipa::openapi::security::{Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::dto::kitchen::{StreamEvent, StreamEventKind, TicketLineResponse, TicketResponse, TicketStatusDto};
use crate::dto::locations::{CreateLocationRequest, LocationResponse, UpdateLocationRequest};
use crate::dto::menu::{
    CategoryResponse, CreateCategoryRequest, CreateMenuItemRequest, MenuItemResponse, PriceResponse,
    UpdateCategoryRequest, UpdateMenuItemRequest,
};
use crate::dto::orders::{
    AddItemsRequest, CreateOrderRequest, KitchenStatusDto, LineKindDto, MenuLineRequest, OpenLineRequest,
    OrderItemRequest, OrderItemResponse, OrderResponse, OrderStatusDto, VoidLineRequest, VoidResponse,
};
use crate::dto::payments::{CreatePaymentRequest, PaymentMethodDto, PaymentResponse};
use crate::dto::reports::{ProductSalesResponse, ReportResponse};
use crate::dto::users::{
    CreateUserRequest, LoginForm, LoginRequest, RoleDto, SetLocationsRequest, TokenResponse, UserResponse,
};
use crate::problem::{FieldError, Problem};
use crate::routes::{auth, health, kitchen, locations, menu, orders, reports, users};

#[derive(Debug)]
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        components.add_security_scheme(
            "oauth2",
            SecurityScheme::OAuth2(OAuth2::new([Flow::Password(Password::new("/api/v1/auth/login", Scopes::new()))])),
        );
    }
}

/// A header is present (a string) or absent: never `null`. utoipa makes an `Option<String>`
/// header nullable, and a fuzzer then sends the text `null` as a value the document allows.
#[derive(Debug)]
struct HeadersAreNeverNull;

impl Modify for HeadersAreNeverNull {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::schema::{Schema, SchemaType, Type};
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                for parameter in operation.parameters.iter_mut().flatten() {
                    let RefOr::T(parameter) = parameter else { continue };
                    if parameter.parameter_in != ParameterIn::Header {
                        continue;
                    }
                    if let Some(RefOr::T(Schema::Object(object))) = parameter.schema.as_mut()
                        && object.schema_type == SchemaType::from_iter([Type::String, Type::Null])
                    {
                        object.schema_type = SchemaType::new(Type::String);
                    }
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Comanda",
        description = "Orders, the menu, payments and sales reports for the staff of a restaurant group.\n\nErrors are RFC 9457 problem details (`application/problem+json`). Money is a string with exactly two decimals. Lists are newest first with cursor pagination. What each role may do, and in which locations, is the permission table of docs/PERMISSIONS.md: a resource of a location the user does not work in is a 404 to them; an action their role may not take, or not in a location the request names, is a 403.",
        license(name = "MIT")
    ),
    paths(
        health::live,
        health::ready,
        crate::metrics::scrape,
        auth::login,
        users::create_user,
        users::me,
        users::get_user,
        users::list_users,
        users::set_user_locations,
        locations::create_location,
        locations::list_locations,
        locations::get_location,
        locations::update_location,
        menu::mark_sold_out,
        menu::clear_sold_out,
        menu::create_category,
        menu::list_categories,
        menu::get_category,
        menu::update_category,
        menu::create_item,
        menu::list_items,
        menu::get_item,
        menu::update_item,
        menu::item_prices,
        orders::create_order,
        orders::list_orders,
        orders::get_order,
        orders::cancel_order,
        orders::create_payment,
        orders::list_payments,
        orders::add_items,
        orders::void_item,
        orders::send_order,
        kitchen::list_tickets,
        kitchen::get_ticket,
        kitchen::ready_ticket,
        kitchen::serve_ticket,
        kitchen::stream,
        reports::sales_report,
    ),
    components(schemas(
        Problem,
        FieldError,
        LoginRequest,
        LoginForm,
        TokenResponse,
        CreateUserRequest,
        UserResponse,
        RoleDto,
        SetLocationsRequest,
        CreateLocationRequest,
        UpdateLocationRequest,
        LocationResponse,
        CreateCategoryRequest,
        UpdateCategoryRequest,
        CategoryResponse,
        CreateMenuItemRequest,
        UpdateMenuItemRequest,
        MenuItemResponse,
        PriceResponse,
        CreateOrderRequest,
        OrderItemRequest,
        MenuLineRequest,
        OpenLineRequest,
        OrderResponse,
        OrderItemResponse,
        LineKindDto,
        OrderStatusDto,
        AddItemsRequest,
        VoidLineRequest,
        VoidResponse,
        KitchenStatusDto,
        TicketResponse,
        TicketLineResponse,
        TicketStatusDto,
        StreamEvent,
        StreamEventKind,
        CreatePaymentRequest,
        PaymentResponse,
        PaymentMethodDto,
        ReportResponse,
        ProductSalesResponse,
    )),
    modifiers(&SecuritySchemes, &HeadersAreNeverNull),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "auth", description = "Logging in"),
        (name = "users", description = "Staff users (email, name and role never change; their locations do)"),
        (name = "locations", description = "The restaurants of the group"),
        (name = "menu", description = "Categories, items, prices with their history, and sold-out marks per location"),
        (name = "orders", description = "Orders"),
        (name = "payments", description = "Payments of an order"),
        (name = "kitchen", description = "Kitchen tickets and each location's live stream"),
        (name = "reports", description = "Sales report"),
    )
)]
pub struct ApiDoc;

/// The document as served at `/api-docs/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
