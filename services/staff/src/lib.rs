//! The staff service: owns staff members and their login accounts in its own database and
//! publishes every change to `HOSPITAL_EVENTS`. The gateway asks it to check logins; a password
//! hash never leaves this service.
//!
//! - [`domain`]: validation of a staff member's details and login, and the pure decisions.
//! - [`passwords`]: argon2id hashing and verification, off the async workers.
//! - [`login_limits`]: failed logins counted per username and client address in the database,
//!   so every gateway instance shares one limit.
//! - [`store`]: the staff tables on SQLite or PostgreSQL; every change and its event in one
//!   transaction.
//! - [`commands`]: the NATS command handlers, including `authenticate`.
//! - [`bootstrap`]: the first administrator account.
//! - [`startup`]: configuration and the [`StaffService`] component (`hospital serve staff`).

pub mod bootstrap;
pub mod commands;
pub mod domain;
pub mod login_limits;
pub mod passwords;
pub mod restore;
pub mod startup;
pub mod store;

pub use startup::{Config, StaffService};
