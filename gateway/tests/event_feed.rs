//! The live event feed, `GET /api/events/stream`, over real HTTP in front of a real
//! nats-server: what it sends, in which order, to whom, and when it stops.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use shared_events::staff::StaffRole;
use shared_events::{Aggregate, Authenticated, EventEnvelope};
use support::live::{Http, LiveGateway, SseMessage, envelope};
use support::{SECRET, TestGateway, authorized};

const FEED: &str = "/api/events/stream";

/// Reads the `ready` message a feed starts with; returns its `last_sequence`.
async fn ready(feed: &mut Http) -> u64 {
    let message = feed.next_message().await.expect("a ready message");
    assert_eq!(message.event.as_deref(), Some("ready"), "{message:?}");
    assert_eq!(message.id, None);
    message.data()["last_sequence"].as_u64().unwrap()
}

/// Asserts that `message` is `event`, published at `sequence`.
fn assert_event(message: &SseMessage, sequence: u64, event: &EventEnvelope<Value>) {
    assert_eq!(message.id, Some(sequence.to_string()), "{message:?}");
    assert_eq!(message.event.as_deref(), Some(event.event_type.as_str()));
    assert_eq!(message.data(), serde_json::to_value(event).unwrap());
}

async fn next(feed: &mut Http) -> SseMessage {
    feed.next_message().await.expect("an event, not the end")
}

#[tokio::test]
async fn ready_comes_first_then_each_new_event_in_order() {
    let gateway = LiveGateway::start().await;
    for _ in 0..2 {
        gateway
            .publish(&envelope(Aggregate::Staff, "created"))
            .await;
    }
    let token = gateway.token(StaffRole::Nurse);
    let mut feed = gateway.get(FEED, Some(&token), &[]).await;
    assert_eq!(feed.status, 200);
    assert_eq!(feed.header("content-type"), Some("text/event-stream"));
    assert_eq!(feed.header("cache-control"), Some("no-store"));
    assert_eq!(ready(&mut feed).await, 2, "the stream's last sequence");

    let events = [
        envelope(Aggregate::Patient, "created"),
        envelope(Aggregate::Appointment, "cancelled"),
        envelope(Aggregate::Record, "amended"),
        envelope(Aggregate::Patient, "deleted"),
    ];
    for event in &events {
        gateway.publish(event).await;
    }
    // Only what came after connecting: sequences 3 to 6, in stream order.
    for (sequence, event) in (3..).zip(&events) {
        assert_event(&next(&mut feed).await, sequence, event);
    }
    assert_eq!(gateway.consumer_count().await, 1);
}

#[tokio::test]
async fn aggregates_narrow_the_feed() {
    let gateway = LiveGateway::start().await;
    let token = gateway.token(StaffRole::Doctor);
    let path = format!("{FEED}?aggregates=appointment,record");
    let mut feed = gateway.get(&path, Some(&token), &[]).await;
    assert_eq!(ready(&mut feed).await, 0);

    let mut published = Vec::new();
    for aggregate in [
        Aggregate::Patient,
        Aggregate::Appointment,
        Aggregate::Staff,
        Aggregate::Record,
        Aggregate::Patient,
        Aggregate::Appointment,
    ] {
        let event = envelope(aggregate, "updated");
        published.push((gateway.publish(&event).await, event));
    }
    for index in [1, 3, 5] {
        let (sequence, event) = &published[index];
        assert_event(&next(&mut feed).await, *sequence, event);
    }
}

