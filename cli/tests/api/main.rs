//! Black-box tests of the whole system: a real nats-server (started per test on a free port),
//! the real services on fresh SQLite databases, the real gateway over HTTP. One test binary,
//! one module per capability; `helpers` holds `spawn_app()`.

mod appointments;
mod audit;
mod auth;
mod backend;
mod contract;
mod discovery;
mod errors;
mod events;
mod events_cli;
mod helpers;
mod http_hardening;
mod idempotency;
mod nats_permissions;
mod outbox;
mod patients;
mod permissions;
mod records;
mod records_history;
mod records_read_model;
mod replay;
mod restore;
mod scale_out;
mod sessions;
mod staff;
mod verify;
