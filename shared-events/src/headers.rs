//! NATS header names that travel with every command. The gateway sets them from the verified
//! token and the HTTP request; services record the actor and request id in the events they publish.

/// Id of the acting user (a staff member's UUID), or `system`.
pub const ACTOR_ID: &str = "Hospital-Actor-Id";
/// Role of the acting user (`admin`, `doctor`, `nurse`, `receptionist`, or `system`).
pub const ACTOR_ROLE: &str = "Hospital-Actor-Role";
/// Request id for tracing; becomes the events' correlation id.
pub const REQUEST_ID: &str = "Hospital-Request-Id";
/// The client's `Idempotency-Key`, passed through unchanged.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// On an error reply: the [`crate::ServiceError`] as compact JSON. The service API's own
/// `Nats-Service-Error` / `Nats-Service-Error-Code` headers carry the message and status too, so
/// `nats micro stats` counts the error.
pub const ERROR: &str = "Hospital-Error";
/// JetStream's de-duplication header; always the event id.
pub const MSG_ID: &str = "Nats-Msg-Id";
