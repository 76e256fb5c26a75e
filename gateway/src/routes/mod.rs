//! The router: every route of the gateway, and what answers when none matches.
//!
//! - [`resources`]: the `/api/<resource>` CRUD routes, written once for every service.
//! - [`nested`]: the routes below an item (`/api/patients/{id}/appointments`, a record's
//!   history), each a command to the service that owns the answer.
//! - [`paging`]: list queries and the `Link` header of the next page.
//! - [`health`]: `/health` and `/ready`.
//!
//! `/api/openapi.json` and the `/api/docs` page are in [`crate::openapi`].
//! `/auth/login` lives in [`crate::auth::login`], `/auth/logout` and `/auth/password` in
//! [`crate::auth::session`], `/api/audit` in [`crate::audit::query`], the live event feed `/api/events/stream` in
//! [`crate::feed`], the static files in [`crate::frontend`].

pub mod health;
pub mod nested;
pub mod paging;
pub mod resources;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Router, middleware};

use crate::error::ApiError;
use crate::extract::BODY_LIMIT_BYTES;
use crate::state::AppState;
use crate::{audit, auth, feed, frontend, openapi, request};

/// The whole HTTP application. Separate from start-up so tests can drive it with
/// `tower::ServiceExt::oneshot`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/auth/login", post(auth::login::login))
        .route("/auth/logout", post(auth::session::logout))
        .route("/auth/password", post(auth::session::change_password))
        .merge(resources::router())
        .route("/api/audit", get(audit::query::audit_trail))
        .route("/api/events/stream", get(feed::stream))
        .route(openapi::DOCUMENT_PATH, get(openapi::serve_document))
        .route(openapi::docs::PAGE_PATH, get(openapi::docs::page))
        .route("/api/docs/{file}", get(openapi::docs::asset))
        .route("/", get(frontend::login_page))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback_service(frontend::files(state.frontend_dir()))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(middleware::from_fn(request::track))
        .with_state(state)
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}
