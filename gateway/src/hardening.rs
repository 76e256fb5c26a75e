//! The layers that bound and protect every request: CORS from an allowlist only, a time limit
//! for the request and for its body, and a panic answered as a plain 500. Each failure is a
//! problem+json like any other error, without internal detail.

use std::any::Any;
use std::error::Error as StdError;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::HttpSettings;
use crate::error::ApiError;

/// The live feed: a response that lasts as long as the token, so no request time limit.
pub const EVENT_STREAM_PATH: &str = "/api/events/stream";

/// How long a browser may reuse a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The CORS layer for the allowlisted origins, or `None` when the list is empty (CORS off: no
/// `Access-Control-Allow-*` header is ever sent). Tokens travel in `Authorization`, never in
/// cookies, so credentials are not allowed.
pub fn cors(settings: &HttpSettings) -> Option<CorsLayer> {
    if settings.cors_origins.is_empty() {
        return None;
    }
    // Validated at start-up (`config::parse_origins`), so each is a valid header value.
    let origins = settings
        .cors_origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok());
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                header::ACCEPT,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("last-event-id"),
                crate::request::X_REQUEST_ID,
            ])
            .expose_headers([
                header::ETAG,
                header::LOCATION,
                header::LINK,
                header::RETRY_AFTER,
                crate::request::X_REQUEST_ID,
            ])
            .max_age(PREFLIGHT_MAX_AGE),
    )
}

/// Refuses a CORS preflight from an origin not on the allowlist with a 403 (and every preflight
/// when CORS is off), instead of an answer a browser would merely ignore. Same-origin calls never
/// send one, so the frontend is not affected.
pub async fn refuse_unlisted_preflight(
    State(settings): State<std::sync::Arc<HttpSettings>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let is_preflight = request.method() == Method::OPTIONS
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if is_preflight {
        let origin = headers
            .get(header::ORIGIN)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        if !settings
            .cors_origins
            .iter()
            .any(|allowed| allowed == origin)
        {
            return ApiError::forbidden("cross-origin requests from this origin are not allowed")
                .into_response();
        }
    }
    next.run(request).await
}

/// Stops a request that is still unanswered after the configured limit with a 503 (the live
/// feed excepted). The NATS request timeout normally answers first (504); this bounds
/// everything else: a slow client, a stuck handler.
pub async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    if request.uri().path() == EVENT_STREAM_PATH {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(%method, path, limit_secs = limit.as_secs_f64(), "request time limit reached");
            ApiError::service_unavailable(format!(
                "the request took longer than {} and was stopped; try again",
                describe(limit)
            ))
            .into_response()
        }
    }
}

/// The answer to a panic in a handler: logged with its message, answered as a generic 500.
pub fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    ApiError::internal(format_args!("a request handler panicked: {message}")).into_response()
}

/// Whether reading a body failed because the body deadline passed (then 408, not 400).
pub fn is_body_timeout(error: &(dyn StdError + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// `30 s`, `1.5 s`: for messages.
fn describe(limit: Duration) -> String {
    let secs = limit.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{secs:.0} s")
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use tower::ServiceExt;

    #[test]
    fn cors_is_off_without_an_allowlist() {
        assert!(cors(&HttpSettings::default()).is_none());
        let settings = HttpSettings {
            cors_origins: vec!["https://clinic.example.org".into()],
            ..HttpSettings::default()
        };
        assert!(cors(&settings).is_some());
    }

    #[test]
    fn limits_read_as_seconds() {
        assert_eq!(describe(Duration::from_secs(30)), "30 s");
        assert_eq!(describe(Duration::from_millis(1500)), "1.5 s");
    }

    #[test]
    fn a_panic_is_a_generic_500_that_keeps_its_message_out() {
        let response = panic_response(Box::new("secret: /var/lib/hospital/x.db"));
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let response = panic_response(Box::new(String::from("owned message")));
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let response = panic_response(Box::new(42_u8));
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn the_live_feed_is_exempt_from_the_time_limit() {
        // Far longer than the limit: only the exemption lets it finish.
        let slow = || async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            "done"
        };
        let stuck = || async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            "never"
        };
        let router = Router::new()
            .route("/slow", get(stuck))
            .route(EVENT_STREAM_PATH, get(slow))
            .layer(axum::middleware::from_fn_with_state(
                Duration::from_millis(20),
                time_limit,
            ));
        let call = |path: &'static str| {
            router
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
        };
        assert_eq!(
            call("/slow").await.unwrap().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            call(EVENT_STREAM_PATH).await.unwrap().status(),
            StatusCode::OK
        );
    }
}
