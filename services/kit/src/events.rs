//! Building events and the small conversions every owning service's storage needs.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use shared_events::{Aggregate, EventEnvelope, ServiceError};
use uuid::Uuid;

use crate::command::RequestContext;

/// A new event for `aggregate_id` at `version`: `<aggregate>.<verb>`, with a fresh UUID v7 id
/// (made here, inside the caller's transaction, so the outbox row and the published message
/// carry the same `Nats-Msg-Id`).
pub fn new_event<T: Serialize>(
    aggregate: Aggregate,
    aggregate_id: Uuid,
    version: i64,
    verb: &str,
    context: &RequestContext,
    occurred_at: DateTime<Utc>,
    data: T,
) -> EventEnvelope<T> {
    EventEnvelope {
        event_id: Uuid::now_v7(),
        event_type: format!("{}.{verb}", aggregate.as_str()),
        aggregate,
        aggregate_id,
        aggregate_version: version,
        occurred_at,
        actor: context.actor.clone(),
        correlation_id: context.request_id.clone(),
        data,
    }
}

/// Timestamps are stored as RFC 3339 text in UTC with microseconds: sortable and portable.
pub fn format_timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc))
}

/// Now, truncated to what [`format_timestamp`] keeps, so a value read back equals the one written.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    parse_timestamp(&format_timestamp(now)).unwrap_or(now)
}

/// Logs a storage failure and turns it into the generic internal error a client may see.
pub fn storage_failure(error: impl std::fmt::Display) -> ServiceError {
    let error = error.to_string();
    if error.contains(crate::idempotency::KEY_TAKEN) {
        // Not a failure: the command runner answers with the other request's reply.
        tracing::info!(%error, "write rolled back");
    } else {
        tracing::error!(%error, "storage failure");
    }
    ServiceError::internal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_exactly() {
        let at = now();
        assert_eq!(parse_timestamp(&format_timestamp(at)).unwrap(), at);
        assert!(format_timestamp(at).ends_with('Z'));
    }

    #[test]
    fn events_carry_actor_and_correlation() {
        let mut context = RequestContext::system();
        context.request_id = Some("req-1".into());
        let event = new_event(
            Aggregate::Staff,
            Uuid::nil(),
            2,
            "updated",
            &context,
            now(),
            (),
        );
        assert_eq!(event.event_type, "staff.updated");
        assert_eq!(event.actor.id, "system");
        assert_eq!(event.correlation_id.as_deref(), Some("req-1"));
        assert_eq!(event.event_id.get_version_num(), 7);
    }
}
