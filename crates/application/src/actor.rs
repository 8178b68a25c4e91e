//! Who is calling: what a token proves, and what storage says of that user right now.

use domain::{Role, UserId};

/// Who a valid token says is calling. Only the user's id is trusted: the role the token
/// carries may be stale, so authorization decides on the [`Actor`] that storage gives for it,
/// looked up in the same unit of work as the use case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user_id: UserId,
}

/// The caller as storage knows them at this moment: what every permission check uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub user_id: UserId,
    pub role: Role,
}

impl Actor {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}
