//! How fast a read-model is rebuilt from the stream, as `hospital replay appointment` does:
//! publishes realistic patient and staff events into `HOSPITAL_EVENTS` (pipelined), then runs
//! the same rebuild (`kit::read_model::rebuild` with the appointment service's projection)
//! against a fresh database, and the live runner's catch-up over the same events.
//!
//! The events are loaded into a nats-server of its own whose only difference from `nats.conf` is
//! that it does not fsync each message: loading a million events is set-up, not what is
//! measured, and reading is the same either way.

use std::future::IntoFuture;
use std::time::Instant;

use async_nats::HeaderMap;
use chrono::{NaiveDate, Utc};
use kit::RequestContext;
use kit::events::new_event;
use kit::nats_server::TestNatsServer;
use shared_events::Aggregate;
use shared_events::patient::{Patient, Sex};
use shared_events::staff::{Staff, StaffRole};
use uuid::Uuid;

const FIRST: [&str; 8] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John",
];
const LAST: [&str; 8] = [
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus",
];

/// The `n`th event: mostly patients (created, then updated, every tenth deleted), one in ten a
/// staff member, as a front desk produces them. Returns its subject and JSON payload.
fn event(n: usize, context: &RequestContext) -> (String, Vec<u8>) {
    // Each aggregate gets three events in a row: created, updated, and updated or deleted.
    let aggregate = n / 3;
    let step = (n % 3) as i64 + 1;
    let id = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + aggregate as u128);
    let now = Utc::now();
    let name = format!(
        "{} {}",
        FIRST[aggregate % FIRST.len()],
        LAST[(aggregate / FIRST.len()) % LAST.len()]
    );
    let deleted = step == 3 && aggregate.is_multiple_of(10);
    let verb = match (step, deleted) {
        (1, _) => "created",
        (_, true) => "deleted",
        _ => "updated",
    };
    let (subject, payload) = if aggregate % 10 == 7 {
        let staff = Staff {
            id,
            name,
            role: if aggregate % 20 == 7 {
                StaffRole::Doctor
            } else {
                StaffRole::Nurse
            },
            specialization: Some("Cardiology".into()),
            phone: Some("+1 555 0100".into()),
            email: Some("staff@example.org".into()),
            username: None,
            version: step,
            created_at: now,
            updated_at: now,
            deleted_at: deleted.then_some(now),
        };
        let event = new_event(Aggregate::Staff, id, step, verb, context, now, &staff);
        (event.subject(), serde_json::to_vec(&event))
    } else {
        let patient = Patient {
            id,
            mrn: format!("MRN{aggregate:09}"),
            name,
            birth_date: NaiveDate::from_ymd_opt(1985, 4, 12).unwrap(),
            sex: Sex::Female,
            phone: Some("+1 555 0100".into()),
            email: Some("patient@example.org".into()),
            address: Some("1 Main Street, Springfield".into()),
            version: step,
            created_at: now,
            updated_at: now,
            deleted_at: deleted.then_some(now),
        };
        let event = new_event(Aggregate::Patient, id, step, verb, context, now, &patient);
        (event.subject(), serde_json::to_vec(&event))
    };
    (subject, payload.expect("an event serialises"))
}

/// Publishes as the patient and the staff service (each may publish only its own events).
async fn publish(publishers: &Publishers, count: usize) {
    let context = RequestContext::system();
    let started = Instant::now();
    let mut pending = Vec::with_capacity(4096);
    for n in 0..count {
        let (subject, payload) = event(n, &context);
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", Uuid::now_v7().to_string().as_str());
        let js = if subject.starts_with("hospital.events.staff.") {
            &publishers.staff
        } else {
            &publishers.patient
        };
        let ack = js
            .publish_with_headers(subject, headers, payload.into())
            .await
            .expect("publish");
        pending.push(ack);
        if pending.len() == 4096 {
            futures::future::try_join_all(pending.drain(..).map(IntoFuture::into_future))
                .await
                .expect("acknowledged");
        }
    }
    futures::future::try_join_all(pending.into_iter().map(IntoFuture::into_future))
        .await
        .expect("acknowledged");
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "  published {count} events in {seconds:.1} s ({:.0}/s)",
        count as f64 / seconds
    );
}

