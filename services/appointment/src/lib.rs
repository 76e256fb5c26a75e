//! The appointment service: owns appointments in its own database, validates them against its
//! own read-model of patients and staff, and publishes every change to `HOSPITAL_EVENTS`.
//!
//! - [`domain`]: reading bookings and changes, the status lifecycle, rescheduling, cancelling
//!   and the double-booking rule. Pure functions; table-driven tests.
//! - [`filters`]: the list's filters (patient, doctor, status, from/to, day).
//! - [`store`]: the SQLite tables; every change and its event (outbox row) in one immediate
//!   transaction, with the double-booking check inside it and an overlap trigger beneath it.
//! - [`read_model`]: the directory of patients and staff fed from their events, cancelling the
//!   future bookings of a deleted patient or doctor.
//! - [`commands`]: the NATS command handlers: decode, check people, decide, store, publish, reply.
//! - [`startup`]: configuration and the [`AppointmentService`] component
//!   (`hospital serve appointment`).

pub mod commands;
pub mod domain;
pub mod filters;
pub mod read_model;
pub mod restore;
pub mod startup;
pub mod store;

pub use startup::{AppointmentService, Config};
