//! Reading the parts of a request the routes share, each failure a clear problem: the JSON
//! object body, the entity id in the path, and the `If-Match` version.

use std::convert::Infallible;

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use bytes::Bytes;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::ApiError;

/// The largest request body accepted. Every body we take is a small JSON document; anything
/// bigger is a mistake or an attack, and NATS would refuse it past 1 MB anyway.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// A request body that is a JSON object, checked in order: content type (415), size (413),
/// arrival within the body time limit (408), JSON syntax (400), object shape (400).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(ApiError::unsupported_media_type());
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(body_rejection)?;
        parse_object(&bytes).map(JsonObject)
    }
}

/// `application/json`, with or without parameters, or any `application/*+json`.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(text) = value.to_str() else {
        return false;
    };
    let essence = text.split(';').next().unwrap_or_default().trim();
    let essence = essence.to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::payload_too_large(BODY_LIMIT_BYTES)
    } else if crate::hardening::is_body_timeout(&rejection) {
        ApiError::request_timeout()
    } else {
        tracing::debug!(%rejection, "could not read a request body");
        ApiError::bad_request("the request body could not be read")
    }
}

/// Parses a body that must be a JSON object.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request("request body must be a JSON object")),
        Err(error) => Err(ApiError::bad_request(format!(
            "request body is not valid JSON (line {}, column {})",
            error.line(),
            error.column()
        ))),
    }
}

/// The raw `{id}` path segment. Never rejects: a segment that cannot be read becomes empty,
/// which [`entity_id`] then answers as "not found" like any other bad id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(raw)| raw)
            .unwrap_or_default();
        Ok(PathId(raw))
    }
}

/// The entity id of a path: no entity has an id that is not a UUID, so anything else is
/// simply not found (answered without asking a service).
pub fn entity_id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| ApiError::not_found(what))
}

/// The version `If-Match` demands: `"5"`, `W/"5"` or `5` mean version 5; `*` or no header
/// mean any version. Anything else cannot match any version, so it is a 412 at once.
pub fn expected_version(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    parse_if_match(value)
}

fn parse_if_match(value: &HeaderValue) -> Result<Option<i64>, ApiError> {
    let refuse = || {
        ApiError::precondition_failed(
            "If-Match must be the entity's ETag (a version such as \"5\") or *",
        )
    };
    let text = value.to_str().map_err(|_| refuse())?.trim();
    if text == "*" {
        return Ok(None);
    }
    let tag = text.strip_prefix("W/").unwrap_or(text);
    let digits = match tag.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"').ok_or_else(refuse)?,
        None => tag,
    };
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse());
    }
    digits.parse().map(Some).map_err(|_| refuse())
}

/// The `ETag` of an entity reply: its `version` field, quoted.
pub fn etag_of(entity: &Value) -> Option<HeaderValue> {
    let version = entity.get("version")?.as_i64()?;
    HeaderValue::from_str(&format!("\"{version}\"")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn if_match(text: &str) -> Result<Option<i64>, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_MATCH, HeaderValue::from_str(text).unwrap());
        expected_version(&headers)
    }

    #[test]
    fn if_match_accepts_strong_weak_and_bare_versions() {
        assert_eq!(if_match("\"5\"").unwrap(), Some(5));
        assert_eq!(if_match("W/\"5\"").unwrap(), Some(5));
        assert_eq!(if_match("5").unwrap(), Some(5));
        assert_eq!(if_match(" \"12\" ").unwrap(), Some(12));
    }

    #[test]
    fn if_match_star_or_absent_means_any_version() {
        assert_eq!(if_match("*").unwrap(), None);
        assert_eq!(expected_version(&HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn an_unparsable_if_match_is_a_precondition_failure() {
        for bad in [
            "",
            "\"\"",
            "abc",
            "\"5",
            "5\"",
            "-1",
            "+5",
            "\"1\", \"2\"",
            "W/5x",
            "1.5",
            "99999999999999999999",
        ] {
            let error = if_match(bad).unwrap_err();
            assert_eq!(error.status(), StatusCode::PRECONDITION_FAILED, "{bad:?}");
        }
    }

    #[test]
    fn a_body_must_be_a_json_object() {
        assert!(parse_object(br#"{"name": "Ada"}"#).is_ok());
        for bad in [&b"[1, 2]"[..], b"\"text\"", b"42", b"null"] {
            let error = parse_object(bad).unwrap_err();
            assert_eq!(error.detail(), "request body must be a JSON object");
        }
        let error = parse_object(b"{\"name\": ").unwrap_err();
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        assert!(error.detail().starts_with("request body is not valid JSON"));
    }

    #[test]
    fn json_content_types_are_recognised() {
        let check = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
            is_json(&headers)
        };
        assert!(check("application/json"));
        assert!(check("Application/JSON; charset=utf-8"));
        assert!(check("application/merge-patch+json"));
        assert!(!check("text/plain"));
        assert!(!check("application/x-www-form-urlencoded"));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn a_non_uuid_id_is_not_found() {
        let error = entity_id("42", "patient").unwrap_err();
        assert_eq!(error.status(), StatusCode::NOT_FOUND);
        assert_eq!(error.detail(), "patient not found");
        assert!(entity_id("0190f6a4-7c1e-7b3a-9c4d-2e5f6a7b8c9d", "patient").is_ok());
    }

    #[test]
    fn the_etag_is_the_quoted_version() {
        assert_eq!(etag_of(&json!({"version": 3})).unwrap(), "\"3\"");
        assert_eq!(etag_of(&json!({"name": "x"})), None);
    }
}
