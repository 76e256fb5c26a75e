//! One JetStream message as one SSE message: `id` the stream sequence, `event` the envelope's
//! type, `data` the envelope JSON on one line. Anything that is not a well-formed envelope on
//! its own subject is refused here, so garbage never reaches a browser (and nothing from a
//! payload can break the SSE framing: every field written is checked or re-encoded).

use axum::response::sse::Event;
use serde_json::{Value, json};
use shared_events::subjects::EVENTS_PREFIX;
use shared_events::{Aggregate, EventEnvelope};

use super::access::aggregate_named;

/// Why a message in the stream is not forwarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    #[error("the subject is not hospital.events.<aggregate>.<id>.<verb>")]
    Subject,
    #[error("the payload is not an event envelope: {0}")]
    Envelope(String),
    #[error("the envelope names another subject or type than the one it was published on")]
    Mismatch,
}

/// The aggregate of an event subject (`hospital.events.<aggregate>.<id>.<verb>`).
pub fn aggregate_of(subject: &str) -> Result<Aggregate, Unreadable> {
    let rest = subject
        .strip_prefix(EVENTS_PREFIX)
        .and_then(|rest| rest.strip_prefix('.'))
        .ok_or(Unreadable::Subject)?;
    let mut tokens = rest.split('.');
    let aggregate = tokens.next().and_then(aggregate_named);
    match (aggregate, tokens.next(), tokens.next(), tokens.next()) {
        (Some(aggregate), Some(_id), Some(_verb), None) => Ok(aggregate),
        _ => Err(Unreadable::Subject),
    }
}

/// The SSE message of the event at `sequence`, published on `subject` with `payload`.
pub fn event_message(subject: &str, sequence: u64, payload: &[u8]) -> Result<Event, Unreadable> {
    let envelope: EventEnvelope<Value> =
        serde_json::from_slice(payload).map_err(|e| Unreadable::Envelope(e.to_string()))?;
    // The type becomes the `event:` line: it must be exactly `<aggregate>.<verb>` of the subject
    // (subject tokens cannot hold line breaks), never free text from the payload.
    let expected_type = format!("{}.{}", envelope.aggregate.as_str(), envelope.verb());
    if envelope.subject() != subject || envelope.event_type != expected_type {
        return Err(Unreadable::Mismatch);
    }
    Ok(Event::default()
        .id(sequence.to_string())
        .event(&envelope.event_type)
        .data(one_line(payload)))
}

/// The envelope JSON as published when it is on one line already (it is, from our services);
/// otherwise re-encoded compactly, since a line break would split the SSE `data` field.
fn one_line(payload: &[u8]) -> String {
    if !payload.iter().any(|&b| b == b'\n' || b == b'\r')
        && let Ok(text) = std::str::from_utf8(payload)
    {
        return text.to_owned();
    }
    // Already parsed once as an envelope, so this cannot fail; `Null` is only a fallback.
    serde_json::from_slice::<Value>(payload)
        .unwrap_or(Value::Null)
        .to_string()
}

/// The first message of every feed: it is live, and the stream's last sequence at connect time.
pub fn ready_message(last_sequence: u64) -> Event {
    Event::default()
        .event("ready")
        .data(json!({ "last_sequence": last_sequence }).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;
    use axum::response::sse::Sse;
    use chrono::Utc;
    use shared_events::Actor;
    use std::convert::Infallible;
    use uuid::Uuid;

    /// The bytes an event puts on the wire.
    async fn wire(event: Event) -> String {
        let once = futures::stream::once(async { Ok::<_, Infallible>(event) });
        let body = Sse::new(once).into_response().into_body();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn envelope(event_type: &str) -> EventEnvelope<Value> {
        EventEnvelope {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            aggregate: Aggregate::Patient,
            aggregate_id: Uuid::now_v7(),
            aggregate_version: 1,
            occurred_at: Utc::now(),
            actor: Actor::system(),
            correlation_id: Some("r-1".into()),
            data: json!({"name": "Ada\nLovelace"}),
        }
    }

    #[test]
    fn the_aggregate_is_read_from_an_event_subject() {
        let id = Uuid::nil();
        assert_eq!(
            aggregate_of(&format!("hospital.events.record.{id}.amended")),
            Ok(Aggregate::Record)
        );
        for bad in [
            "hospital.events.patients.x.created",
            "hospital.events.patient.x",
            "hospital.events.patient.x.created.more",
            "hospital.patient.create",
            "hospital.eventsX.patient.x.created",
        ] {
            assert_eq!(aggregate_of(bad), Err(Unreadable::Subject), "{bad}");
        }
    }

    #[tokio::test]
    async fn an_event_is_id_event_and_one_data_line() {
        let event = envelope("patient.created");
        let payload = serde_json::to_vec(&event).unwrap();
        let message = event_message(&event.subject(), 42, &payload).unwrap();
        let text = wire(message).await;
        let expected = format!(
            "id: 42\nevent: patient.created\ndata: {}\n\n",
            String::from_utf8(payload).unwrap()
        );
        assert_eq!(text, expected);
    }

    #[tokio::test]
    async fn a_pretty_printed_envelope_is_sent_on_one_line() {
        let event = envelope("patient.updated");
        let pretty = serde_json::to_vec_pretty(&event).unwrap();
        let text = wire(event_message(&event.subject(), 7, &pretty).unwrap()).await;
        let data: Vec<&str> = text.lines().filter(|l| l.starts_with("data:")).collect();
        assert_eq!(data.len(), 1, "{text}");
        let sent: Value = serde_json::from_str(&data[0]["data: ".len()..]).unwrap();
        assert_eq!(sent, serde_json::to_value(&event).unwrap());
    }

    #[test]
    fn garbage_and_mismatched_envelopes_are_refused() {
        let event = envelope("patient.created");
        let subject = event.subject();
        for junk in [
            &b"not json"[..],
            b"{}",
            b"[1,2]",
            b"{\"type\":\"patient.created\"}",
        ] {
            assert!(
                matches!(
                    event_message(&subject, 1, junk),
                    Err(Unreadable::Envelope(_))
                ),
                "{junk:?}"
            );
        }
        let payload = serde_json::to_vec(&event).unwrap();
        let other_subject = subject.replace("created", "deleted");
        assert!(matches!(
            event_message(&other_subject, 1, &payload),
            Err(Unreadable::Mismatch)
        ));
        // A type with a line break would forge SSE fields; its prefix is checked too.
        let forged = envelope("x\ndata: evil\n\nevent: patient.created");
        let payload = serde_json::to_vec(&forged).unwrap();
        assert!(matches!(
            event_message(&forged.subject(), 1, &payload),
            Err(Unreadable::Mismatch)
        ));
    }

    #[tokio::test]
    async fn ready_carries_the_last_sequence() {
        assert_eq!(
            wire(ready_message(12)).await,
            "event: ready\ndata: {\"last_sequence\":12}\n\n"
        );
    }
}
