//! What the read-model tests share: events as the owning services publish them, and publishing
//! them as those services (each NATS user may publish only its own aggregate's events).

// Each test file that includes this module uses a part of it.
#![allow(dead_code)]

use async_nats::HeaderMap;
use async_nats::jetstream;
use chrono::Utc;
use kit::nats_server::TestNatsServer;
use serde_json::json;
use shared_events::{Actor, Aggregate, EventEnvelope};
use uuid::Uuid;

pub fn patient_event(id: Uuid, version: i64, name: &str, deleted: bool) -> EventEnvelope {
    let now = Utc::now();
    EventEnvelope {
        event_id: Uuid::now_v7(),
        event_type: format!(
            "patient.{}",
            if deleted {
                "deleted"
            } else if version == 1 {
                "created"
            } else {
                "updated"
            }
        ),
        aggregate: Aggregate::Patient,
        aggregate_id: id,
        aggregate_version: version,
        occurred_at: now,
        actor: Actor::system(),
        correlation_id: None,
        data: json!({"id": id, "mrn": "0000000000", "name": name, "birth_date": "1990-01-01", "sex": "unknown",
                     "phone": null, "email": null, "address": null, "version": version,
                     "created_at": now, "updated_at": now, "deleted_at": if deleted { Some(now) } else { None }}),
    }
}

/// JetStream as each owning service: only it may publish its aggregate's events.
pub struct Owners(Vec<(Aggregate, jetstream::Context)>);

impl Owners {
    pub async fn connect(server: &TestNatsServer) -> Self {
        let mut owners = Vec::new();
        for aggregate in [Aggregate::Patient, Aggregate::Staff, Aggregate::Appointment] {
            let client = server.connect_as(aggregate.as_str()).await;
            owners.push((aggregate, jetstream::new(client)));
        }
        Owners(owners)
    }
}

/// Publishes `event` as its owner, with a fresh message id (so the same event can be published
/// again, as a redelivery would bring it). Returns its stream sequence.
pub async fn publish(owners: &Owners, event: &EventEnvelope) -> u64 {
    let payload = serde_json::to_vec(event).unwrap();
    publish_payload(owners, event.aggregate, &event.subject(), payload).await
}

/// Publishes any payload on `subject` as `aggregate`'s owner (a poison message, say).
pub async fn publish_payload(
    owners: &Owners,
    aggregate: Aggregate,
    subject: &str,
    payload: Vec<u8>,
) -> u64 {
    let (_, js) = owners
        .0
        .iter()
        .find(|(owner, _)| *owner == aggregate)
        .expect("a publisher for the event's aggregate");
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", Uuid::now_v7().to_string().as_str());
    js.publish_with_headers(subject.to_owned(), headers, payload.into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence
}