#[tokio::test]
async fn last_event_id_resumes_right_after_the_given_sequence() {
    let gateway = LiveGateway::start().await;
    let mut events = Vec::new();
    for _ in 0..5 {
        let event = envelope(Aggregate::Patient, "updated");
        gateway.publish(&event).await;
        events.push(event);
    }
    let token = gateway.token(StaffRole::Doctor);

    let mut feed = gateway
        .get(FEED, Some(&token), &[("Last-Event-ID", "2")])
        .await;
    assert_eq!(ready(&mut feed).await, 5);
    for sequence in 3..=5 {
        assert_event(
            &next(&mut feed).await,
            sequence,
            &events[sequence as usize - 1],
        );
    }
    let sixth = envelope(Aggregate::Record, "created");
    assert_eq!(gateway.publish(&sixth).await, 6);
    assert_event(&next(&mut feed).await, 6, &sixth);

    // The query form, and the start of the stream.
    let mut feed = gateway
        .get(&format!("{FEED}?after=4"), Some(&token), &[])
        .await;
    assert_eq!(ready(&mut feed).await, 6);
    assert_event(&next(&mut feed).await, 5, &events[4]);
    assert_event(&next(&mut feed).await, 6, &sixth);
    let mut feed = gateway
        .get(&format!("{FEED}?after=0"), Some(&token), &[])
        .await;
    ready(&mut feed).await;
    assert_event(&next(&mut feed).await, 1, &events[0]);

    // Past the end (the stream was reset): from now on, rather than waiting for sequence 100.
    let mut feed = gateway
        .get(FEED, Some(&token), &[("Last-Event-ID", "99")])
        .await;
    assert_eq!(ready(&mut feed).await, 6);
    let seventh = envelope(Aggregate::Staff, "deleted");
    gateway.publish(&seventh).await;
    assert_event(&next(&mut feed).await, 7, &seventh);
}

#[tokio::test]
async fn what_is_not_a_well_formed_envelope_is_skipped() {
    let gateway = LiveGateway::start().await;
    let token = gateway.token(StaffRole::Doctor);
    let mut feed = gateway.get(FEED, Some(&token), &[]).await;
    ready(&mut feed).await;

    let good = envelope(Aggregate::Patient, "created");
    let subject = good.subject();
    gateway.publish_raw(&subject, b"not json".to_vec()).await;
    gateway
        .publish_raw(&subject, b"{\"type\":\"x\"}".to_vec())
        .await;
    let elsewhere = subject.replace("created", "deleted");
    let payload = serde_json::to_vec(&good).unwrap();
    gateway.publish_raw(&elsewhere, payload).await;
    // Pretty-printed: valid, but its line breaks must not split the data field.
    let pretty = serde_json::to_vec_pretty(&good).unwrap();
    let sequence = gateway.publish_raw(&subject, pretty).await;
    assert_eq!(sequence, 4);
    assert_event(&next(&mut feed).await, sequence, &good);
}

#[tokio::test]
async fn the_feed_closes_cleanly_when_the_token_expires() {
    let gateway = LiveGateway::start().await;
    let short = gateway::auth::Tokens::new(SECRET.as_bytes(), Duration::from_secs(2));
    let who = Authenticated {
        staff_id: support::ADMIN_ID,
        name: "Short Session".into(),
        role: StaffRole::Receptionist,
    };
    let token = short.issue(&who).unwrap().access_token;
    let started = Instant::now();
    let mut feed = gateway.get(FEED, Some(&token), &[]).await;
    ready(&mut feed).await;
    let event = envelope(Aggregate::Patient, "created");
    gateway.publish(&event).await;
    assert_event(&next(&mut feed).await, 1, &event);

    assert_eq!(feed.next_message().await, None, "a clean end of the body");
    let lasted = started.elapsed();
    assert!(
        lasted >= Duration::from_secs(1) && lasted < Duration::from_secs(4),
        "{lasted:?}"
    );
    gateway.await_consumers(0).await;
    // And the same token cannot open another.
    let again = gateway.get(FEED, Some(&token), &[]).await;
    assert_eq!(again.status, 401);
}

#[tokio::test]
async fn a_client_that_goes_away_leaves_no_consumer_behind() {
    let gateway = LiveGateway::start().await;
    let token = gateway.token(StaffRole::Doctor);
    let mut first = gateway.get(FEED, Some(&token), &[]).await;
    ready(&mut first).await;
    let mut second = gateway
        .get(&format!("{FEED}?aggregates=patient"), Some(&token), &[])
        .await;
    ready(&mut second).await;
    assert_eq!(gateway.consumer_count().await, 2, "one consumer per client");

    drop(first);
    gateway.await_consumers(1).await;
    // The other feed is unaffected.
    let event = envelope(Aggregate::Patient, "updated");
    gateway.publish(&event).await;
    assert_event(&next(&mut second).await, 1, &event);
    drop(second);
    gateway.await_consumers(0).await;
}

