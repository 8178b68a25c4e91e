//! Comanda's use cases, one service per aggregate, and the ports they need.
//!
//! Ports are synchronous: each HTTP request runs its whole use case in one blocking hop.

pub mod actor;
pub mod auth;
pub mod clock;
pub mod idempotency;
pub mod orders;
pub mod page;
pub mod ports;
pub mod reports;
pub mod store;
pub mod users;

pub use actor::{Actor, Caller};
pub use auth::{AuthError, AuthService};
pub use clock::{Clock, SystemClock};
pub use idempotency::{Fingerprint, IdempotencyClaim, IdempotencyKey, IdempotencyKeyError, MissingClaim, Replay};
pub use orders::{
    MAX_PAGE_LINES, OrderChangeError, OrderFilter, OrderRepository, OrderService, OrderServiceError, OrderWriter,
    PaymentInsert, PaymentOutcome, PendingWrite, PlaceOutcome, Refused, WriteOutcome,
};
pub use page::{Cursor, Page, PageRequest, budget_cut};
pub use ports::{AccessToken, HashError, PasswordHasher, TokenError, TokenService, UserRepository, Verified};
pub use reports::{
    ProductSales, ReportBound, ReportError, ReportRange, ReportRepository, ReportService, RollupProgress, SalesReport,
    StartAfterEnd, rollup_lag,
};
pub use store::StoreError;
pub use users::{NewUser, UserError, UserService};
