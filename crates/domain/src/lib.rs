//! Comanda's domain: entities and value objects, parsed once and valid from then on.
//!
//! Pure: no I/O, no framework. Every other crate depends on this one.

pub mod location;
pub mod money;
pub mod order;
pub mod payment;
pub mod permission;
pub mod text;
pub mod user;

pub use location::{
    BusinessDayStart, DayStartError, Location, LocationChange, LocationId, LocationName, LocationSettings, TaxRate,
    TaxRateError, TimeZone, TimeZoneError,
};
pub use money::{Money, MoneyError, Quantity, QuantityError};
pub use order::{
    CorruptOrder, CustomerName, NewOrder, NewOrderLine, Order, OrderId, OrderLine, OrderStatus, PlacementError,
    ProductKey, ProductName, StoredOrder, TransitionError,
};
pub use payment::{Payment, PaymentId, PaymentMethod, PaymentMethodError};
pub use permission::{Action, Reach};
pub use text::TextError;
pub use user::{Email, EmailError, Password, PasswordError, PersonName, Role, RoleError, User, UserId};
