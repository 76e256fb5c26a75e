//! NATS subject names. Commands are request/reply on `hospital.<service>.<action>`; events live in
//! the JetStream stream [`EVENT_STREAM`] on `hospital.events.<aggregate>.<aggregate-id>.<event>`.

use crate::envelope::Aggregate;
use uuid::Uuid;

/// The JetStream stream that holds every domain event.
pub const EVENT_STREAM: &str = "HOSPITAL_EVENTS";
/// Prefix of every event subject; `hospital.events.>` is the whole stream.
pub const EVENTS_PREFIX: &str = "hospital.events";
/// Every event subject, as the stream is configured.
pub const ALL_EVENTS: &str = "hospital.events.>";

/// The JetStream stream of the audit trail: who read or changed what, kept apart from the
/// domain events and never editable through the API.
pub const AUDIT_STREAM: &str = "HOSPITAL_AUDIT";
/// Prefix of every audit subject: `hospital.audit.<patient-id | none>.<actor-id | anonymous>`.
pub const AUDIT_PREFIX: &str = "hospital.audit";
/// Every audit subject, as the audit stream is configured.
pub const ALL_AUDIT: &str = "hospital.audit.>";
/// The JetStream key-value bucket of revoked access tokens (key: the token's `jti`), shared by
/// every gateway instance.
pub const REVOKED_TOKENS_BUCKET: &str = "hospital_revoked_tokens";

/// Names of the services as they appear in NATS service discovery and in command subjects.
pub mod service {
    pub const PATIENT: &str = "patient";
    pub const STAFF: &str = "staff";
    pub const APPOINTMENT: &str = "appointment";
    pub const RECORD: &str = "record";
}

/// Actions every aggregate-owning service answers.
pub mod action {
    pub const CREATE: &str = "create";
    pub const GET: &str = "get";
    pub const LIST: &str = "list";
    pub const UPDATE: &str = "update";
    pub const DELETE: &str = "delete";
    /// Staff service only: check a username and password.
    pub const AUTHENTICATE: &str = "authenticate";
    /// Staff service only: change one's own password (body: [`crate::ChangePassword`]).
    pub const CHANGE_PASSWORD: &str = "change_password";
    /// Record service only: every version of a record (body: [`crate::GetById`]).
    pub const HISTORY: &str = "history";
}

/// `hospital.<service>.<action>`, the subject a command is sent to.
pub fn command(service: &str, action: &str) -> String {
    format!("hospital.{service}.{action}")
}

/// `hospital.events.<aggregate>.<id>.<event>`, the subject an event is published on.
pub fn event(aggregate: Aggregate, aggregate_id: Uuid, event: &str) -> String {
    format!(
        "{EVENTS_PREFIX}.{}.{aggregate_id}.{event}",
        aggregate.as_str()
    )
}

/// `hospital.events.<aggregate>.>`: every event of one aggregate type.
pub fn events_of(aggregate: Aggregate) -> String {
    format!("{EVENTS_PREFIX}.{}.>", aggregate.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_subjects_follow_service_dot_action() {
        assert_eq!(
            command(service::PATIENT, action::CREATE),
            "hospital.patient.create"
        );
    }

    #[test]
    fn event_subjects_put_aggregate_id_before_the_verb() {
        let id = Uuid::nil();
        assert_eq!(
            event(Aggregate::Patient, id, "created"),
            "hospital.events.patient.00000000-0000-0000-0000-000000000000.created"
        );
        assert_eq!(events_of(Aggregate::Staff), "hospital.events.staff.>");
    }
}
