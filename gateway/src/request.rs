//! Per-request plumbing around every route: the request id (taken from `X-Request-Id` or made
//! here, echoed in the response, carried to the services in NATS headers) and the one log line
//! per request. The security headers are [`crate::security_headers`]'.

use std::convert::Infallible;
use std::fmt;
use std::time::Instant;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use uuid::Uuid;

/// The header a client (or a proxy in front of us) may send to name its request.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-chosen request id we keep; longer ones are replaced by our own.
const MAX_CLIENT_ID_LEN: usize = 128;

tokio::task_local! {
    /// The id of the request being served, so an error rendered anywhere below the middleware
    /// can quote it without every caller passing it along.
    static CURRENT: RequestId;
}

/// The id that follows one request through the gateway, the services and their events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// A fresh id (UUID v7: sortable by time in the logs).
    pub fn generate() -> Self {
        RequestId(Uuid::now_v7().to_string())
    }

    /// The client's id when it is short, printable ASCII without spaces (it goes into headers
    /// and logs); otherwise a fresh one.
    pub fn from_client(value: Option<&HeaderValue>) -> Self {
        value
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= MAX_CLIENT_ID_LEN)
            .filter(|v| v.bytes().all(|b| b.is_ascii_graphic()))
            .map(|v| RequestId(v.to_owned()))
            .unwrap_or_else(Self::generate)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of the request being served, when called under [`track`].
pub fn current_id() -> Option<String> {
    CURRENT.try_with(|id| id.0.clone()).ok()
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(RequestId::generate))
    }
}

/// The middleware around the whole router: assigns the request id, serves the request with it
/// in scope, echoes it in the response and logs one line.
pub async fn track(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = RequestId::from_client(request.headers().get(X_REQUEST_ID));
    request.extensions_mut().insert(id.clone());
    let method = request.method().clone();
    // The path only: a query may hold a patient's name.
    let path = request.uri().path().to_owned();

    let mut response = CURRENT.scope(id.clone(), next.run(request)).await;

    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(
        request_id = %id,
        %method,
        path,
        status,
        latency_ms = format_args!("{latency_ms:.2}"),
        "http request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reasonable_client_id_is_kept() {
        let value = HeaderValue::from_static("abc-123_x.y");
        assert_eq!(RequestId::from_client(Some(&value)).as_str(), "abc-123_x.y");
    }

    #[test]
    fn a_missing_or_unreasonable_client_id_is_replaced() {
        let long = HeaderValue::from_str(&"x".repeat(MAX_CLIENT_ID_LEN + 1)).unwrap();
        let spaced = HeaderValue::from_static("two words");
        for value in [None, Some(&long), Some(&spaced)] {
            let id = RequestId::from_client(value);
            assert!(Uuid::parse_str(id.as_str()).is_ok(), "{id}");
        }
    }

    #[tokio::test]
    async fn the_current_id_is_known_only_inside_the_scope() {
        assert_eq!(current_id(), None);
        let inside = CURRENT
            .scope(RequestId("r1".into()), async { current_id() })
            .await;
        assert_eq!(inside.as_deref(), Some("r1"));
    }
}
