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

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Router, middleware};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::RequestBodyDeadlineLayer;

use crate::config::HttpSettings;
use crate::error::ApiError;
use crate::extract::BODY_LIMIT_BYTES;
use crate::state::AppState;
use crate::{audit, auth, feed, frontend, hardening, openapi, request, security_headers};

/// The whole HTTP application. Separate from start-up so tests can drive it with
/// `tower::ServiceExt::oneshot`.
pub fn app(state: AppState) -> Router {
    let settings = state.http().clone();
    protect(routes(&state), &settings).with_state(state)
}

fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/auth/login", post(auth::login::login))
        .route("/auth/logout", post(auth::session::logout))
        .route("/auth/password", post(auth::session::change_password))
        .merge(resources::router())
        .route("/api/audit", get(audit::query::audit_trail))
        .route(hardening::EVENT_STREAM_PATH, get(feed::stream))
        .route(openapi::DOCUMENT_PATH, get(openapi::serve_document))
        .route(openapi::docs::PAGE_PATH, get(openapi::docs::page))
        .route("/api/docs/{file}", get(openapi::docs::asset))
        .route("/", get(frontend::login_page))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback_service(frontend::files(state.frontend_dir()))
}

/// The layers around every route, from the outside in: the request id and log line
/// ([`request::track`]), the security headers (so every answer has them, errors included),
/// preflights from origins not on the allowlist refused, CORS for those on it, the request time
/// limit, panics as a 500, the body time limit and the body size limit. Public so a test can
/// wrap a route of its own (one that panics) in exactly these.
pub fn protect<S>(router: Router<S>, settings: &HttpSettings) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let mut router = router
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(RequestBodyDeadlineLayer::new(settings.body_timeout))
        .layer(CatchPanicLayer::custom(hardening::panic_response))
        .layer(middleware::from_fn_with_state(
            settings.request_timeout,
            hardening::time_limit,
        ));
    if let Some(cors) = hardening::cors(settings) {
        router = router.layer(cors);
    }
    router
        .layer(middleware::from_fn_with_state(
            Arc::new(settings.clone()),
            hardening::refuse_unlisted_preflight,
        ))
        .layer(middleware::from_fn(security_headers::apply))
        .layer(middleware::from_fn(request::track))
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}
