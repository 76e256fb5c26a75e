//! The event envelope. Every change a service makes is published once to JetStream in this
//! shape, carrying the aggregate's full state after the change so that no consumer ever has to
//! call back to learn what changed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The aggregate types; each is owned by exactly one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    Patient,
    Staff,
    Appointment,
    Record,
}

impl Aggregate {
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregate::Patient => "patient",
            Aggregate::Staff => "staff",
            Aggregate::Appointment => "appointment",
            Aggregate::Record => "record",
        }
    }
}

/// Who caused a change: a logged-in staff member, or the system itself (bootstrap, cascades).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Actor {
    /// The staff member's id, or `system`.
    pub id: String,
    /// Their role at the time (`admin`, `doctor`, ...), or `system`.
    pub role: String,
}

impl Actor {
    pub fn system() -> Self {
        Actor {
            id: "system".into(),
            role: "system".into(),
        }
    }
}

/// One published event. `event_id` (UUID v7) is also the JetStream `Nats-Msg-Id`, so a
/// re-publish after a crash is dropped by the stream's duplicate window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope<T = Value> {
    pub event_id: Uuid,
    /// `<aggregate>.<event>`, for example `patient.created`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub aggregate: Aggregate,
    pub aggregate_id: Uuid,
    /// The aggregate's version after this change; consumers apply an event only when it is newer
    /// than what they hold, so no one relies on stream order within an aggregate.
    pub aggregate_version: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor: Actor,
    /// The request id of the command that caused the change.
    pub correlation_id: Option<String>,
    /// The aggregate's full state after the change.
    pub data: T,
}

impl<T> EventEnvelope<T> {
    /// The past-tense verb, the last token of the subject (`created`, `updated`, `deleted`).
    pub fn verb(&self) -> &str {
        self.event_type.rsplit('.').next().unwrap_or_default()
    }

    /// `hospital.events.<aggregate>.<id>.<verb>`
    pub fn subject(&self) -> String {
        crate::subjects::event(self.aggregate, self.aggregate_id, self.verb())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_is_derived_from_type_and_aggregate() {
        let event = EventEnvelope {
            event_id: Uuid::nil(),
            event_type: "patient.deleted".into(),
            aggregate: Aggregate::Patient,
            aggregate_id: Uuid::nil(),
            aggregate_version: 3,
            occurred_at: Utc::now(),
            actor: Actor::system(),
            correlation_id: None,
            data: Value::Null,
        };
        assert_eq!(event.verb(), "deleted");
        assert_eq!(
            event.subject(),
            "hospital.events.patient.00000000-0000-0000-0000-000000000000.deleted"
        );
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "patient.deleted");
        assert_eq!(json["aggregate"], "patient");
    }
}
