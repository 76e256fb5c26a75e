//! The batch publisher against a real nats-server (2.12+ for atomic batches): callers share
//! batches, each gets its own outcome, and the stream's de-duplication still holds.

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream;
use bytes::Bytes;
use kit::batch_publish::{BatchPublisher, Outgoing, PublishError};
use kit::nats_server::TestNatsServer;
use shared_events::headers::MSG_ID;
use shared_events::subjects::EVENT_STREAM;

/// A patient event; `msg_id` sets `Nats-Msg-Id` (the outbox always does).
fn event(n: usize, msg_id: Option<&str>) -> Outgoing {
    let mut headers = HeaderMap::new();
    if let Some(id) = msg_id {
        headers.insert(MSG_ID, id);
    }
    Outgoing {
        subject: format!("hospital.events.patient.p{}.created", n % 7),
        headers,
        payload: Bytes::from(format!("{{\"n\":{n}}}")),
    }
}

/// The stream provisioned as the patient service does it, and a publisher over it.
async fn publisher(server: &TestNatsServer, atomic: bool) -> (jetstream::Context, BatchPublisher) {
    let client = server.connect_as("patient").await;
    let js = kit::event_stream::provision(&client, 1).await;
    let publisher = BatchPublisher::start(client, js.clone(), atomic);
    (js, publisher)
}

async fn stored(js: &jetstream::Context) -> u64 {
    let mut stream = js.get_stream(EVENT_STREAM).await.unwrap();
    stream.info().await.unwrap().state.messages
}

#[tokio::test]
async fn provisioned_stream_allows_atomic_batches() {
    let server = TestNatsServer::start().await;
    let (js, _) = publisher(&server, true).await;
    let mut stream = js.get_stream(EVENT_STREAM).await.unwrap();
    assert!(kit::event_stream::atomic_enabled(
        stream.info().await.unwrap()
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_single_messages_share_batches_and_all_land() {
    let server = TestNatsServer::start().await;
    let (js, publisher) = publisher(&server, true).await;
    let calls = (0..500).map(|n| {
        let publisher = publisher.clone();
        tokio::spawn(async move {
            let id = format!("single-{n}");
            publisher.publish(vec![event(n, Some(&id))]).await
        })
    });
    for (n, result) in futures::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        result.unwrap().unwrap_or_else(|e| panic!("call {n}: {e}"));
    }
    assert_eq!(stored(&js).await, 500);
    let rounds = publisher.batches_published() + publisher.plain_rounds();
    eprintln!(
        "500 messages: {} atomic batches, {} plain rounds, {} refused",
        publisher.batches_published(),
        publisher.plain_rounds(),
        publisher.batches_refused()
    );
    assert!(publisher.batches_published() >= 1);
    assert!(rounds < 500, "{rounds} rounds for 500 messages");
    assert_eq!(publisher.batches_refused(), 0);
}

#[tokio::test]
async fn a_call_with_several_messages_lands_them_all_in_one_batch() {
    let server = TestNatsServer::start().await;
    let (js, publisher) = publisher(&server, true).await;
    let messages = (0..10)
        .map(|n| event(n, Some(&format!("several-{n}"))))
        .collect();
    publisher.publish(messages).await.unwrap();
    assert_eq!(stored(&js).await, 10);
    assert_eq!(publisher.batches_published(), 1);
}

#[tokio::test]
async fn a_call_over_the_batch_limit_is_split_and_lands_whole() {
    let server = TestNatsServer::start().await;
    let (js, publisher) = publisher(&server, true).await;
    let messages = (0..1500).map(|n| event(n, None)).collect();
    publisher.publish(messages).await.unwrap();
    assert_eq!(stored(&js).await, 1500);
    assert_eq!(publisher.batches_published(), 2);
}

#[tokio::test]
async fn a_message_already_in_the_stream_is_a_success_and_the_others_land() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let server = TestNatsServer::start().await;
    let (js, publisher) = publisher(&server, true).await;
    publisher
        .publish(vec![event(0, Some("republished"))])
        .await
        .unwrap();
    assert_eq!(stored(&js).await, 1);

    // The outbox republishes a row whose acknowledgement was lost, with new rows around it.
    let messages = vec![
        event(1, Some("fresh-1")),
        event(2, Some("fresh-2")),
        event(0, Some("republished")),
        event(3, Some("fresh-3")),
        event(4, Some("fresh-4")),
    ];
    publisher.publish(messages).await.unwrap();
    eprintln!(
        "batch with an already-stored id: {} atomic batches, {} refused",
        publisher.batches_published(),
        publisher.batches_refused()
    );
    assert_eq!(stored(&js).await, 5);
}

#[tokio::test]
async fn the_same_id_twice_in_one_batch_fails_no_caller() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let server = TestNatsServer::start().await;
    let (js, publisher) = publisher(&server, true).await;
    // Two relays racing on the same row, among others' messages, in one call so one batch.
    let messages = vec![
        event(1, Some("twice")),
        event(2, Some("other-2")),
        event(3, Some("other-3")),
        event(1, Some("twice")),
        event(4, Some("other-4")),
    ];
    publisher.publish(messages).await.unwrap();
    assert_eq!(stored(&js).await, 4);
    assert_eq!(publisher.batches_refused(), 1);
    assert_eq!(publisher.batches_published(), 0);
}

