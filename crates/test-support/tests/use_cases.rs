//! Use cases with the in-memory fakes of `test_support::fakes`: rules that need no database.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::Utc;
use uuid::Uuid;

use application::{AuthError, AuthService};
use domain::{Email, PersonName, Role, User, UserId};
use test_support::fakes::{FakeHasher, FakeTokens, MemoryUsers};

fn user(email: &str, role: Role) -> User {
    User::new(
        UserId(Uuid::now_v7()),
        Email::parse(email).unwrap(),
        PersonName::parse("Ana López").unwrap(),
        role,
        Utc::now(),
    )
}

/// The stored hashes were made with weaker parameters than today's: a login for an unknown
/// email is checked against a stand-in hash with the stored hashes' parameters, so it costs
/// what a wrong password for a known email costs, not today's (higher) price.
#[test]
fn an_unknown_email_costs_what_the_stored_hashes_cost() {
    let stored = [
        (user("ana@example.com", Role::Waiter), FakeHasher::hash_with("m=19456,t=2", "el secreto de ana")),
        (user("luis@example.com", Role::Admin), FakeHasher::hash_with("m=19456,t=2", "el secreto de luis")),
        (user("eva@example.com", Role::Waiter), FakeHasher::hash_with("m=65536,t=4", "el secreto de eva")),
    ];
    let hasher = Arc::new(FakeHasher::new("m=65536,t=4"));
    let auth = AuthService::new(Arc::new(MemoryUsers::with(stored)), hasher.clone(), Arc::new(FakeTokens)).unwrap();
    assert!(matches!(auth.login("ana@example.com", "wrong"), Err(AuthError::InvalidCredentials)));
    assert!(matches!(auth.login("nobody@example.com", "wrong"), Err(AuthError::InvalidCredentials)));
    assert!(matches!(auth.login("not an email", "wrong"), Err(AuthError::InvalidCredentials)));
    assert!(matches!(auth.login("ana@example.com", &"x".repeat(200)), Err(AuthError::InvalidCredentials)));
    let verified = hasher.verified_with.lock().unwrap().clone();
    assert_eq!(verified, ["m=19456,t=2"; 4], "every failure verified with the stored hashes' parameters");
    // A success still works, and upgrades the hash to today's parameters.
    assert!(auth.login("ana@example.com", "el secreto de ana").is_ok());
}

/// With no user at all, the stand-in has today's parameters.
#[test]
fn with_no_users_the_stand_in_has_todays_parameters() {
    let hasher = Arc::new(FakeHasher::new("m=65536,t=4"));
    let auth = AuthService::new(Arc::new(MemoryUsers::default()), hasher.clone(), Arc::new(FakeTokens)).unwrap();
    assert!(auth.login("nobody@example.com", "wrong").is_err());
    assert_eq!(*hasher.verified_with.lock().unwrap(), ["m=65536,t=4"]);
}