struct Publishers {
    patient: async_nats::jetstream::Context,
    staff: async_nats::jetstream::Context,
}

/// The figures of one replay run.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ReplayFigures {
    pub events: u64,
    pub rebuild_seconds: f64,
    pub rebuild_per_second: f64,
    pub live_events: u64,
    pub live_per_second: f64,
}

/// Rebuilds the appointment service's directory from `count` events.
pub async fn run(count: usize) -> ReplayFigures {
    let config = kit::nats_server::NATS_CONF.replace("sync_interval: always", "");
    let server = TestNatsServer::start_with_config(&config).await;
    // Read and rebuilt as the appointment service, as `hospital replay appointment` does.
    let js = kit::event_stream::provision(&server.connect_as("appointment").await, 1).await;
    let publishers = Publishers {
        patient: async_nats::jetstream::new(server.connect_as("patient").await),
        staff: async_nats::jetstream::new(server.connect_as("staff").await),
    };
    publish(&publishers, count).await;

    let dir = tempfile::tempdir().expect("temporary directory");
    let url = kit::config::sqlite_url_in(dir.path(), "appointment");
    let pool = kit::sqlite::open(&url, &appointment_service::store::MIGRATOR)
        .await
        .expect("a fresh appointment database");
    let rebuilt = kit::read_model::rebuild(
        &js,
        &pool,
        &appointment_service::read_model::PeopleProjection,
        &appointment_service::read_model::subscription(),
        |_| {},
    )
    .await
    .expect("the rebuild");
    assert_eq!(rebuilt.events, count as u64);
    assert_eq!(rebuilt.parked, 0);
    let rows: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM directory_patients) + (SELECT COUNT(*) FROM directory_staff)",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(rows as usize, count.div_ceil(3));
    let (live_events, live_per_second) = live_catch_up(&js, count as u64).await;
    ReplayFigures {
        events: rebuilt.events,
        rebuild_seconds: rebuilt.elapsed.as_secs_f64(),
        rebuild_per_second: rebuilt.events_per_second(),
        live_events,
        live_per_second,
    }
}

/// How fast a running service catches up after downtime: the live runner (its durable consumer,
/// what has arrived applied together, up to 256 events per transaction) over the same events
/// into a fresh database, for at most
/// `LIVE_FOR`, as events per second.
async fn live_catch_up(js: &async_nats::jetstream::Context, count: u64) -> (u64, f64) {
    const LIVE_FOR: std::time::Duration = std::time::Duration::from_secs(10);
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = kit::config::sqlite_url_in(dir.path(), "appointment");
    let pool = kit::sqlite::open(&url, &appointment_service::store::MIGRATOR)
        .await
        .expect("a fresh appointment database");
    // The appointment service's own consumer name: the only one its NATS user may use.
    let subscription = appointment_service::read_model::subscription();
    let runner = kit::read_model::ReadModel::new(
        js.clone(),
        pool.clone(),
        std::sync::Arc::new(appointment_service::read_model::PeopleProjection),
        kit::EventPublisher::new(
            js.clone(),
            kit::database::Database::from_sqlite_pool(pool.clone()),
        ),
        subscription,
    )
    .await
    .expect("the live read-model");
    let catch_up = runner.catch_up();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(runner.run(shutdown.clone()));
    let caught_up = catch_up.wait(LIVE_FOR).await;
    let seconds = started.elapsed().as_secs_f64();
    shutdown.cancel();
    let _ = running.await;
    // Every event in the stream is a patient or staff event: the position counts them.
    let applied = catch_up.applied();
    if !caught_up {
        eprintln!("  live catch-up stopped after {LIVE_FOR:?}: {applied} of {count} events");
    }
    (applied, applied as f64 / seconds)
}