#[tokio::test]
async fn without_atomic_batches_every_message_is_published_alone() {
    let server = TestNatsServer::start().await;
    let (js, publisher) = publisher(&server, false).await;
    let calls = (0..100).map(|n| {
        let publisher = publisher.clone();
        tokio::spawn(async move { publisher.publish(vec![event(n, None)]).await })
    });
    for result in futures::future::join_all(calls).await {
        result.unwrap().unwrap();
    }
    let messages = (0..10).map(|n| event(n, None)).collect();
    publisher.publish(messages).await.unwrap();
    assert_eq!(stored(&js).await, 110);
    assert_eq!(publisher.batches_published(), 0);
    assert!(publisher.plain_rounds() >= 2);
}

#[tokio::test]
async fn a_publish_without_nats_fails_within_the_request_timeout() {
    let mut server = TestNatsServer::start().await;
    let (_js, publisher) = publisher(&server, true).await;
    publisher.publish(vec![event(0, None)]).await.unwrap();
    server.stop().await;

    let started = Instant::now();
    let several = (0..5).map(|n| event(n, None)).collect();
    let (single, batch) = tokio::join!(
        publisher.publish(vec![event(9, None)]),
        publisher.publish(several)
    );
    let elapsed = started.elapsed();
    assert!(
        matches!(single, Err(PublishError::NotAcknowledged(_))),
        "{single:?}"
    );
    assert!(
        matches!(batch, Err(PublishError::NotAcknowledged(_))),
        "{batch:?}"
    );
    // The default request timeout is 5 s; two rounds of it would be 10 s.
    assert!(elapsed < Duration::from_secs(8), "took {elapsed:?}");
}

#[tokio::test]
async fn a_stream_without_atomic_batches_refuses_them_and_every_message_still_lands() {
    let server = TestNatsServer::start().await;
    let client = server.connect_as("patient").await;
    let js = jetstream::new(client.clone());
    let mut config = kit::event_stream::config(1);
    config.allow_atomic_publish = false;
    let mut stream = js.create_stream(config).await.unwrap();
    assert!(!kit::event_stream::atomic_enabled(
        stream.info().await.unwrap()
    ));
    // Told wrongly that it may, the publisher falls back to one message at a time.
    let publisher = BatchPublisher::start(client, js.clone(), true);
    let messages = (0..5).map(|n| event(n, None)).collect();
    publisher.publish(messages).await.unwrap();
    assert_eq!(stored(&js).await, 5);
    assert_eq!(publisher.batches_refused(), 1);
}
