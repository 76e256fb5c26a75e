//! The gateway: the only HTTP entry of the Smart Healthcare System.
//!
//! It authenticates (`POST /auth/login` issues a JWT), turns each `/api` call into a NATS
//! request to the service that owns the resource, maps the reply (or the typed error) back to
//! HTTP, streams live events to the browser, and serves the frontend. It keeps no state but its
//! NATS connection and the consumers of the live feeds open at the moment.
//!
//! A request's path through the crate:
//!
//! - [`request`]: the middleware around everything: request id, one log line.
//! - [`security_headers`]: the content security policies and the other security headers.
//! - [`hardening`]: CORS from an allowlist, the request and body time limits, panics as 500.
//! - [`routes`]: the router ([`app`]); [`routes::resources`] writes the CRUD routes of every
//!   resource once, [`routes::nested`] the routes below an item (a patient's appointments, a
//!   record's history); [`routes::paging`] reads list queries and filters; [`routes::health`]
//!   has `/health` and `/ready`.
//! - [`auth`]: tokens ([`auth::jwt`]), login and its limits, logout and password change,
//!   revoked tokens, the [`auth::Caller`] extractor that makes a route require a token, and the
//!   permission matrix ([`auth::permissions`]).
//! - [`access`]: every `/api` command's path: the permission check, the command, the audit.
//! - [`audit`]: the audit trail in `HOSPITAL_AUDIT`, and `GET /api/audit`.
//! - [`extract`]: the JSON-object body, the path id, `If-Match`.
//! - [`nats_call`]: the command headers, the request, the reply or error.
//! - [`feed`]: `GET /api/events/stream`, the live event feed (Server-Sent Events) from the
//!   JetStream stream, filtered by aggregate and by what the caller's role may read.
//! - [`error`]: [`ApiError`], the one error type, rendered as `application/problem+json`.
//! - [`frontend`]: the static files of `frontend/`.
//! - [`config`] and [`startup`]: settings from the environment; [`Gateway`] builds and runs
//!   the whole as a [`kit::runtime::Component`].

pub mod access;
pub mod audit;
pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod feed;
pub mod frontend;
pub mod hardening;
pub mod nats_call;
pub mod openapi;
pub mod request;
pub mod routes;
pub mod security_headers;
pub mod startup;
pub mod state;

pub use config::Config;
pub use error::ApiError;
pub use routes::app;
pub use startup::Gateway;
pub use state::AppState;
