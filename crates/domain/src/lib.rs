//! Comanda's domain: entities and value objects, parsed once and valid from then on.
//!
//! Pure: no I/O, no framework. Every other crate depends on this one.

pub mod kitchen;
pub mod location;
pub mod menu;
pub mod money;
pub mod order;
pub mod payment;
pub mod permission;
pub mod text;
pub mod user;

pub use kitchen::{
    KitchenStatus, LineVoid, Ticket, TicketId, TicketLine, TicketStatus, TicketTransitionError, TicketView, VoidReason,
};
pub use location::{
    BusinessDayStart, DayStartError, Location, LocationChange, LocationId, LocationName, LocationSettings, TaxRate,
    TaxRateError, TimeZone, TimeZoneError,
};
pub use menu::{
    Category, CategoryId, CategoryName, LineNote, MenuItem, MenuItemChange, MenuItemId, Position, PositionError,
    PriceSpan,
};
pub use money::{Money, MoneyError, Quantity, QuantityError, WholeNumberError, whole_number};
pub use order::{
    AddLinesError, CorruptOrder, CustomerName, MenuLine, NewOrder, NewOrderLine, Order, OrderId, OrderLine,
    OrderStatus, PlacementError, ProductKey, ProductName, StoredLine, StoredOrder, TransitionError,
};
pub use payment::{Payment, PaymentId, PaymentMethod, PaymentMethodError};
pub use permission::{Action, Reach};
pub use text::TextError;
pub use user::{Email, EmailError, Password, PasswordError, PersonName, Role, RoleError, User, UserId};
