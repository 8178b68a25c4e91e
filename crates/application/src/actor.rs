//! Who is calling: what a token proves, what storage says of that user right now, and the one
//! place where every use case asks whether that user may do what they ask, and where.

use domain::permission::reach;
use domain::{Action, LocationId, Reach, Role, UserId};

/// Who a valid token says is calling. Only the user's id is trusted: the role the token
/// carries may be stale, so authorization decides on the [`Actor`] that storage gives for it,
/// looked up in the same unit of work as the use case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user_id: UserId,
}

/// The caller as storage knows them at this moment: what every permission check uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: UserId,
    pub role: Role,
    /// The locations the user works in (admins work in every location: empty for them).
    pub locations: Vec<LocationId>,
}

/// Why the permission table refuses a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The role may not do this (403), or not in the location the request names (403).
    #[error("your role may not do this here")]
    Forbidden,
    /// The resource lies in a location the user does not work in: to them it does not exist
    /// (404).
    #[error("no such resource")]
    Hidden,
}

/// Which locations a request reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocationScope {
    All,
    Only(Vec<LocationId>),
}

impl LocationScope {
    pub fn contains(&self, location: LocationId) -> bool {
        match self {
            Self::All => true,
            Self::Only(ids) => ids.contains(&location),
        }
    }

    /// The scope narrowed to the location a client asked for, if any.
    pub fn narrowed(self, to: Option<LocationId>) -> Self {
        match to {
            None => self,
            Some(id) => Self::Only(vec![id]),
        }
    }
}

impl Actor {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether the user works in `location` (admins work everywhere).
    pub fn works_in(&self, location: LocationId) -> bool {
        self.is_admin() || self.locations.contains(&location)
    }

    /// How far the table lets this user do `action`.
    pub fn reach(&self, action: Action) -> Reach {
        reach(self.role, action)
    }

    /// The role may do `action` somewhere, or 403.
    pub fn may(&self, action: Action) -> Result<(), Denied> {
        match self.reach(action) {
            Reach::Nowhere => Err(Denied::Forbidden),
            _ => Ok(()),
        }
    }

    /// `action` on a resource of `location` (owned by `owner`, when it has one): the role
    /// first (403), then the location (a resource elsewhere is hidden: 404), then ownership
    /// where the role reaches only its own (403).
    pub fn may_on(&self, action: Action, location: LocationId, owner: Option<UserId>) -> Result<(), Denied> {
        match self.reach(action) {
            Reach::Nowhere => Err(Denied::Forbidden),
            Reach::Everywhere => Ok(()),
            _ if !self.works_in(location) => Err(Denied::Hidden),
            Reach::OwnLocations => Ok(()),
            Reach::Own => match owner {
                Some(owner) if owner == self.user_id => Ok(()),
                _ => Err(Denied::Forbidden),
            },
        }
    }

    /// `action` in a location the request names (to create something there, or to filter by
    /// it): 403 when the role may not, or not there.
    pub fn may_in(&self, action: Action, location: LocationId) -> Result<(), Denied> {
        match self.reach(action) {
            Reach::Nowhere => Err(Denied::Forbidden),
            Reach::Everywhere => Ok(()),
            _ if self.works_in(location) => Ok(()),
            _ => Err(Denied::Forbidden),
        }
    }

    /// The locations `action` reaches for this user, narrowed to `requested` when the request
    /// names one (403 if the user may not act there).
    pub fn scope(&self, action: Action, requested: Option<LocationId>) -> Result<LocationScope, Denied> {
        if let Some(location) = requested {
            self.may_in(action, location)?;
            return Ok(LocationScope::Only(vec![location]));
        }
        match self.reach(action) {
            Reach::Nowhere => Err(Denied::Forbidden),
            Reach::Everywhere => Ok(LocationScope::All),
            Reach::OwnLocations | Reach::Own => Ok(LocationScope::Only(self.locations.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn actor(role: Role, locations: &[LocationId]) -> Actor {
        Actor { user_id: UserId(Uuid::from_u128(1)), role, locations: locations.to_vec() }
    }

    #[test]
    fn the_role_is_checked_before_the_location() {
        let here = LocationId(Uuid::from_u128(10));
        let there = LocationId(Uuid::from_u128(11));
        let kitchen = actor(Role::Kitchen, &[here]);
        assert_eq!(kitchen.may_on(Action::ReadOrders, there, None), Err(Denied::Forbidden));
        let waiter = actor(Role::Waiter, &[here]);
        assert_eq!(waiter.may_on(Action::ReadOrders, here, None), Ok(()));
        assert_eq!(waiter.may_on(Action::ReadOrders, there, None), Err(Denied::Hidden));
        assert_eq!(waiter.may_in(Action::PlaceOrder, there), Err(Denied::Forbidden));
        let admin = actor(Role::Admin, &[]);
        assert_eq!(admin.may_on(Action::ReadOrders, there, None), Ok(()));
        assert_eq!(admin.scope(Action::ReadOrders, None), Ok(LocationScope::All));
    }

    #[test]
    fn a_waiter_cancels_only_their_own_orders() {
        let here = LocationId(Uuid::from_u128(10));
        let waiter = actor(Role::Waiter, &[here]);
        let other = UserId(Uuid::from_u128(2));
        assert_eq!(waiter.may_on(Action::CancelOrder, here, Some(waiter.user_id)), Ok(()));
        assert_eq!(waiter.may_on(Action::CancelOrder, here, Some(other)), Err(Denied::Forbidden));
        let manager = actor(Role::Manager, &[here]);
        assert_eq!(manager.may_on(Action::CancelOrder, here, Some(other)), Ok(()));
    }
}
