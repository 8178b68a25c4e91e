//! The API over HTTP against real PostgreSQL: one test binary, one module per area.

#![allow(clippy::unwrap_used)]

mod auth;
mod defects;
mod faults;
mod framework;
mod health;
mod hostile;
mod kitchen;
mod locations;
mod menu;
mod migrations;
mod orders;
mod payments;
mod report;
mod shared_limits;
mod statements;
mod users;
mod writer;
