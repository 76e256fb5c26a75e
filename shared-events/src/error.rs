//! The one error type that crosses NATS. A service answers a failed command with a
//! [`ServiceError`]; the gateway turns its [`ErrorCode`] into an HTTP status.

use serde::{Deserialize, Serialize};

/// What went wrong, in terms a client can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request itself is malformed (not the fields in it).
    BadRequest,
    /// One or more fields are missing or invalid; see [`ServiceError::fields`].
    Validation,
    /// Credentials are missing or wrong.
    Unauthorized,
    /// The caller may not do this.
    Forbidden,
    /// No such entity (or it was deleted).
    NotFound,
    /// The change contradicts the current state (a duplicate username, say).
    Conflict,
    /// `If-Match` named a version that is no longer current.
    PreconditionFailed,
    /// Too many attempts; try later.
    TooManyRequests,
    /// The service failed; the details are in its log, never in the reply.
    Internal,
    /// A dependency of the service is unavailable.
    Unavailable,
}

impl ErrorCode {
    /// The HTTP status the gateway answers with; also the `Nats-Service-Error-Code`.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Validation => 422,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::PreconditionFailed => 412,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
        }
    }
}

/// A problem with one field of the request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// The typed error that crosses NATS: a code, a message safe to show a client, for validation
/// errors every offending field, and for too many attempts how long to wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ServiceError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
    /// For [`ErrorCode::TooManyRequests`]: whole seconds until the next attempt is considered
    /// (the gateway's `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl ServiceError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ServiceError {
            code,
            message: message.into(),
            fields: Vec::new(),
            retry_after_secs: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// A validation failure naming every offending field.
    pub fn validation(fields: Vec<FieldError>) -> Self {
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        let message = format!("invalid fields: {}", names.join(", "));
        ServiceError {
            code: ErrorCode::Validation,
            message,
            fields,
            retry_after_secs: None,
        }
    }

    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError {
            field: field.to_owned(),
            message: message.into(),
        }])
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    pub fn precondition_failed(current_version: i64) -> Self {
        Self::new(
            ErrorCode::PreconditionFailed,
            format!("the entity has changed; its current version is {current_version}"),
        )
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    /// Too many attempts: the next one is considered after `wait`, rounded up to whole seconds
    /// (at least one) so that a client waiting as told is let through.
    pub fn too_many_requests(message: impl Into<String>, wait: std::time::Duration) -> Self {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ServiceError {
            retry_after_secs: Some(seconds.max(1)),
            ..Self::new(ErrorCode::TooManyRequests, message)
        }
    }

    /// An internal failure. The message is deliberately generic: the cause goes to the log.
    pub fn internal() -> Self {
        Self::new(
            ErrorCode::Internal,
            "the service could not complete the request",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_error_names_each_field() {
        let err = ServiceError::validation(vec![
            FieldError {
                field: "name".into(),
                message: "must not be empty".into(),
            },
            FieldError {
                field: "birth_date".into(),
                message: "is in the future".into(),
            },
        ]);
        assert_eq!(err.code.http_status(), 422);
        assert_eq!(err.message, "invalid fields: name, birth_date");
    }

    #[test]
    fn error_round_trips_through_json_without_empty_fields() {
        let err = ServiceError::not_found("patient");
        let json = serde_json::to_string(&err).unwrap();
        assert_eq!(
            json,
            r#"{"code":"not_found","message":"patient not found"}"#
        );
        assert_eq!(serde_json::from_str::<ServiceError>(&json).unwrap(), err);
    }

    #[test]
    fn too_many_requests_carries_its_wait_in_whole_seconds_rounded_up() {
        let err = ServiceError::too_many_requests("wait", std::time::Duration::from_millis(1500));
        assert_eq!(err.code.http_status(), 429);
        assert_eq!(err.retry_after_secs, Some(2));
        let json = serde_json::to_string(&err).unwrap();
        assert_eq!(
            json,
            r#"{"code":"too_many_requests","message":"wait","retry_after_secs":2}"#
        );
        assert_eq!(serde_json::from_str::<ServiceError>(&json).unwrap(), err);
        let now = ServiceError::too_many_requests("wait", std::time::Duration::ZERO);
        assert_eq!(now.retry_after_secs, Some(1));
    }
}
