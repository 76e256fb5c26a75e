//! The outbox on PostgreSQL shared by several instances of a service: events committed by one
//! instance are published once, whichever instance's relay runs, because only the instance
//! holding the relay's advisory lock drains (kit::outbox::RELAY_LOCK).

use async_nats::jetstream;
use kit::EventPublisher;
use kit::command::RequestContext;
use kit::database::Database;
use kit::events::{new_event, now};
use kit::nats_server::TestNatsServer;
use kit::postgres_test::FreshDatabase;
use shared_events::Aggregate;
use shared_events::subjects::EVENT_STREAM;
use uuid::Uuid;

/// Every owning service's PostgreSQL migrations create the same outbox; the patient one stands
/// for all.
static PATIENT_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("../../migrations/patient/postgres");

const EVENTS: usize = 300;

/// `EVENTS` events committed to the outbox and never published (their instance "crashed").
async fn leave_events_behind(database: &FreshDatabase) {
    let mut tx = database.pool().begin().await.unwrap();
    for _ in 0..EVENTS {
        let id = Uuid::now_v7();
        let event = new_event(
            Aggregate::Patient,
            id,
            1,
            "created",
            &RequestContext::system(),
            now(),
            serde_json::json!({"id": id}),
        );
        kit::outbox::append_pg(&mut tx, &event).await.unwrap();
    }
    tx.commit().await.unwrap();
}

async fn instance(server: &TestNatsServer, url: &str) -> EventPublisher {
    let client = server.connect_as("patient").await;
    let js = kit::event_stream::provision(&client, 1).await;
    let pool = kit::postgres::open(url, &PATIENT_MIGRATIONS).await.unwrap();
    EventPublisher::new(js, Database::Postgres(pool))
}

#[tokio::test]
async fn two_instances_relays_publish_what_was_left_behind_exactly_once() {
    let server = TestNatsServer::start().await;
    let database = FreshDatabase::migrated(&PATIENT_MIGRATIONS).await;
    leave_events_behind(&database).await;
    let (first, second) = (
        instance(&server, database.url()).await,
        instance(&server, database.url()).await,
    );

    let (a, b) = tokio::join!(first.drain(), second.drain());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a + b,
        EVENTS,
        "one relay drained, the other found the lock taken ({a} + {b})"
    );
    assert!(a == 0 || b == 0, "only one instance published: {a} and {b}");

    // Nothing is left to publish, and the stream holds each event once.
    let (a, b) = tokio::join!(first.drain(), second.drain());
    assert_eq!((a.unwrap(), b.unwrap()), (0, 0));
    let outbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(database.pool())
        .await
        .unwrap();
    assert_eq!(outbox, 0);
    let js = jetstream::new(server.connect_as(kit::nats_users::OPERATOR).await);
    let info = js
        .get_stream(EVENT_STREAM)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(info.state.messages, EVENTS as u64);
    database.drop().await;
}

#[tokio::test]
async fn the_relay_lock_is_free_again_after_a_drain_and_when_its_holder_dies() {
    let database = FreshDatabase::migrated(&PATIENT_MIGRATIONS).await;
    let key = kit::outbox::RELAY_LOCK;
    let leader = kit::postgres::try_lead(database.pool(), key)
        .await
        .unwrap()
        .expect("the lock is free");
    // Another instance's pool: refused while it is held.
    let other = kit::postgres::open(database.url(), &PATIENT_MIGRATIONS)
        .await
        .unwrap();
    assert!(
        kit::postgres::try_lead(&other, key)
            .await
            .unwrap()
            .is_none()
    );
    // The holder's session ends (its process died): the lock is free.
    sqlx::Connection::close(leader.detach()).await.unwrap();
    let next = kit::postgres::try_lead(&other, key)
        .await
        .unwrap()
        .expect("free once its holder's session ended");
    kit::postgres::release(next, key).await;
    let again = kit::postgres::try_lead(&other, key)
        .await
        .unwrap()
        .expect("free once released");
    kit::postgres::release(again, key).await;
    other.close().await;
    database.drop().await;
}
