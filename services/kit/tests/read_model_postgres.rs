//! The read-model runner on PostgreSQL, against a real nats-server and a fresh database per test
//! with the appointment service's PostgreSQL schema: events applied once with the position in
//! the same transaction, poison events parked byte for byte, the rebuild from the stream, and
//! the leader rule: of several runners on one database and consumer, one consumes at a time,
//! the others answer their catch-up waits from the stored position and take over when it stops.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use chrono::Utc;
use kit::EventPublisher;
use kit::database::Database;
use kit::directory::{self, Applied, Directory};
use kit::nats_server::TestNatsServer;
use kit::outbox::OutboxRow;
use kit::postgres_test::FreshDatabase;
use kit::read_model::{CatchUp, Projection, ReadModel, RebuildError, Subscription, rebuild};
use serde_json::json;
use shared_events::staff::StaffRole;
use shared_events::{Actor, Aggregate, EventEnvelope};
use sqlx::{PgConnection, PgPool, Postgres};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

mod support;
use support::{Owners, patient_event, publish, publish_payload};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/appointment/postgres");

/// The appointment service's consumer: the only one its NATS user may use.
const CONSUMER: &str = "appointment-read-model";

/// How long a test waits for what should take well under a second.
const PATIENCE: Duration = Duration::from_secs(10);

/// The directory, plus a log of every event it was handed and by which runner (to count
/// applications, and to see who consumed).
struct CountingDirectory {
    runner: &'static str,
}

impl Projection<Postgres> for CountingDirectory {
    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &EventEnvelope,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        sqlx::query("INSERT INTO applied_log (event_id, runner) VALUES ($1, $2)")
            .bind(event.event_id)
            .bind(self.runner)
            .execute(&mut *conn)
            .await?;
        directory::postgres::apply(conn, event).await?;
        Ok(Vec::new())
    }

    async fn reset(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM applied_log")
            .execute(&mut *conn)
            .await?;
        directory::postgres::reset(conn).await
    }
}

/// A fresh database with the appointment service's schema and the test's log.
async fn database() -> FreshDatabase {
    let database = FreshDatabase::create().await;
    MIGRATOR.run(database.pool()).await.unwrap();
    sqlx::query("CREATE TABLE applied_log (event_id uuid NOT NULL, runner text NOT NULL)")
        .execute(database.pool())
        .await
        .unwrap();
    database
}

/// A pool of its own on the test's database, as another instance of the service has.
async fn instance(database: &FreshDatabase) -> PgPool {
    PgPool::connect(database.url()).await.unwrap()
}

fn subscription() -> Subscription {
    Subscription {
        consumer: CONSUMER.into(),
        subjects: directory::subjects(),
    }
}

async fn runner(
    js: &jetstream::Context,
    pool: &PgPool,
    name: &'static str,
) -> ReadModel<CountingDirectory, Postgres> {
    ReadModel::new(
        js.clone(),
        pool.clone(),
        Arc::new(CountingDirectory { runner: name }),
        EventPublisher::new(js.clone(), Database::Postgres(pool.clone())),
        subscription(),
    )
    .await
    .unwrap()
}

/// A runner started on its own task, with what stops it.
struct Running {
    catch_up: CatchUp,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start(js: &jetstream::Context, pool: &PgPool, name: &'static str) -> Running {
    let read_model = runner(js, pool, name).await;
    let catch_up = read_model.catch_up();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(read_model.run(shutdown.clone()));
    Running {
        catch_up,
        shutdown,
        task,
    }
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
    }
}

