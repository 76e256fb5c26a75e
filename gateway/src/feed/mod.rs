//! `GET /api/events/stream`: the live event feed, as Server-Sent Events.
//!
//! The browser reads it with `fetch()` (so the token travels in `Authorization`, never in a
//! URL). Each domain event the caller may read is one SSE message: `id:` its JetStream stream
//! sequence, `event:` the envelope type (`patient.created`), `data:` the envelope JSON on one
//! line. The first message is `event: ready` with `{"last_sequence": N}`, the stream's last
//! sequence at connect time; a keep-alive comment follows every [`KEEP_ALIVE`] of silence.
//!
//! - `?aggregates=patient,appointment` narrows the feed (unknown name: 400).
//! - `Last-Event-ID: <seq>` or `?after=<seq>` resumes after that sequence; without either only
//!   new events are sent.
//! - The response ends cleanly when the token expires or the gateway stops, and before the
//!   next message once the token is revoked.
//! - Opening a feed is recorded in the audit trail.
//!
//! [`params`] reads the request, [`consumer`] runs the JetStream side, [`message`] turns one
//! event into one SSE message, [`access`] decides who may read it.

pub mod access;
pub mod consumer;
pub mod message;
pub mod params;

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio::time::Instant;

use crate::access::{audit, deadline};
use crate::audit::{Access, Origin, Outcome};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::request::RequestId;
use crate::state::AppState;

/// Longest silence on an open feed: a comment line then keeps proxies and the browser from
/// taking the connection for dead.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Longest a feed may stay open, whatever the token says (tokens live at most a day).
const MAX_LIFETIME: Duration = Duration::from_secs(2 * 24 * 3600);

/// Tells nginx-style proxies not to hold the stream back in their buffers.
const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    origin: Origin,
    request_id: RequestId,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = params::parse(query.as_deref(), &headers)?;
    let claims = caller.claims().clone();
    let audited = caller.clone();
    let revocations = state.revocations().clone();
    // The extractor tolerates a few seconds of clock skew; a feed must not outlive `exp`.
    let expires_at = expiry(caller.claims().exp)
        .ok_or_else(|| ApiError::unauthorized("the access token has expired; log in again"))?;
    let closing = state.feeds_closing().clone();
    let feed = consumer::open(state.nats(), &request, caller, expires_at, closing.clone()).await?;
    // One audit entry for the opening: what it then carries is what the caller may read anyway.
    let access = Access {
        caller: &audited,
        origin: &origin,
        request_id: request_id.as_str(),
        resource: "events",
        action: "stream",
        entity_id: None,
        outcome: Outcome::Allowed,
        status: 200,
    };
    audit(&state, &access, &[], true, deadline(&state)).await?;
    let mut events = feed.events;
    let ready = message::ready_message(feed.last_sequence);
    // The pump stops at expiry too; ending here as well keeps queued events from going out late.
    let body = futures::stream::once(async { ready })
        .chain(futures::stream::poll_fn(move |cx| events.poll_recv(cx)))
        .take_until(tokio::time::sleep_until(expires_at))
        .take_until(closing.cancelled_owned())
        // A logout or an account change ends the feed before its next message.
        .take_while(move |_| std::future::ready(revocations.check(&claims).is_ok()))
        .map(Ok::<_, Infallible>);
    let mut response = Sse::new(body)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_ACCEL_BUFFERING, HeaderValue::from_static("no"));
    Ok(response)
}

/// When a token's `exp` (seconds since the epoch) falls, if it is still ahead.
fn expiry(exp: i64) -> Option<Instant> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let left_ms = exp.saturating_mul(1000).saturating_sub(now_ms);
    let left = Duration::from_millis(u64::try_from(left_ms).ok().filter(|&ms| ms > 0)?);
    Some(Instant::now() + left.min(MAX_LIFETIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feed_ends_when_its_token_does() {
        let now = chrono::Utc::now().timestamp();
        assert_eq!(expiry(now - 1), None);
        assert_eq!(expiry(now), None);
        let left = expiry(now + 60).unwrap() - Instant::now();
        assert!(left > Duration::from_secs(58) && left <= Duration::from_secs(60));
        let capped = expiry(i64::MAX).unwrap() - Instant::now();
        assert!(capped <= MAX_LIFETIME);
    }
}
