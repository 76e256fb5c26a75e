//! The record service: owns medical records (notes, diagnoses, vitals, prescriptions, allergies)
//! in its own database, keeps every version of each, and publishes every change to
//! `HOSPITAL_EVENTS`. It validates patients, authors and appointments against its own
//! read-model of their events, never by calling another service.
//!
//! - [`diagnoses`], [`vitals`]: ICD-10 codes and vital-sign ranges. No I/O; table-driven tests.
//! - [`details`]: a record's request body, validated, every bad field named.
//! - [`domain`]: the pure decisions: writing, amending, entering in error, who may write,
//!   which references are acceptable.
//! - [`timeline`]: list filters and the newest-first keyset page of a patient's timeline.
//! - [`read_model`]: the consumer of patient, staff and appointment events and the appointment
//!   look-up that waits for it to catch up.
//! - [`store`]: the SQLite tables; every change, its version and its event (outbox row) in one
//!   transaction.
//! - [`commands`]: the NATS command handlers: decode, check, decide, store, publish, reply.
//! - [`startup`]: configuration and the [`RecordService`] component (`hospital serve record`).

pub mod commands;
pub mod details;
pub mod diagnoses;
pub mod domain;
pub mod read_model;
pub mod restore;
pub mod startup;
pub mod store;
pub mod timeline;
pub mod vitals;

pub use startup::{Config, RecordService};
