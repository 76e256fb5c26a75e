//! Turning an HTTP call into a NATS request and its reply back into a result.
//!
//! Every command carries who asks in headers ([`shared_events::headers`]): the caller's id and
//! role from the verified token, the request id, and the client's `Idempotency-Key`. A reply is
//! either the JSON data or a typed [`ServiceError`](shared_events::ServiceError); a missing
//! service is a 503 at once, a slow one a 504 after the request timeout. Never a hang. While
//! NATS is unreachable every command is a 503 at once, including one already in flight when the
//! connection dropped (its reply could no longer arrive).

use async_nats::client::RequestErrorKind;
use async_nats::connection::State;
use async_nats::{HeaderMap, RequestError};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared_events::headers;
use std::time::Duration;

use crate::audit::Origin;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::request::RequestId;
use crate::state::AppState;

/// The HTTP header a client sets to make a write safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Longest idempotency key passed on.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// Everything an `/api` command carries besides its body: who asks (a verified token is
/// required), under which request id, with which idempotency key.
#[derive(Debug, Clone)]
pub struct CommandContext {
    pub caller: Caller,
    pub request_id: RequestId,
    pub idempotency_key: Option<String>,
    /// Method, path and client address, for the audit trail.
    pub origin: Origin,
}

impl FromRequestParts<AppState> for CommandContext {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // The token first: an anonymous caller learns nothing else about the request.
        let caller = Caller::from_request_parts(parts, state).await?;
        let Ok(request_id) = RequestId::from_request_parts(parts, state).await;
        let idempotency_key = idempotency_key(parts)?;
        let Ok(origin) = Origin::from_request_parts(parts, state).await;
        Ok(CommandContext {
            caller,
            request_id,
            idempotency_key,
            origin,
        })
    }
}

fn idempotency_key(parts: &Parts) -> Result<Option<String>, ApiError> {
    let Some(value) = parts.headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY_LEN)
        .filter(|k| k.bytes().all(|b| b.is_ascii_graphic()));
    match key {
        Some(key) => Ok(Some(key.to_owned())),
        None => Err(ApiError::bad_request(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} printable characters without spaces"
        ))),
    }
}

impl CommandContext {
    /// The NATS headers of a command sent on behalf of this caller.
    pub fn headers(&self) -> HeaderMap {
        let claims = self.caller.claims();
        let mut map = command_headers(&self.request_id);
        map.insert(headers::ACTOR_ID, claims.sub.to_string().as_str());
        map.insert(headers::ACTOR_ROLE, claims.role.as_str());
        if let Some(key) = &self.idempotency_key {
            map.insert(headers::IDEMPOTENCY_KEY, key.as_str());
        }
        map
    }
}

/// The headers of a command with no logged-in caller yet (login): the request id only.
pub fn command_headers(request_id: &RequestId) -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert(headers::REQUEST_ID, request_id.as_str());
    map
}

/// Sends `body` as JSON to `hospital.<service>.<action>` and returns the reply's payload, or
/// the error the client should see.
pub async fn send_command<T: Serialize>(
    nats: &async_nats::Client,
    service: &str,
    action: &str,
    headers: HeaderMap,
    body: &T,
) -> Result<Bytes, ApiError> {
    // While NATS is down a request would only wait out its timeout: answer at once instead.
    if nats.connection_state() != State::Connected {
        return Err(bus_unavailable());
    }
    let payload = serde_json::to_vec(body).map_err(ApiError::internal)?;
    let subject = shared_events::subjects::command(service, action);
    let request = async_nats::Request::new()
        .headers(headers)
        .payload(payload.into());
    let reply = tokio::select! {
        reply = nats.send_request(subject, request) => {
            reply.map_err(|error| request_failed(service, action, &error))?
        }
        // The reply of a request in flight when the link drops is lost with it: answer 503 now
        // rather than let the client wait out the request timeout for a 504.
        () = connection_lost(nats) => {
            tracing::warn!(service, action, "NATS connection lost while the request was in flight");
            return Err(bus_unavailable());
        }
    };
    match kit::command::error_from_reply(&reply) {
        Some(error) => {
            tracing::debug!(service, action, code = ?error.code, "service refused a command");
            Err(ApiError::from_service(service, error))
        }
        None => Ok(reply.payload),
    }
}

/// How often a request in flight looks at the connection state.
const LINK_CHECK_INTERVAL: Duration = Duration::from_millis(25);

/// Resolves once the client's connection is no longer up.
///
/// async-nats keeps its connection state in a watch channel it does not expose, and its
/// connection events reach us through a bounded channel that drops events when full; so a
/// request in flight polls `connection_state()` instead: one cheap read every 25 ms, only while
/// a request waits (most are answered before the first look), and it cannot miss a loss or get
/// stuck on a lost event.
pub async fn connection_lost(nats: &async_nats::Client) {
    loop {
        tokio::time::sleep(LINK_CHECK_INTERVAL).await;
        if nats.connection_state() != State::Connected {
            return;
        }
    }
}

/// The answer while the gateway has no NATS connection.
fn bus_unavailable() -> ApiError {
    ApiError::service_unavailable("the hospital's message bus is unavailable; try again shortly")
}

/// The client's view of a request that got no reply.
fn request_failed(service: &str, action: &str, error: &RequestError) -> ApiError {
    match error.kind() {
        RequestErrorKind::NoResponders => {
            tracing::warn!(service, action, "no instance of the service is running");
            ApiError::service_unavailable(format!(
                "the {service} service is unavailable; try again shortly"
            ))
        }
        RequestErrorKind::TimedOut => {
            tracing::warn!(service, action, "the service did not answer in time");
            ApiError::gateway_timeout(format!("the {service} service did not answer in time"))
        }
        _ => {
            tracing::error!(service, action, %error, "NATS request failed");
            ApiError::service_unavailable(format!(
                "the {service} service could not be reached; try again shortly"
            ))
        }
    }
}

/// Reads a service's reply; one we cannot read is the service's fault (502), not the client's.
pub fn decode_reply<T: DeserializeOwned>(service: &str, payload: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(payload).map_err(|error| ApiError::bad_gateway(service, error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn request_failures_map_to_503_or_504() {
        let status = |kind| request_failed("patient", "get", &RequestError::new(kind)).status();
        assert_eq!(
            status(RequestErrorKind::NoResponders),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(RequestErrorKind::TimedOut),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            status(RequestErrorKind::Other),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn an_unreadable_reply_is_a_bad_gateway() {
        let error = decode_reply::<serde_json::Value>("patient", b"not json").unwrap_err();
        assert_eq!(error.status(), StatusCode::BAD_GATEWAY);
    }

    fn parts_with(key: &str) -> Parts {
        axum::http::Request::builder()
            .header(IDEMPOTENCY_KEY, key)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn idempotency_keys_are_passed_on_or_refused() {
        assert_eq!(
            idempotency_key(&parts_with("k-1")).unwrap().as_deref(),
            Some("k-1")
        );
        assert!(idempotency_key(&parts_with("two words")).is_err());
        assert!(idempotency_key(&parts_with(&"k".repeat(256))).is_err());
    }
}
