//! The patient service: owns patients (demographics and the medical record number) in its own
//! database and publishes every change to `HOSPITAL_EVENTS`.
//!
//! - [`domain`]: validation of a patient's details and the pure decisions (update, delete,
//!   version checks, MRN generation). No I/O; table-driven tests.
//! - [`store`]: the SQLite tables; every change and its event (outbox row) in one transaction.
//! - [`commands`]: the NATS command handlers: decode, decide, store, publish, reply.
//! - [`startup`]: configuration and the [`PatientService`] component (`hospital serve patient`).

pub mod commands;
pub mod domain;
pub mod restore;
pub mod startup;
pub mod store;

pub use startup::{Config, PatientService};
