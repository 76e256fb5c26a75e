//! `hospital replay <appointment|record>` run as the built binary against a real system: it
//! rebuilds the read-models to exactly what they were (even after they were corrupted), refuses
//! while the service runs, and poison events are parked rather than blocking or vanishing.

use std::process::{Output, Stdio};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use kit::runtime::Component;
use reqwest::Method;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::appointments::{Clinic, at};
use crate::backend::TestDb;
use crate::helpers::{Parts, TestApp, appointment_config, record_config, spawn_app_with};

/// Runs `hospital <args> --nats-url <test NATS> --data-dir <test data>`, killed if it has not
/// finished in time.
pub async fn hospital_in(app: &TestApp, args: &[&str]) -> Output {
    let url = app.nats_server.url();
    let data_dir = app.data_dir.path().to_str().unwrap().to_owned();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--nats-url", &url, "--data-dir", &data_dir]);
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_hospital"));
    command.args(&all).env_remove("NATS_URL");
    // The services on SQLite are found in the data directory; those on PostgreSQL by URL.
    for service in ["patient", "staff", "appointment", "record"] {
        let var = format!("DATABASE_URL_{}", service.to_uppercase());
        if app.databases.is_postgres(service) {
            command.env(var, app.databases.url(service));
        } else {
            command.env_remove(var);
        }
    }
    let child = command.stdin(Stdio::null()).kill_on_drop(true).output();
    tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .unwrap_or_else(|_| panic!("hospital {all:?} did not finish"))
        .expect("the hospital binary runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The read-model tables of a service's database, in a comparable form.
async fn read_models(app: &TestApp, service: &str) -> Vec<Vec<String>> {
    let db = TestDb::open(&app.databases, service).await;
    let mut tables = vec![
        db.table("directory_patients", "id").await,
        db.table("directory_staff", "id").await,
    ];
    if service == "record" {
        tables.push(db.table("known_appointments", "id").await);
    }
    db.close().await;
    tables
}

async fn position(app: &TestApp, service: &str) -> i64 {
    let db = TestDb::open(&app.databases, service).await;
    let position = db
        .number("SELECT COALESCE(MAX(stream_sequence), 0) FROM read_model_position")
        .await;
    db.close().await;
    position
}

/// Waits until both read-models have applied everything their subjects hold now.
pub async fn wait_until_caught_up(app: &TestApp) {
    let js = jetstream::new(app.nats.clone());
    for (service, subscription) in [
        (
            "appointment",
            appointment_service::read_model::subscription(),
        ),
        ("record", record_service::read_model::subscription()),
    ] {
        let target = kit::read_model::last_sequence(&js, &subscription.subjects)
            .await
            .unwrap() as i64;
        for attempt in 0.. {
            if position(app, service).await >= target {
                break;
            }
            assert!(attempt < 200, "the {service} read-model did not catch up");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The appointment and record services, started beside a system that has the others.
pub struct ReadModelServices {
    appointment: CancellationToken,
    record: CancellationToken,
}

pub async fn start_read_model_services(app: &TestApp) -> ReadModelServices {
    let service = appointment_service::AppointmentService::build(appointment_config(
        &app.nats_server,
        &app.databases,
    ))
    .await
    .expect("appointment service starts");
    let appointment = app.run_component(service);
    let service =
        record_service::RecordService::build(record_config(&app.nats_server, &app.databases))
            .await
            .expect("record service starts");
    let record = app.run_component(service);
    for service in ["appointment", "record"] {
        for attempt in 0.. {
            let subject = format!("$SRV.PING.{service}");
            if app.nats.request(subject, "".into()).await.is_ok() {
                break;
            }
            assert!(attempt < 200, "the {service} service did not start");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    ReadModelServices {
        appointment,
        record,
    }
}

/// Stops both and waits until their databases are free: on SQLite their single-writer locks
/// released, on PostgreSQL their read-model consumers' advisory locks.
pub async fn stop_read_model_services(app: &TestApp, services: ReadModelServices) {
    services.appointment.cancel();
    services.record.cancel();
    for (service, migrator, consumer) in [
        (
            "appointment",
            &appointment_service::store::MIGRATOR,
            appointment_service::read_model::CONSUMER,
        ),
        (
            "record",
            &record_service::store::MIGRATOR,
            record_service::read_model::CONSUMER,
        ),
    ] {
        if app.databases.is_postgres(service) {
            wait_until_no_one_consumes(app, service, consumer).await;
            continue;
        }
        let url = kit::config::sqlite_url_in(app.data_dir.path(), service);
        for attempt in 0.. {
            match kit::sqlite::open(&url, migrator).await {
                Ok(pool) => {
                    pool.close().await;
                    break;
                }
                Err(error) => {
                    assert!(error.is_locked(), "{error}");
                    assert!(attempt < 200, "the {service} service did not stop");
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }
        }
    }
}

/// Waits until no instance holds `consumer`'s lease on the service's PostgreSQL database.
async fn wait_until_no_one_consumes(app: &TestApp, service: &str, consumer: &str) {
    let pool = sqlx::PgPool::connect(&app.databases.url(service))
        .await
        .unwrap();
    let key = kit::read_model::consumer_lock(consumer);
    for attempt in 0.. {
        if let Some(lease) = kit::postgres::try_lead(&pool, key).await.unwrap() {
            kit::postgres::release(lease, key).await;
            break;
        }
        assert!(
            attempt < 400,
            "the {service} service did not stop consuming"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    pool.close().await;
}

/// A system with some history: patients created, updated and deleted, staff created, updated
/// and deleted, appointments booked and cancelled. Returns it with both read-model services
/// running.
pub async fn system_with_history() -> (Clinic, ReadModelServices) {
    let app = spawn_app_with(Parts {
        appointment: false,
        record: false,
        ..Parts::default()
    })
    .await;
    let services = start_read_model_services(&app).await;
    let clinic = Clinic::open(app).await;
    let nurse = clinic.staff("Carla Espinosa", "nurse").await;
    let mut patients = Vec::new();
    for name in [
        "Ada Lovelace",
        "Grace Hopper",
        "Alan Turing",
        "Edsger Dijkstra",
    ] {
        patients.push(clinic.patient(name).await);
    }
    let (status, _) = clinic
        .call(
            Method::PUT,
            &format!("/api/patients/{}", patients[0]),
            Some(crate::helpers::patient_body("Ada King")),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = clinic
        .call(
            Method::PUT,
            &format!("/api/staff/{nurse}"),
            Some(json!({"name": "Carla Turk", "role": "nurse"})),
        )
        .await;
    assert_eq!(status, 200);
    let booked = clinic.booked(&patients[1], &at(2, 9, 0)).await;
    clinic.booked(&patients[3], &at(2, 10, 0)).await;
    let mut cancelled = booked.clone();
    cancelled["status"] = json!("cancelled");
    let (status, body) = clinic
        .call(
            Method::PUT,
            &format!("/api/appointments/{}", booked["id"].as_str().unwrap()),
            Some(cancelled),
        )
        .await;
    assert_eq!(status, 200, "cancel: {body}");
    let (status, _) = clinic
        .call(
            Method::DELETE,
            &format!("/api/patients/{}", patients[2]),
            None,
        )
        .await;
    assert!(status < 300);
    let (status, _) = clinic
        .call(Method::DELETE, &format!("/api/staff/{nurse}"), None)
        .await;
    assert!(status < 300);
    wait_until_caught_up(&clinic.app).await;
    (clinic, services)
}

#[tokio::test]
async fn replay_rebuilds_the_same_read_models_and_refuses_while_the_service_runs() {
    let (clinic, services) = system_with_history().await;
    let app = &clinic.app;

    let refused = hospital_in(app, &["replay", "appointment"]).await;
    assert!(!refused.status.success());
    let message = stderr(&refused);
    assert!(
        message.contains("the appointment service is running") && message.contains("stop it"),
        "{message}"
    );

    let before_appointment = read_models(app, "appointment").await;
    let before_record = read_models(app, "record").await;
    assert_eq!(before_appointment[0].len(), 4, "{before_appointment:?}");
    assert_eq!(before_appointment[1].len(), 3, "{before_appointment:?}");
    assert_eq!(before_record[2].len(), 2, "{before_record:?}");
    let positions = (
        position(app, "appointment").await,
        position(app, "record").await,
    );
    stop_read_model_services(app, services).await;

    // Corrupt one read-model and empty the other (statements both backends run).
    let db = TestDb::open(&app.databases, "appointment").await;
    for sql in [
        "DELETE FROM directory_patients WHERE id IN (SELECT id FROM directory_patients ORDER BY id LIMIT 1)",
        "UPDATE directory_staff SET name = 'Someone Else', deleted = TRUE",
        "INSERT INTO directory_patients VALUES ('00000000-0000-7000-8000-000000000000', 'Ghost', FALSE, 9)",
    ] {
        db.execute(sql).await;
    }
    db.close().await;
    let db = TestDb::open(&app.databases, "record").await;
    for sql in [
        "DELETE FROM directory_patients",
        "DELETE FROM directory_staff",
        "DELETE FROM known_appointments",
        "DELETE FROM read_model_position",
    ] {
        db.execute(sql).await;
    }
    db.close().await;
    assert_ne!(read_models(app, "appointment").await, before_appointment);

    for service in ["appointment", "record"] {
        let output = hospital_in(app, &["replay", service]).await;
        assert!(output.status.success(), "{}", stderr(&output));
        let printed = stdout(&output);
        assert!(
            printed.contains("replayed ") && printed.contains(" events/s)"),
            "{printed}"
        );
    }
    assert_eq!(read_models(app, "appointment").await, before_appointment);
    assert_eq!(read_models(app, "record").await, before_record);
    // The position is the last replayed event: the durable consumer skips what it redelivers.
    assert_eq!(
        (
            position(app, "appointment").await,
            position(app, "record").await
        ),
        positions
    );

    // Back up, the services go on from there.
    let _services = start_read_model_services(app).await;
    let late = clinic.patient("Late Arrival").await;
    let appointment = clinic.booked(&late, &at(3, 9, 0)).await;
    assert_eq!(appointment["status"], "booked");
    wait_until_caught_up(app).await;
    assert_eq!(
        read_models(app, "appointment").await[0].len(),
        before_appointment[0].len() + 1
    );
}

#[tokio::test]
async fn a_poison_event_is_parked_and_the_consumer_goes_on() {
    let (clinic, services) = system_with_history().await;
    let app = &clinic.app;
    let js = app.publisher_of("patient").await;
    let publish = |subject: String, payload: Vec<u8>| {
        let js = js.clone();
        async move {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", uuid::Uuid::now_v7().to_string().as_str());
            js.publish_with_headers(subject, headers, payload.into())
                .await
                .unwrap()
                .await
                .unwrap()
                .sequence
        }
    };
    let id = uuid::Uuid::now_v7();
    let subject = format!("hospital.events.patient.{id}.created");
    let garbage = publish(subject.clone(), b"this is not json".to_vec()).await;
    let event_id = uuid::Uuid::now_v7();
    let undecodable = json!({
        "event_id": event_id, "type": "patient.created", "aggregate": "patient",
        "aggregate_id": id, "aggregate_version": 1, "occurred_at": "2026-01-01T00:00:00Z",
        "actor": {"id": "system", "role": "system"}, "correlation_id": null,
        "data": {"not": "a patient"}
    });
    let bad_data = publish(subject.clone(), serde_json::to_vec(&undecodable).unwrap()).await;

    // A good event after them is applied: the consumer is not blocked.
    let good = clinic.patient("After The Poison").await;
    let appointment = clinic.booked(&good, &at(4, 9, 0)).await;
    assert_eq!(appointment["status"], "booked");
    wait_until_caught_up(app).await;

    for service in ["appointment", "record"] {
        let db = TestDb::open(&app.databases, service).await;
        // The payload is text on SQLite, the bytes as received (bytea) on PostgreSQL.
        let parked: Vec<(i64, String, Option<String>, String, String)> = match &db {
            TestDb::Sqlite(pool) => sqlx::query_as(
                "SELECT stream_sequence, subject, event_id, error, payload FROM read_model_parked
                 ORDER BY stream_sequence",
            )
            .fetch_all(pool)
            .await,
            TestDb::Postgres(pool) => sqlx::query_as(
                "SELECT stream_sequence, subject, event_id, error, convert_from(payload, 'UTF8')
                 FROM read_model_parked ORDER BY stream_sequence",
            )
            .fetch_all(pool)
            .await,
        }
        .unwrap();
        assert_eq!(parked.len(), 2, "{service}: {parked:?}");
        assert_eq!(
            (parked[0].0, parked[1].0),
            (garbage as i64, bad_data as i64)
        );
        assert_eq!(parked[0].1, subject);
        assert!(
            parked[0].3.contains("not an event envelope"),
            "{:?}",
            parked[0]
        );
        assert_eq!(parked[0].4, "this is not json", "the payload is kept");
        assert_eq!(parked[1].2.as_deref(), Some(event_id.to_string().as_str()));
        assert!(
            parked[1].3.contains("does not carry a patient"),
            "{:?}",
            parked[1]
        );
        let known: Option<(i64,)> = db
            .by_id(
                "SELECT version FROM directory_patients WHERE id = $1",
                good.parse().unwrap(),
            )
            .await;
        assert_eq!(known, Some((1,)), "{service} applied the good event");
        db.close().await;
    }

    // `hospital events stats` reports them.
    let stats = hospital_in(app, &["events", "stats"]).await;
    assert!(stats.status.success(), "{}", stderr(&stats));
    let printed = stdout(&stats);
    assert!(
        printed.contains("appointment-read-model") && printed.contains("parked"),
        "{printed}"
    );

    // A replay tries them again; they still fail, so they are parked again, not lost.
    stop_read_model_services(app, services).await;
    let output = hospital_in(app, &["replay", "appointment"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("2 events could not be applied"),
        "{}",
        stdout(&output)
    );
    let db = TestDb::open(&app.databases, "appointment").await;
    assert_eq!(db.number("SELECT COUNT(*) FROM read_model_parked").await, 2);
}
