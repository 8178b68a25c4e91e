//! The OpenAPI document, generated from the handlers and DTOs (never written by hand). A test
//! compares it with the committed snapshot `docs/openapi.json`.

use utoipa::openapi::security::{Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::dto::orders::{CreateOrderRequest, OrderItemRequest, OrderItemResponse, OrderResponse, OrderStatusDto};
use crate::dto::payments::{CreatePaymentRequest, PaymentMethodDto, PaymentResponse};
use crate::dto::reports::{ProductSalesResponse, ReportResponse};
use crate::dto::users::{CreateUserRequest, LoginForm, LoginRequest, RoleDto, TokenResponse, UserResponse};
use crate::problem::{FieldError, Problem};
use crate::routes::{auth, health, orders, reports, users};

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

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Comanda",
        description = "Orders, payments and sales reports for restaurant staff.\n\nErrors are RFC 9457 problem details (`application/problem+json`). Money is a string with exactly two decimals. Lists are newest first with cursor pagination.",
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
        orders::create_order,
        orders::list_orders,
        orders::get_order,
        orders::cancel_order,
        orders::create_payment,
        orders::list_payments,
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
        CreateOrderRequest,
        OrderItemRequest,
        OrderResponse,
        OrderItemResponse,
        OrderStatusDto,
        CreatePaymentRequest,
        PaymentResponse,
        PaymentMethodDto,
        ReportResponse,
        ProductSalesResponse,
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "auth", description = "Logging in"),
        (name = "users", description = "Staff users (immutable once created)"),
        (name = "orders", description = "Orders"),
        (name = "payments", description = "Payments of an order"),
        (name = "reports", description = "Sales report"),
    )
)]
pub struct ApiDoc;

/// The document as served at `/api-docs/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