/// Waits (at most [`PATIENCE`]) until `condition` holds.
async fn until<F: Future<Output = bool>>(what: &str, mut condition: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {PATIENCE:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The applications logged, per runner: (runner, events, distinct events).
async fn applications(pool: &PgPool) -> Vec<(String, i64, i64)> {
    sqlx::query_as(
        "SELECT runner, count(*), count(DISTINCT event_id) FROM applied_log GROUP BY runner ORDER BY runner",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn stored_position(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT stream_sequence FROM read_model_position WHERE consumer = $1")
        .bind(CONSUMER)
        .fetch_one(pool)
        .await
        .unwrap()
}

fn staff_event(id: Uuid, version: i64, name: &str, role: StaffRole) -> EventEnvelope {
    let now = Utc::now();
    EventEnvelope {
        event_id: Uuid::now_v7(),
        event_type: if version == 1 {
            "staff.created"
        } else {
            "staff.updated"
        }
        .into(),
        aggregate: Aggregate::Staff,
        aggregate_id: id,
        aggregate_version: version,
        occurred_at: now,
        actor: Actor::system(),
        correlation_id: None,
        data: json!({"id": id, "name": name, "role": role, "specialization": null, "phone": null,
                     "email": null, "username": null, "version": version,
                     "created_at": now, "updated_at": now}),
    }
}

/// An appointment event: not one of the directory's subjects.
fn appointment_event() -> EventEnvelope {
    EventEnvelope {
        aggregate: Aggregate::Appointment,
        event_type: "appointment.created".into(),
        ..patient_event(Uuid::now_v7(), 1, "not a patient", false)
    }
}

#[tokio::test]
async fn events_are_applied_once_and_a_poison_event_is_parked_byte_for_byte() {
    let server = TestNatsServer::start().await;
    let js = kit::event_stream::provision(&server.connect_as("appointment").await, 1).await;
    let owners = Owners::connect(&server).await;
    let database = database().await;
    let pool = database.pool().clone();

    let ada = Uuid::now_v7();
    let created = patient_event(ada, 1, "Ada", false);
    publish(&owners, &created).await;
    publish(&owners, &patient_event(ada, 2, "Ada King", false)).await;
    // The same event again, older than what the directory holds by then: no change.
    publish(&owners, &created).await;
    // Not an envelope, and with a NUL byte, which only bytea keeps.
    let poison = b"\x00not an envelope".to_vec();
    let poison_subject = format!("hospital.events.patient.{}.created", Uuid::now_v7());
    let poison_seq =
        publish_payload(&owners, Aggregate::Patient, &poison_subject, poison.clone()).await;
    let last = publish(&owners, &appointment_event()).await;

    let running = start(&js, &pool, "a").await;
    assert!(running.catch_up.wait(PATIENCE).await, "caught up");
    assert!(running.catch_up.leads());
    assert!(running.catch_up.applied() >= last);
    let directory = Directory::new(pool.clone(), running.catch_up.clone());
    let known = directory.patient(ada).await.unwrap().unwrap();
    assert_eq!(
        (known.name.as_str(), known.version, known.deleted),
        ("Ada King", 2, false)
    );
    assert_eq!(
        applications(&pool).await,
        vec![("a".into(), 3, 2)],
        "each stream message reaches the projection once (one event came twice)"
    );
    let parked: Vec<(i64, String, Option<String>, Vec<u8>)> = sqlx::query_as(
        "SELECT stream_sequence, subject, event_id, payload FROM read_model_parked WHERE consumer = $1",
    )
    .bind(CONSUMER)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        parked,
        vec![(poison_seq as i64, poison_subject, None, poison)],
        "the poison event is parked as received"
    );
    // The position covers the appointment event too: other instances compare it with the
    // stream's last sequence.
    assert_eq!(stored_position(&pool).await, last as i64);

    // Read-your-writes through the directory, and an unknown id unknown after the wait.
    let grace = Uuid::now_v7();
    publish(&owners, &patient_event(grace, 1, "Grace", false)).await;
    assert_eq!(
        directory.patient(grace).await.unwrap().unwrap().name,
        "Grace"
    );
    assert!(directory.patient(Uuid::now_v7()).await.unwrap().is_none());

    // After a restart the stored position means nothing is applied twice.
    running.stop().await;
    let again = start(&js, &pool, "a").await;
    publish(&owners, &patient_event(grace, 2, "Grace Hopper", true)).await;
    assert!(again.catch_up.wait(PATIENCE).await);
    assert_eq!(applications(&pool).await, vec![("a".into(), 5, 4)]);
    assert!(directory.patient_now(grace).await.unwrap().unwrap().deleted);
    again.stop().await;
    database.drop().await;
}

#[tokio::test]
async fn applying_events_again_in_one_or_in_many_changes_nothing() {
    let database = database().await;
    let mut conn = database.pool().acquire().await.unwrap();
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let created = patient_event(ada, 1, "Ada", false);
    let deleted = patient_event(ada, 2, "Ada K", true);
    assert_eq!(
        directory::postgres::apply(&mut conn, &created)
            .await
            .unwrap(),
        Applied::Changed
    );
    assert_eq!(
        directory::postgres::apply(&mut conn, &created)
            .await
            .unwrap(),
        Applied::Skipped
    );
    assert_eq!(
        directory::postgres::apply(&mut conn, &deleted)
            .await
            .unwrap(),
        Applied::Changed
    );
    assert_eq!(
        directory::postgres::apply(&mut conn, &created)
            .await
            .unwrap(),
        Applied::Skipped,
        "an older version is ignored"
    );

    // Many at once, one id several times in one statement (as a rebuild batch has them).
    let hired = staff_event(bob, 1, "Bob", StaffRole::Nurse);
    let promoted = staff_event(bob, 2, "Bob", StaffRole::Doctor);
    let grace = Uuid::now_v7();
    let events = [
        &hired,
        &promoted,
        &hired,
        &created,
        &patient_event(grace, 1, "Grace", false),
        &patient_event(grace, 2, "Grace Hopper", false),
    ];
    directory::postgres::apply_many(&mut conn, &events)
        .await
        .unwrap();
    drop(conn);
    let mut rows: Vec<(Uuid, String, bool, i64)> = sqlx::query_as(
        "SELECT id, name, deleted, version FROM directory_patients
         UNION ALL SELECT id, role, deleted, version FROM directory_staff",
    )
    .fetch_all(database.pool())
    .await
    .unwrap();
    rows.sort();
    let mut expected = vec![
        (ada, "Ada K".to_owned(), true, 2),
        (bob, "doctor".to_owned(), false, 2),
        (grace, "Grace Hopper".to_owned(), false, 2),
    ];
    expected.sort();
    assert_eq!(rows, expected, "each row at its newest version");
    database.drop().await;
}

#[tokio::test]
async fn a_rebuild_applies_the_stream_again_and_is_refused_while_an_instance_consumes() {
    let server = TestNatsServer::start().await;
    let js = kit::event_stream::provision(&server.connect_as("appointment").await, 1).await;
    let owners = Owners::connect(&server).await;
    let database = database().await;
    let pool = database.pool().clone();

    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    publish(&owners, &patient_event(ada, 1, "Ada", false)).await;
    publish(&owners, &staff_event(bob, 1, "Bob", StaffRole::Nurse)).await;
    publish(&owners, &patient_event(ada, 2, "Ada King", false)).await;
    // An envelope whose data is no patient: parked, with its event id.
    let broken = EventEnvelope {
        data: json!({"not": "a patient"}),
        ..patient_event(Uuid::now_v7(), 1, "?", false)
    };
    publish(&owners, &broken).await;
    let last_ours = publish(&owners, &staff_event(bob, 2, "Bob", StaffRole::Doctor)).await;
    publish(&owners, &appointment_event()).await;

    // While an instance consumes, the rebuild is refused.
    let running = start(&js, &pool, "live").await;
    assert!(running.catch_up.wait(PATIENCE).await);
    let refused = rebuild(
        &js,
        &pool,
        &CountingDirectory { runner: "rebuild" },
        &subscription(),
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&refused, RebuildError::Running { consumer } if consumer == CONSUMER),
        "{refused}"
    );
    running.shutdown.cancel();
    running.task.await.unwrap();
    // Something the stream does not say, which the rebuild must clear.
    sqlx::query("INSERT INTO directory_patients (id, name, deleted, version) VALUES ($1, 'Nobody', false, 9)")
        .bind(Uuid::now_v7())
        .execute(&pool)
        .await
        .unwrap();

    let rebuilt = rebuild(
        &js,
        &pool,
        &CountingDirectory { runner: "rebuild" },
        &subscription(),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!((rebuilt.events, rebuilt.parked), (5, 1));
    assert_eq!(rebuilt.last_sequence, last_ours);
    assert_eq!(stored_position(&pool).await, last_ours as i64);
    assert_eq!(applications(&pool).await, vec![("rebuild".into(), 4, 4)]);
    let people: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM directory_patients) + (SELECT count(*) FROM directory_staff)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(people, 2, "only the people of the stream");
    let directory = Directory::new(pool.clone(), running.catch_up.clone());
    let ada = directory.patient_now(ada).await.unwrap().unwrap();
    assert_eq!((ada.name.as_str(), ada.version), ("Ada King", 2));
    let bob = directory.staff_now(bob).await.unwrap().unwrap();
    assert_eq!(
        (bob.role, bob.version, bob.deleted),
        (StaffRole::Doctor, 2, false)
    );
    let parked: Vec<Option<String>> =
        sqlx::query_scalar("SELECT event_id FROM read_model_parked WHERE consumer = $1")
            .bind(CONSUMER)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(parked, vec![Some(broken.event_id.to_string())]);
    database.drop().await;
}

#[tokio::test]
async fn one_instance_consumes_at_a_time_and_another_takes_over_when_it_stops() {
    let server = TestNatsServer::start().await;
    let js = kit::event_stream::provision(&server.connect_as("appointment").await, 1).await;
    let owners = Owners::connect(&server).await;
    let database = database().await;
    let (pool_a, pool_b, pool_c) = (
        instance(&database).await,
        instance(&database).await,
        instance(&database).await,
    );

    let a = start(&js, &pool_a, "a").await;
    until("a leads", || async { a.catch_up.leads() }).await;
    let b = start(&js, &pool_b, "b").await;
    let mut first = Vec::new();
    for name in ["Ada", "Grace", "Edsger"] {
        let id = Uuid::now_v7();
        publish(&owners, &patient_event(id, 1, name, false)).await;
        first.push(id);
    }
    // The stream's last event is not the directory's: the stored position covers it anyway.
    publish(&owners, &appointment_event()).await;
    assert!(a.catch_up.wait(PATIENCE).await);
    // b does not consume, and its catch-up answers from the position a stores.
    assert!(b.catch_up.wait(PATIENCE).await);
    assert!(!b.catch_up.leads());
    assert_eq!(b.catch_up.applied(), 0, "b's own runner handled nothing");
    // Read-your-writes on b: a patient created just now is found once a has applied it.
    let barbara = Uuid::now_v7();
    publish(&owners, &patient_event(barbara, 1, "Barbara", false)).await;
    let on_b = Directory::new(pool_b.clone(), b.catch_up.clone());
    assert_eq!(
        on_b.patient(barbara).await.unwrap().unwrap().name,
        "Barbara"
    );
    assert_eq!(
        applications(database.pool()).await,
        vec![("a".into(), 4, 4)]
    );

    // a stops: b takes over, from where a stopped.
    a.stop().await;
    until("b leads", || async { b.catch_up.leads() }).await;
    let linus = Uuid::now_v7();
    publish(&owners, &patient_event(linus, 1, "Linus", false)).await;
    assert!(b.catch_up.wait(PATIENCE).await);
    assert_eq!(
        on_b.patient_now(linus).await.unwrap().unwrap().name,
        "Linus"
    );
    assert_eq!(
        applications(database.pool()).await,
        vec![("a".into(), 4, 4), ("b".into(), 1, 1)],
        "every event applied once, each by the instance consuming then"
    );

    // b dies without giving the lock up (its task dropped): its session ends, c takes over.
    let c = start(&js, &pool_c, "c").await;
    b.task.abort();
    until("c leads", || async { c.catch_up.leads() }).await;
    let margaret = Uuid::now_v7();
    publish(&owners, &patient_event(margaret, 1, "Margaret", false)).await;
    // Allow for the ack wait, should a message have gone to b's last pull request.
    assert!(c.catch_up.wait(Duration::from_secs(20)).await);
    assert_eq!(
        applications(database.pool()).await,
        vec![("a".into(), 4, 4), ("b".into(), 1, 1), ("c".into(), 1, 1)]
    );
    for id in first {
        assert!(on_b.patient_now(id).await.unwrap().is_some());
    }
    c.stop().await;
    database.drop().await;
}

#[tokio::test]
async fn postgres_errors_that_say_nothing_of_the_event_are_transient() {
    use kit::read_model::{FailureKind, classify};
    let database = FreshDatabase::create().await;
    for (sqlstate, kind) in [
        ("40001", FailureKind::Transient),  // serialization_failure
        ("40P01", FailureKind::Transient),  // deadlock_detected
        ("08006", FailureKind::Transient),  // connection_failure
        ("57P01", FailureKind::Transient),  // admin_shutdown
        ("53300", FailureKind::Transient),  // too_many_connections
        ("23505", FailureKind::Repeatable), // unique_violation
        ("22P02", FailureKind::Repeatable), // invalid_text_representation
    ] {
        let raised = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DO $$ BEGIN RAISE EXCEPTION 'raised' USING ERRCODE = '{sqlstate}'; END $$"
        )))
        .execute(database.pool())
        .await
        .unwrap_err();
        assert_eq!(classify(&raised), kind, "{sqlstate}: {raised}");
    }
    database.drop().await;
}
