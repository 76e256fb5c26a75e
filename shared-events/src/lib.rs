//! The wire contract of the Smart Healthcare System, and nothing else: no I/O.
//!
//! Everything that crosses NATS between the gateway and the services is named here:
//!
//! - [`subjects`]: command subjects (`hospital.<service>.<action>`), the event stream and its
//!   subjects (`hospital.events.<aggregate>.<id>.<event>`).
//! - [`headers`]: who asks (actor, role), the request id and the idempotency key, carried as
//!   NATS headers next to each command.
//! - [`commands`]: the request bodies shared by every service (get, list, create, update, delete).
//! - [`error`]: the one typed error that crosses NATS, with the HTTP status it maps to.
//! - [`envelope`]: the event envelope every service publishes to JetStream.
//! - [`patient`], [`staff`], [`appointment`], [`record`]: the state of each aggregate as replies
//!   and events carry it.

pub mod appointment;
pub mod commands;
pub mod envelope;
pub mod error;
pub mod headers;
pub mod patient;
pub mod record;
pub mod staff;
pub mod subjects;

pub use commands::{
    Authenticate, Authenticated, ChangePassword, Create, Delete, GetById, ListQuery, Page, Update,
};
pub use envelope::{Actor, Aggregate, EventEnvelope};
pub use error::{ErrorCode, FieldError, ServiceError};
