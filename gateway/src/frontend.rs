//! The static browser frontend: the files of `frontend_dir` served as they are (no build
//! step), `/` answering with the login page, anything else not found as a problem.

use std::convert::Infallible;
use std::path::Path;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower::util::ServiceFn;
use tower_http::services::{ServeDir, ServeFile};

use crate::error::ApiError;
use crate::state::AppState;

/// The page `/` shows.
pub const LOGIN_PAGE: &str = "login.html";

/// The futures a [`not_found`] service returns.
type NotFoundFuture = std::future::Ready<Result<Response, Infallible>>;
/// The static files, with the 404 problem for anything missing.
pub type StaticFiles = ServeDir<ServiceFn<fn(Request) -> NotFoundFuture>>;

/// The files of `dir`; `/dashboard` finds `dashboard.html`. Missing files, bad paths and
/// methods other than GET/HEAD answer the 404 problem of any unknown address.
pub fn files(dir: &Path) -> StaticFiles {
    ServeDir::new(dir)
        .html_as_default_extension(true)
        .call_fallback_on_method_not_allowed(true)
        .fallback(tower::service_fn(
            not_found as fn(Request) -> NotFoundFuture,
        ))
}

fn not_found(_request: Request) -> NotFoundFuture {
    std::future::ready(Ok(ApiError::no_such_path().into_response()))
}

/// `GET /`: the login page.
pub async fn login_page(State(state): State<AppState>, request: Request) -> Response {
    let page = state.frontend_dir().join(LOGIN_PAGE);
    match ServeFile::new(page).oneshot(request).await {
        Ok(response) if response.status() != StatusCode::NOT_FOUND => response.map(Body::new),
        _ => ApiError::no_such_path().into_response(),
    }
}
