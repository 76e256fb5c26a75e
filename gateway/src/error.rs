//! The one error type of the gateway. Every failure a client sees, whether it comes from a bad
//! request, a missing token, a service's typed error or an unreachable service, is an
//! [`ApiError`] rendered as `application/problem+json` (RFC 9457). Internal causes go to the
//! log; clients get clean text.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shared_events::{FieldError, ServiceError};

use crate::request;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// What a client is told when something failed on our side.
const INTERNAL_DETAIL: &str = "the request could not be completed; it has been logged";

/// An HTTP error answer: a status, a detail safe to show, and for validation errors every
/// offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {detail}")]
pub struct ApiError {
    status: StatusCode,
    detail: String,
    fields: Vec<FieldError>,
    /// Seconds to wait before trying again (`Retry-After`), for 429.
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
            fields: Vec::new(),
            retry_after: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    pub fn fields(&self) -> &[FieldError] {
        &self.fields
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 422 naming every bad field, like the services' own validation errors.
    pub fn validation(fields: Vec<FieldError>) -> Self {
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        let detail = format!("invalid fields: {}", names.join(", "));
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail,
            fields,
            retry_after: None,
        }
    }

    /// 401; the response carries `WWW-Authenticate: Bearer`.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    /// 403: logged in, but the role may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    /// `patient not found`, `staff member not found`, ...
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }

    /// No route and no file at this path.
    pub fn no_such_path() -> Self {
        Self::new(StatusCode::NOT_FOUND, "there is nothing at this address")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "this method is not allowed here; the Allow header lists the ones that are",
        )
    }

    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED, detail)
    }

    pub fn payload_too_large(limit_bytes: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {} KiB", limit_bytes / 1024),
        )
    }

    /// 408: the client took too long to send its body.
    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "the request body was not received in time",
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the request body must be sent with Content-Type: application/json",
        )
    }

    pub fn service_unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
    }

    pub fn gateway_timeout(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, detail)
    }

    /// A service answered something we cannot read: its fault, not the client's.
    pub fn bad_gateway(service: &str, cause: impl std::fmt::Display) -> Self {
        tracing::error!(service, %cause, "unreadable reply from a service");
        Self::new(
            StatusCode::BAD_GATEWAY,
            format!("the {service} service sent an unexpected reply"),
        )
    }

    /// A failure in the gateway itself: logged in full, shown generically.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_DETAIL)
    }

    /// A service's typed error. Client errors keep the service's message (safe by contract),
    /// fields and wait (`Retry-After` of a 429); server errors get a generic detail, since their
    /// text is not for clients.
    pub fn from_service(service: &str, error: ServiceError) -> Self {
        let status = StatusCode::from_u16(error.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(service, code = ?error.code, message = %error.message, "service failed");
            let detail = if status == StatusCode::SERVICE_UNAVAILABLE {
                format!("the {service} service is unavailable; try again shortly")
            } else {
                INTERNAL_DETAIL.to_owned()
            };
            return Self::new(status, detail);
        }
        ApiError {
            status,
            detail: error.message,
            fields: error.fields,
            retry_after: error.retry_after_secs,
        }
    }
}

/// The problem document (RFC 9457) plus the request id, so a user can quote it to support.
/// Its schema is the one `/api/openapi.json` gives every error.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    /// Always `about:blank`: the status and title say it all.
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    /// What went wrong, safe to show.
    detail: &'a str,
    /// Also in the `X-Request-Id` header and in the logs of every component involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    /// For 422: every invalid field.
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    #[schema(required = false)]
    errors: &'a [FieldError],
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            // `about:blank`: the status and title say it all; `detail` says what to fix.
            kind: "about:blank",
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.detail,
            request_id: request::current_id(),
            errors: &self.fields,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
            body,
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_events::ErrorCode;

    async fn body_of(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn service_codes_map_to_their_http_status() {
        let cases = [
            (ErrorCode::BadRequest, 400),
            (ErrorCode::Validation, 422),
            (ErrorCode::Unauthorized, 401),
            (ErrorCode::Forbidden, 403),
            (ErrorCode::NotFound, 404),
            (ErrorCode::Conflict, 409),
            (ErrorCode::PreconditionFailed, 412),
            (ErrorCode::TooManyRequests, 429),
            (ErrorCode::Internal, 500),
            (ErrorCode::Unavailable, 503),
        ];
        for (code, status) in cases {
            let error = ApiError::from_service("patient", ServiceError::new(code, "x"));
            assert_eq!(error.status().as_u16(), status, "{code:?}");
        }
    }

    #[test]
    fn internal_service_text_never_reaches_the_client() {
        let leaky = ServiceError::new(ErrorCode::Internal, "disk I/O error at /var/lib/x.db");
        let error = ApiError::from_service("patient", leaky);
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!error.detail().contains("/var/lib"));
    }

    #[test]
    fn an_internal_error_shows_only_the_generic_detail() {
        let error = ApiError::internal("pool timed out at /var/lib/hospital/gateway.sock");
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.detail(), INTERNAL_DETAIL);
        assert!(error.fields().is_empty());
    }

    #[test]
    fn validation_fields_are_kept() {
        let error = ApiError::from_service(
            "patient",
            ServiceError::invalid_field("birth_date", "is in the future"),
        );
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error.fields()[0].field, "birth_date");
    }

    #[tokio::test]
    async fn a_problem_is_problem_json_with_type_title_status_and_detail() {
        let response = ApiError::from_service(
            "patient",
            ServiceError::invalid_field("name", "is required"),
        )
        .into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let body = body_of(response).await;
        assert_eq!(body["type"], "about:blank");
        assert_eq!(body["title"], "Unprocessable Entity");
        assert_eq!(body["status"], 422);
        assert_eq!(body["detail"], "invalid fields: name");
        assert_eq!(body["errors"][0]["field"], "name");
        assert_eq!(body["errors"][0]["message"], "is required");
    }

    #[tokio::test]
    async fn too_many_requests_from_a_service_is_a_429_with_its_retry_after() {
        let refused = ServiceError::too_many_requests(
            "too many failed logins; try again in 2 minutes",
            std::time::Duration::from_secs(90),
        );
        let response = ApiError::from_service("staff", refused).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "90");
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let body = body_of(response).await;
        assert_eq!(body["status"], 429);
        assert_eq!(
            body["detail"],
            "too many failed logins; try again in 2 minutes"
        );
    }

    #[tokio::test]
    async fn unauthorized_asks_for_a_bearer_token() {
        let response = ApiError::unauthorized("missing token").into_response();
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let body = body_of(response).await;
        assert!(body.get("errors").is_none());
    }
}
