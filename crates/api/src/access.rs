//! Which action each route is, over the permission table of `domain::permission`: the one list
//! that `docs/PERMISSIONS.md` is rendered from and that the permission tests walk (every role,
//! every route, in its own location and in another). The checks themselves run in the use
//! cases, through `application::Actor`.

use domain::permission::reach;
use domain::{Action, Reach, Role};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Anyone, without a token.
    Open,
    /// A signed-in user whose role may do the action.
    Action(Action),
    /// The action, or the user the path names being the caller.
    ActionOrSelf(Action),
}

/// One route: a method and a path as the OpenAPI document writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub gate: Gate,
}

const fn route(method: &'static str, path: &'static str, gate: Gate) -> Route {
    Route { method, path, gate }
}

/// Every route of the service.
pub const ROUTES: &[Route] = &[
    route("GET", "/health/live", Gate::Open),
    route("GET", "/health/ready", Gate::Open),
    route("GET", "/metrics", Gate::Open),
    route("POST", "/api/v1/auth/login", Gate::Open),
    route("GET", "/api/v1/users/me", Gate::Action(Action::ReadSelf)),
    route("POST", "/api/v1/users", Gate::Action(Action::ManageStaff)),
    route("GET", "/api/v1/users", Gate::Action(Action::ManageStaff)),
    route("GET", "/api/v1/users/{id}", Gate::ActionOrSelf(Action::ManageStaff)),
    route("PUT", "/api/v1/users/{id}/locations", Gate::Action(Action::ManageStaff)),
    route("POST", "/api/v1/locations", Gate::Action(Action::ManageLocations)),
    route("GET", "/api/v1/locations", Gate::Action(Action::ReadLocations)),
    route("GET", "/api/v1/locations/{id}", Gate::Action(Action::ReadLocations)),
    route("PATCH", "/api/v1/locations/{id}", Gate::Action(Action::ManageLocations)),
    route("PUT", "/api/v1/locations/{id}/sold-out/{item_id}", Gate::Action(Action::MarkSoldOut)),
    route("DELETE", "/api/v1/locations/{id}/sold-out/{item_id}", Gate::Action(Action::MarkSoldOut)),
    route("POST", "/api/v1/menu/categories", Gate::Action(Action::ManageMenu)),
    route("GET", "/api/v1/menu/categories", Gate::Action(Action::ReadMenu)),
    route("GET", "/api/v1/menu/categories/{id}", Gate::Action(Action::ReadMenu)),
    route("PATCH", "/api/v1/menu/categories/{id}", Gate::Action(Action::ManageMenu)),
    route("POST", "/api/v1/menu/items", Gate::Action(Action::ManageMenu)),
    route("GET", "/api/v1/menu/items", Gate::Action(Action::ReadMenu)),
    route("GET", "/api/v1/menu/items/{id}", Gate::Action(Action::ReadMenu)),
    route("PATCH", "/api/v1/menu/items/{id}", Gate::Action(Action::ManageMenu)),
    route("GET", "/api/v1/menu/items/{id}/prices", Gate::Action(Action::ReadMenu)),
    route("POST", "/api/v1/orders", Gate::Action(Action::PlaceOrder)),
    route("GET", "/api/v1/orders", Gate::Action(Action::ReadOrders)),
    route("GET", "/api/v1/orders/report", Gate::Action(Action::ReadReports)),
    route("GET", "/api/v1/orders/{id}", Gate::Action(Action::ReadOrders)),
    route("POST", "/api/v1/orders/{id}/cancel", Gate::Action(Action::CancelOrder)),
    route("POST", "/api/v1/orders/{id}/payments", Gate::Action(Action::RecordPayment)),
    route("GET", "/api/v1/orders/{id}/payments", Gate::Action(Action::ReadOrders)),
    route("POST", "/api/v1/orders/{id}/items", Gate::Action(Action::ChangeOrder)),
    route("POST", "/api/v1/orders/{id}/items/{line_id}/void", Gate::Action(Action::ChangeOrder)),
    route("POST", "/api/v1/orders/{id}/send", Gate::Action(Action::ChangeOrder)),
    route("GET", "/api/v1/kitchen/tickets", Gate::Action(Action::ReadKitchen)),
    route("GET", "/api/v1/kitchen/tickets/{id}", Gate::Action(Action::ReadKitchen)),
    route("POST", "/api/v1/kitchen/tickets/{id}/ready", Gate::Action(Action::MarkTicketReady)),
    route("POST", "/api/v1/kitchen/tickets/{id}/served", Gate::Action(Action::MarkTicketServed)),
    route("GET", "/api/v1/kitchen/stream", Gate::Action(Action::ReadKitchen)),
];

fn cell(gate: Gate, role: Role) -> String {
    match gate {
        Gate::Open => "anyone".into(),
        Gate::Action(action) => reach(role, action).describe().into(),
        Gate::ActionOrSelf(action) => match reach(role, action) {
            Reach::Nowhere => "oneself".into(),
            other => other.describe().into(),
        },
    }
}

/// `docs/PERMISSIONS.md`, rendered from the table and the routes.
pub fn permissions_markdown() -> String {
    let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    let mut out = String::from(
        "# Permissions\n\n\
         <!-- Rendered from the code (domain::permission::reach and api::access::ROUTES) by the\n\
         test `the_permission_table_in_the_docs_is_the_codes`; UPDATE_SNAPSHOT=1 rewrites it. -->\n\n\
         What each role may do, and where. Admins work in every location; everyone else works in\n\
         the locations an admin assigned them (`location_ids`). The use cases check every request\n\
         against this one table, in this order:\n\n\
         1. the role may not take the action at all: `403`;\n\
         2. the request is about a resource (an order, a location) of a location the user does not\n   \
         work in: `404`, as if it did not exist, and such resources never appear in their lists;\n\
         3. the request names a location the user does not work in (`location_id` in a body or a\n   \
         query): `403`;\n\
         4. the role reaches only its own (a waiter cancels only their own orders): `403` for the\n   \
         rest.\n\n\
         Voiding a line takes *add, send and void new lines* on the order; a line already sent to\n\
         the kitchen takes *void lines sent to the kitchen* as well (a waiter: `403`).\n\n\
         Reach: *every location*; *own locations* (those the user works in); *own only* (their\n\
         own orders in their own locations, or their own record); *no* (`403`).\n\n\
         ## Roles and actions\n\n",
    );
    out.push_str(&format!("| Action | {} |\n|---|{}\n", roles.join(" | "), "---|".repeat(roles.len())));
    for action in Action::ALL {
        let cells: Vec<&str> = Role::ALL.iter().map(|r| reach(*r, action).describe()).collect();
        out.push_str(&format!("| {} | {} |\n", action.name(), cells.join(" | ")));
    }
    out.push_str("\n## Routes\n\n");
    out.push_str(&format!("| Route | Action | {} |\n|---|---|{}\n", roles.join(" | "), "---|".repeat(roles.len())));
    for route in ROUTES {
        let action = match route.gate {
            Gate::Open => "(none: no token)".to_owned(),
            Gate::Action(action) => action.name().to_owned(),
            Gate::ActionOrSelf(action) => format!("{}, or oneself", action.name()),
        };
        let cells: Vec<String> = Role::ALL.iter().map(|r| cell(route.gate, *r)).collect();
        out.push_str(&format!("| `{} {}` | {action} | {} |\n", route.method, route.path, cells.join(" | ")));
    }
    out
}
