//! Comanda's use cases, one service per aggregate, and the ports they need.
//!
//! Ports are synchronous: each HTTP request runs its whole use case in one blocking hop.

pub mod actor;
pub mod auth;
pub mod clock;
pub mod directory;
pub mod idempotency;
pub mod kitchen;
pub mod locations;
pub mod menu;
pub mod orders;
pub mod page;
pub mod ports;
pub mod reports;
pub mod snapshot;
pub mod store;
pub mod users;

pub use actor::{Actor, Caller, Denied, LocationScope};
pub use auth::{AuthError, AuthService};
pub use clock::{Clock, SystemClock};
pub use directory::Directory;
pub use idempotency::{Fingerprint, IdempotencyClaim, IdempotencyKey, IdempotencyKeyError, MissingClaim, Replay};
pub use kitchen::{
    KitchenError, KitchenEvent, KitchenEventKind, KitchenRepository, KitchenService, MAX_EVENTS_PER_READ,
    TicketChangeError, TicketFilter,
};
pub use locations::{LocationChangeError, LocationError, LocationRepository, LocationService, NewLocation};
pub use menu::{
    CategoryChange, ListedItem, Menu, MenuError, MenuFilter, MenuRepository, MenuService, MenuStoreError, NewMenuItem,
    Unorderable,
};
pub use orders::{
    ChangeOutcome, ChangeTerms, Changed, LineRequest, MAX_PAGE_LINES, OrderChangeError, OrderFilter, OrderRepository,
    OrderRequest, OrderService, OrderServiceError, OrderWriter, PaymentInsert, PaymentOutcome, PendingWrite,
    PlaceOutcome, Refused, SnapshotVersions, WriteOutcome,
};
pub use page::{Cursor, Page, PageRequest, budget_cut};
pub use ports::{
    AccessToken, HashError, PasswordHasher, StaffMember, TokenError, TokenService, UserRepository, Verified,
};
pub use reports::{
    ProductSales, ReportBound, ReportError, ReportRange, ReportRepository, ReportService, RollupProgress, SalesReport,
    StartAfterEnd, rollup_lag,
};
pub use snapshot::{PendingSnapshot, Snapshots, Versioned};
pub use store::StoreError;
pub use users::{NewUser, StaffLocationsError, UserError, UserService};
