//! The permission table: what each role may do, and where. Written once, here. The HTTP layer
//! maps each route to one [`Action`], the use cases check every request against this table
//! (through `application::Actor`), and `docs/PERMISSIONS.md` is rendered from it.

use crate::user::Role;

/// Something a user asks the service to do. Each route is one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Read locations (the list and one location).
    ReadLocations,
    /// Create locations and change their settings.
    ManageLocations,
    /// Read a user's own record.
    ReadSelf,
    /// Create staff, read and list them, assign them to locations.
    ManageStaff,
    /// Place an order.
    PlaceOrder,
    /// Read orders and their payments.
    ReadOrders,
    /// Cancel an order.
    CancelOrder,
    /// Record a payment on an order.
    RecordPayment,
    /// Read sales reports.
    ReadReports,
    /// Read the menu (with a location: what it has sold out).
    ReadMenu,
    /// Create and change menu categories and items, and their prices.
    ManageMenu,
    /// Mark menu items sold out ("86") in a location, and clear the mark.
    MarkSoldOut,
    /// Add lines to an order, send its new lines to the kitchen, void lines not yet sent.
    ChangeOrder,
    /// Void lines already sent to the kitchen.
    VoidSentLine,
    /// Read kitchen tickets and their live stream.
    ReadKitchen,
    /// Mark a ticket ready (the kitchen's bump).
    MarkTicketReady,
    /// Mark a ticket served.
    MarkTicketServed,
}

impl Action {
    pub const ALL: [Action; 17] = [
        Self::ReadLocations,
        Self::ManageLocations,
        Self::ReadSelf,
        Self::ManageStaff,
        Self::PlaceOrder,
        Self::ReadOrders,
        Self::CancelOrder,
        Self::RecordPayment,
        Self::ReadReports,
        Self::ReadMenu,
        Self::ManageMenu,
        Self::MarkSoldOut,
        Self::ChangeOrder,
        Self::VoidSentLine,
        Self::ReadKitchen,
        Self::MarkTicketReady,
        Self::MarkTicketServed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::ReadLocations => "read locations",
            Self::ManageLocations => "manage locations",
            Self::ReadSelf => "read oneself",
            Self::ManageStaff => "manage staff",
            Self::PlaceOrder => "place orders",
            Self::ReadOrders => "read orders",
            Self::CancelOrder => "cancel orders",
            Self::RecordPayment => "record payments",
            Self::ReadReports => "read reports",
            Self::ReadMenu => "read the menu",
            Self::ManageMenu => "manage the menu",
            Self::MarkSoldOut => "mark items sold out",
            Self::ChangeOrder => "add, send and void new lines",
            Self::VoidSentLine => "void lines sent to the kitchen",
            Self::ReadKitchen => "read kitchen tickets",
            Self::MarkTicketReady => "mark tickets ready",
            Self::MarkTicketServed => "mark tickets served",
        }
    }
}

/// How far a role's permission for an action reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reach {
    /// In every location.
    Everywhere,
    /// In the locations the user works in.
    OwnLocations,
    /// Only what is the user's own (their own orders, in the locations they work in; their
    /// own record).
    Own,
    /// Not at all.
    Nowhere,
}

impl Reach {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Everywhere => "every location",
            Self::OwnLocations => "own locations",
            Self::Own => "own only",
            Self::Nowhere => "no",
        }
    }
}

/// The table: how far `role` may do `action`.
pub fn reach(role: Role, action: Action) -> Reach {
    use Action::*;
    match (role, action) {
        (Role::Admin, _) => Reach::Everywhere,
        (_, ReadSelf) => Reach::Own,
        (
            Role::Manager,
            ReadLocations | PlaceOrder | ReadOrders | CancelOrder | RecordPayment | ReadReports | ReadMenu
            | MarkSoldOut | ChangeOrder | VoidSentLine | ReadKitchen | MarkTicketReady | MarkTicketServed,
        ) => Reach::OwnLocations,
        (
            Role::Waiter,
            ReadLocations | PlaceOrder | ReadOrders | RecordPayment | ReadMenu | ReadKitchen | MarkTicketServed,
        ) => Reach::OwnLocations,
        (Role::Waiter, CancelOrder | ChangeOrder) => Reach::Own,
        (Role::Kitchen, ReadLocations | ReadMenu | ReadKitchen | MarkTicketReady) => Reach::OwnLocations,
        (Role::Manager | Role::Waiter | Role::Kitchen, _) => Reach::Nowhere,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_may_do_everything_everywhere() {
        for action in Action::ALL {
            assert_eq!(reach(Role::Admin, action), Reach::Everywhere, "{action:?}");
        }
    }

    #[test]
    fn a_manager_may_do_what_a_waiter_may_and_more() {
        let rank = |r: Reach| match r {
            Reach::Nowhere => 0,
            Reach::Own => 1,
            Reach::OwnLocations => 2,
            Reach::Everywhere => 3,
        };
        for action in Action::ALL {
            assert!(rank(reach(Role::Manager, action)) >= rank(reach(Role::Waiter, action)), "{action:?}");
        }
        assert_eq!(reach(Role::Manager, Action::ReadReports), Reach::OwnLocations);
        assert_eq!(reach(Role::Waiter, Action::ReadReports), Reach::Nowhere);
    }

    #[test]
    fn the_kitchen_reads_its_locations_and_nothing_else() {
        for action in Action::ALL {
            let expected = match action {
                Action::ReadLocations | Action::ReadMenu | Action::ReadKitchen | Action::MarkTicketReady => {
                    Reach::OwnLocations
                }
                Action::ReadSelf => Reach::Own,
                _ => Reach::Nowhere,
            };
            assert_eq!(reach(Role::Kitchen, action), expected, "{action:?}");
        }
    }
}
