//! The read-model runner against a real nats-server: events are applied once, in a transaction
//! with the consumer position, and `CatchUp` waits for what the stream holds now.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use kit::EventPublisher;
use kit::directory::{self, Applied, Directory};
use kit::nats_server::TestNatsServer;
use kit::outbox::OutboxRow;
use kit::read_model::{Projection, ReadModel, Subscription};
use shared_events::{Aggregate, EventEnvelope};
use sqlx::{SqliteConnection, SqlitePool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

mod support;
use support::{Owners, patient_event, publish};

const SCHEMA: &str = "
    CREATE TABLE read_model_position (consumer TEXT PRIMARY KEY, stream_sequence INTEGER NOT NULL);
    CREATE TABLE directory_patients (id TEXT PRIMARY KEY, name TEXT NOT NULL, deleted INTEGER NOT NULL, version INTEGER NOT NULL);
    CREATE TABLE directory_staff (id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, deleted INTEGER NOT NULL, version INTEGER NOT NULL);
    CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, subject TEXT NOT NULL, payload TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE TABLE applied_log (event_id TEXT NOT NULL);
    CREATE TABLE read_model_parked (consumer TEXT NOT NULL, stream_sequence INTEGER NOT NULL, subject TEXT NOT NULL, event_id TEXT, error TEXT NOT NULL, payload TEXT NOT NULL, parked_at TEXT NOT NULL, PRIMARY KEY (consumer, stream_sequence));
";

/// The directory, plus a log of every event it was handed (to count applications).
struct CountingDirectory;

impl Projection for CountingDirectory {
    async fn apply(
        &self,
        conn: &mut SqliteConnection,
        event: &EventEnvelope,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        sqlx::query("INSERT INTO applied_log (event_id) VALUES ($1)")
            .bind(event.event_id.to_string())
            .execute(&mut *conn)
            .await?;
        directory::sqlite::apply(conn, event).await?;
        Ok(Vec::new())
    }

    async fn reset(&self, conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
        directory::sqlite::reset(conn).await
    }
}

async fn database() -> (tempfile::TempDir, SqlitePool) {
    let dir = tempfile::tempdir().unwrap();
    let url = kit::config::sqlite_url_in(dir.path(), "read-model");
    let pool = SqlitePool::connect(&url).await.unwrap();
    sqlx::raw_sql(SCHEMA).execute(&pool).await.unwrap();
    (dir, pool)
}

#[tokio::test]
async fn events_are_applied_once_and_catch_up_waits_for_the_last_one() {
    let server = TestNatsServer::start().await;
    // The read-model runs as the appointment service, whose consumer it may use.
    let client = server.connect_as("appointment").await;
    let js = kit::event_stream::provision(&client, 1).await;
    let owners = Owners::connect(&server).await;
    let (_dir, pool) = database().await;

    let ada = Uuid::now_v7();
    let created = patient_event(ada, 1, "Ada", false);
    publish(&owners, &created).await;
    // The same event delivered again (a new message id defeats the stream's de-duplication),
    // and an older version after a newer one: neither may change the directory.
    publish(&owners, &patient_event(ada, 2, "Ada King", false)).await;
    publish(&owners, &created).await;
    // An event of another aggregate: not in the subscription's subjects.
    let other = EventEnvelope {
        aggregate: Aggregate::Appointment,
        event_type: "appointment.created".into(),
        ..created.clone()
    };
    let last_appointment_seq = publish(&owners, &other).await;

    let publisher = EventPublisher::new(
        js.clone(),
        kit::database::Database::from_sqlite_pool(pool.clone()),
    );
    let subscription = Subscription {
        consumer: "appointment-read-model".into(),
        subjects: directory::subjects(),
    };
    let read_model = ReadModel::new(
        js.clone(),
        pool.clone(),
        Arc::new(CountingDirectory),
        publisher,
        subscription,
    )
    .await
    .unwrap();
    let catch_up = read_model.catch_up();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(read_model.run(shutdown.clone()));

    assert!(catch_up.wait(Duration::from_secs(5)).await, "caught up");
    assert!(
        catch_up.applied() >= last_appointment_seq,
        "caught up means every event of the stream handled, those of other subjects acknowledged unread"
    );
    let directory = Directory::new(pool.clone(), catch_up.clone());
    let known = directory.patient(ada).await.unwrap().unwrap();
    assert_eq!(
        (known.name.as_str(), known.version, known.deleted),
        ("Ada King", 2, false)
    );
    let handed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM applied_log")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(handed, 3, "each stream message reaches the projection once");

    // Read-your-writes: an event published just now is visible through the directory at once.
    let grace = Uuid::now_v7();
    publish(&owners, &patient_event(grace, 1, "Grace", false)).await;
    assert_eq!(
        directory.patient(grace).await.unwrap().unwrap().name,
        "Grace"
    );
    // An id nobody ever created is unknown after the bounded wait.
    assert!(directory.patient(Uuid::now_v7()).await.unwrap().is_none());

    // After a restart the stored position means nothing is applied twice.
    shutdown.cancel();
    running.await.unwrap();
    let publisher = EventPublisher::new(
        js.clone(),
        kit::database::Database::from_sqlite_pool(pool.clone()),
    );
    let subscription = Subscription {
        consumer: "appointment-read-model".into(),
        subjects: directory::subjects(),
    };
    let again = ReadModel::new(
        js.clone(),
        pool.clone(),
        Arc::new(CountingDirectory),
        publisher,
        subscription,
    )
    .await
    .unwrap();
    let catch_up = again.catch_up();
    let shutdown = CancellationToken::new();
    tokio::spawn(again.run(shutdown.clone()));
    publish(&owners, &patient_event(grace, 2, "Grace Hopper", true)).await;
    assert!(catch_up.wait(Duration::from_secs(5)).await);
    let handed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM applied_log")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(handed, 5);
    assert!(directory.patient_now(grace).await.unwrap().unwrap().deleted);
    shutdown.cancel();
}

#[tokio::test]
async fn applying_the_same_event_twice_changes_nothing() {
    let (_dir, pool) = database().await;
    let id = Uuid::now_v7();
    let event = patient_event(id, 1, "Ada", false);
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(
        directory::sqlite::apply(&mut conn, &event).await.unwrap(),
        Applied::Changed
    );
    assert_eq!(
        directory::sqlite::apply(&mut conn, &event).await.unwrap(),
        Applied::Skipped
    );
    assert_eq!(
        directory::sqlite::apply(&mut conn, &patient_event(id, 2, "Ada K", true))
            .await
            .unwrap(),
        Applied::Changed
    );
    assert_eq!(
        directory::sqlite::apply(&mut conn, &event).await.unwrap(),
        Applied::Skipped,
        "an older version is ignored"
    );
}

#[tokio::test]
async fn a_consumer_made_with_a_filter_list_is_updated_in_place_and_keeps_its_position() {
    let server = TestNatsServer::start().await;
    // The read-model runs as the appointment service, whose consumer it may use.
    let client = server.connect_as("appointment").await;
    let js = kit::event_stream::provision(&client, 1).await;
    let owners = Owners::connect(&server).await;
    let (_dir, pool) = database().await;
    let consumer_name = "appointment-read-model";

    // A durable consumer as earlier versions made it (one filter per aggregate), which has
    // already delivered and acknowledged the first event.
    let stream = js
        .get_stream(shared_events::subjects::EVENT_STREAM)
        .await
        .unwrap();
    let older = stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some(consumer_name.into()),
            filter_subjects: directory::subjects(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    publish(&owners, &patient_event(Uuid::now_v7(), 1, "Ada", false)).await;
    // Waiting for it (not a no-wait fetch): the consumer was made before the publish, and may
    // not count the new message as pending yet when the fetch arrives.
    let mut batch = older
        .batch()
        .max_messages(1)
        .expires(Duration::from_secs(5))
        .messages()
        .await
        .unwrap();
    let first = futures::StreamExt::next(&mut batch).await.unwrap().unwrap();
    first.double_ack().await.unwrap();
    let grace = Uuid::now_v7();
    publish(&owners, &patient_event(grace, 1, "Grace", false)).await;

    let read_model = ReadModel::new(
        js.clone(),
        pool.clone(),
        Arc::new(CountingDirectory),
        EventPublisher::new(
            js.clone(),
            kit::database::Database::from_sqlite_pool(pool.clone()),
        ),
        Subscription {
            consumer: consumer_name.into(),
            subjects: directory::subjects(),
        },
    )
    .await
    .unwrap();
    let catch_up = read_model.catch_up();
    let shutdown = CancellationToken::new();
    tokio::spawn(read_model.run(shutdown.clone()));
    assert!(catch_up.wait(Duration::from_secs(5)).await, "caught up");

    let handed: Vec<String> = sqlx::query_scalar("SELECT event_id FROM applied_log")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        handed.len(),
        1,
        "only the event after its position: {handed:?}"
    );
    let directory = Directory::new(pool.clone(), catch_up);
    assert_eq!(
        directory.patient_now(grace).await.unwrap().unwrap().name,
        "Grace"
    );
    let config = stream
        .consumer_info(consumer_name)
        .await
        .unwrap()
        .config
        .clone();
    assert_eq!(config.filter_subject, shared_events::subjects::ALL_EVENTS);
    assert!(
        config.filter_subjects.is_empty(),
        "{:?}",
        config.filter_subjects
    );
    shutdown.cancel();
}
