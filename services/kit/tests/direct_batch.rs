//! Reading `HOSPITAL_EVENTS` with batched direct gets against a real nats-server, as the
//! appointment service's user (`hospital replay`) and as the operator (`hospital restore`).

use kit::direct_batch::{DirectReader, MAX_BATCH};
use kit::nats_server::TestNatsServer;
use shared_events::subjects::EVENT_STREAM;
use uuid::Uuid;

mod support;
use support::{Owners, patient_event, publish};

/// Publishes `count` patient events (patient `n` named `P<n>`); returns their sequences.
async fn publish_patients(owners: &Owners, count: usize) -> Vec<u64> {
    let mut sequences = Vec::with_capacity(count);
    for n in 0..count {
        let event = patient_event(Uuid::now_v7(), 1, &format!("P{n}"), false);
        sequences.push(publish(owners, &event).await);
    }
    sequences
}

/// Every message the reader hands out: (sequence, subject, the payload's patient name).
async fn read_all(reader: &mut DirectReader) -> Vec<(u64, String, String)> {
    let mut read = Vec::new();
    while let Some(stored) = reader.next().await.expect("a direct get answer") {
        let event: shared_events::EventEnvelope =
            serde_json::from_slice(&stored.payload).expect("an event");
        let name = event.data["name"].as_str().unwrap_or_default().to_owned();
        read.push((stored.sequence, stored.subject.to_string(), name));
    }
    read
}

#[tokio::test]
async fn reads_every_event_in_order_across_batches_and_stops_at_until() {
    let server = TestNatsServer::start().await;
    kit::event_stream::provision(&server.connect_as("patient").await, 1).await;
    let owners = Owners::connect(&server).await;
    // More than two batches, so the reader asks again after each end-of-batch marker.
    let count = 2 * MAX_BATCH + 37;
    let sequences = publish_patients(&owners, count).await;

    for user in ["appointment", "operator"] {
        let client = server.connect_as(user).await;
        let last = *sequences.last().unwrap();
        let mut reader = DirectReader::open(&client, EVENT_STREAM, 1, last)
            .await
            .unwrap();
        let read = read_all(&mut reader).await;
        assert_eq!(read.len(), count, "{user} reads every event once");
        for (n, ((sequence, subject, name), expected)) in read.iter().zip(&sequences).enumerate() {
            assert_eq!(sequence, expected, "in stream order");
            assert!(subject.starts_with("hospital.events.patient."), "{subject}");
            assert_eq!(name, &format!("P{n}"));
        }

        // From the middle, up to a sequence before the end: exactly that range.
        let (from, until) = (sequences[10], sequences[MAX_BATCH + 5]);
        let mut reader = DirectReader::open(&client, EVENT_STREAM, from, until)
            .await
            .unwrap();
        let read: Vec<u64> = read_all(&mut reader)
            .await
            .into_iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(read, sequences[10..=MAX_BATCH + 5].to_vec());
    }
}

#[tokio::test]
async fn an_empty_stream_or_a_start_past_its_end_reads_nothing() {
    let server = TestNatsServer::start().await;
    kit::event_stream::provision(&server.connect_as("patient").await, 1).await;
    let owners = Owners::connect(&server).await;
    let client = server.connect_as("appointment").await;
    let mut reader = DirectReader::open(&client, EVENT_STREAM, 1, u64::MAX)
        .await
        .unwrap();
    assert!(read_all(&mut reader).await.is_empty());

    let sequences = publish_patients(&owners, 3).await;
    let mut reader = DirectReader::open(&client, EVENT_STREAM, sequences[2] + 1, u64::MAX)
        .await
        .unwrap();
    assert!(read_all(&mut reader).await.is_empty());
    // Without an upper bound it reads to the end of the stream and stops.
    let mut reader = DirectReader::open(&client, EVENT_STREAM, 1, u64::MAX)
        .await
        .unwrap();
    assert_eq!(read_all(&mut reader).await.len(), 3);
}
