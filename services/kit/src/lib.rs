//! The machinery every service shares, written once:
//!
//! - [`config`]: reading configuration from the environment (and `.env`), failing fast with the
//!   variable's name, printing it with secrets masked.
//! - [`nats`]: the NATS connection every component uses (reconnect forever, 10 s pings, explicit
//!   request timeout, start before NATS and wait for it).
//! - [`event_stream`]: the one idempotent place that provisions the `HOSPITAL_EVENTS` stream.
//! - [`outbox`]: the transactional outbox: append an event in the same transaction as the change,
//!   publish it after the commit, and a relay that publishes whatever is left (at start and on a timer).
//! - [`batch_publish`]: many callers' JetStream messages grouped into atomic batches (a few
//!   fsyncs per batch instead of one per message), each caller answered with its own outcome.
//! - [`command`]: runs a service's command handlers on the NATS service API (discoverable with
//!   `nats micro ls`), one task per request, typed errors in the reply headers.
//! - [`idempotency`]: safe retries: the `Idempotency-Key` of a write, stored with the change in
//!   the owning service's database, replays the original reply.
//! - [`read_model`]: read-models fed by a durable JetStream consumer, applied idempotently with
//!   the consumer position in the same transaction, and the bounded wait for catching up.
//! - [`direct_batch`]: reading a stream in order with batched direct gets (rebuilds, restores).
//! - [`directory`]: the read-model of patients and staff that other services validate against.
//! - [`fields`]: collecting every invalid field of a request body, not just the first.
//! - [`database`]: a service's own database on either backend, chosen by its URL.
//! - [`sqlite`]: opening a service's SQLite database (WAL, busy timeout, one writer instance)
//!   and running its migrations.
//! - [`postgres`]: opening a PostgreSQL database, its refusals, the advisory locks that let one
//!   of several instances lead.
//! - [`postgres_test`]: a fresh PostgreSQL database per test, on the server `scripts/test` provides.
//! - [`service`]: an owning service's settings and foundation, and the one way it runs.
//! - [`versions`]: the `If-Match` check every owning service applies.
//! - [`runtime`]: logging set-up and the shutdown signal.
//! - [`nats_server`]: finding, checking and starting a `nats-server` (for `hospital up` and tests).
//! - [`nats_users`]: the NATS users of `nats.conf` (one per component) and their generated passwords.

pub mod batch_publish;
pub mod command;
pub mod config;
pub mod database;
pub mod direct_batch;
pub mod directory;
pub mod event_stream;
pub mod events;
pub mod fields;
pub mod group_commit;
pub mod handle;
pub mod idempotency;
pub mod listing;
pub mod nats;
pub mod nats_server;
pub mod nats_users;
pub mod outbox;
pub mod postgres;
pub mod postgres_test;
pub mod read_model;
pub mod runtime;
pub mod service;
pub mod sqlite;
pub mod versions;

pub use command::{CommandHandler, RequestContext, serve_commands};
pub use outbox::{EventPublisher, OutboxRelay};
pub use runtime::{BoxError, Component};
pub use service::{ServiceBase, ServiceConfig};