#[tokio::test]
async fn stopping_the_gateway_ends_open_feeds() {
    let gateway = LiveGateway::start().await;
    let token = gateway.token(StaffRole::Doctor);
    let mut feed = gateway.get(FEED, Some(&token), &[]).await;
    ready(&mut feed).await;
    let stopping = tokio::spawn(gateway.stop());
    assert_eq!(feed.next_message().await, None);
    assert_eq!(stopping.await.unwrap(), Ok(()));
}

#[tokio::test]
async fn no_feed_opens_without_a_token_or_with_bad_parameters() {
    let gateway = LiveGateway::start().await;
    let anonymous = gateway.get(FEED, None, &[]).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        anonymous.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(anonymous.json().await["status"], 401);
    assert_eq!(gateway.get(FEED, Some("junk"), &[]).await.status, 401);

    let token = gateway.token(StaffRole::Doctor);
    let bad_queries = [
        "aggregates=bogus",
        "aggregates=",
        "aggregates=patient,,record",
        "after=x",
        "after=-1",
        "after=1&after=2",
        "aggregate=patient",
    ];
    for query in bad_queries {
        let reply = gateway
            .get(&format!("{FEED}?{query}"), Some(&token), &[])
            .await;
        assert_eq!(reply.status, 400, "{query}");
        let problem = reply.json().await;
        assert_eq!(problem["status"], 400, "{query}");
        assert!(problem["detail"].as_str().unwrap().len() > 10, "{problem}");
    }
    for id in ["abc", "-3", "1.0", ""] {
        let reply = gateway
            .get(FEED, Some(&token), &[("Last-Event-ID", id)])
            .await;
        assert_eq!(reply.status, 400, "{id:?}");
    }
    let disagreeing = gateway
        .get(
            &format!("{FEED}?after=1"),
            Some(&token),
            &[("Last-Event-ID", "2")],
        )
        .await;
    assert_eq!(disagreeing.status, 400);
    assert_eq!(gateway.consumer_count().await, 0);
}

#[tokio::test]
async fn without_nats_or_without_the_stream_the_feed_is_503() {
    // Connected, but no one has provisioned HOSPITAL_EVENTS.
    let bare = TestGateway::without_services().await;
    let token = bare.token(StaffRole::Doctor);
    let reply = bare.send(authorized("GET", FEED, &token, None)).await;
    reply.problem(503);

    let mut gateway = LiveGateway::start().await;
    gateway.nats.stop().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while gateway.state.nats().connection_state() == async_nats::connection::State::Connected {
        assert!(Instant::now() < deadline, "the gateway never noticed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let token = gateway.token(StaffRole::Doctor);
    let started = Instant::now();
    let reply = gateway.get(FEED, Some(&token), &[]).await;
    assert_eq!(reply.status, 503);
    assert!(started.elapsed() < Duration::from_secs(1), "at once");
    let problem = reply.json().await;
    assert!(problem["detail"].as_str().unwrap().contains("unavailable"));
}

#[tokio::test]
async fn a_client_too_slow_to_read_is_dropped_not_buffered_for() {
    let gateway = LiveGateway::start().await;
    let token = gateway.token(StaffRole::Doctor);
    let bearer = format!("Bearer {token}");
    let headers = [("Authorization", bearer.as_str())];
    let mut feed = Http::get_through_narrow_window(gateway.addr, FEED, &headers).await;
    ready(&mut feed).await;
    // Far more than the socket buffers, hyper's buffer and the feed's queue hold together.
    const EVENTS: usize = 150;
    let mut big = envelope(Aggregate::Record, "amended");
    big.data = serde_json::json!({"notes": "x".repeat(100 * 1024)});
    for _ in 0..EVENTS {
        gateway.publish(&big).await;
    }
    // Not reading: the feed gives up on us and its consumer goes.
    gateway
        .await_consumers_within(0, Duration::from_secs(20))
        .await;
    // What was already queued still arrives, then a clean end: never all of it.
    let mut received = 0;
    while feed.next_message().await.is_some() {
        received += 1;
    }
    assert!(received < EVENTS, "{received} of {EVENTS}");
}
