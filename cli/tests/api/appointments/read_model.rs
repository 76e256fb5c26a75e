//! The appointment service's read-model of patients and staff: deletes cascade to future
//! bookings, a redelivered event changes nothing, and a read-model that was offline catches up.

use std::time::Duration;

use appointment_service::AppointmentService;
use appointment_service::read_model::PeopleProjection;
use async_nats::HeaderMap;
use kit::read_model::Projection;
use kit::runtime::Component;
use reqwest::Method;
use serde_json::{Value, json};
use shared_events::EventEnvelope;
use sqlx::{Postgres, Sqlite};

use super::{Clinic, at, open_clinic};
use crate::backend::TestDb;
use crate::helpers::{Parts, TestApp, appointment_config, spawn_app_with};

/// The appointment service's own database, opened beside the running service.
async fn appointment_db(app: &TestApp) -> TestDb {
    TestDb::open(&app.databases, "appointment").await
}

/// Waits until at least `count` appointments have been cancelled, and returns those events.
async fn cancellations(app: &TestApp, count: usize) -> Vec<EventEnvelope> {
    for _ in 0..40 {
        let events: Vec<EventEnvelope> = app
            .events("hospital.events.appointment.*.cancelled")
            .await
            .into_iter()
            .map(|(_, event)| event)
            .collect();
        if events.len() >= count {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {count} cancellations were published");
}

/// The one event of `subject` (a patient's or staff member's `deleted`, say).
async fn the_event(app: &TestApp, subject: &str) -> EventEnvelope {
    let mut events = app.events(subject).await;
    assert_eq!(events.len(), 1, "{subject}");
    events.remove(0).1
}

async fn status_of(clinic: &Clinic, appointment: &Value) -> Value {
    let path = format!("/api/appointments/{}", appointment["id"].as_str().unwrap());
    clinic.call(Method::GET, &path, None).await.1["status"].clone()
}

#[tokio::test]
async fn deleting_a_patient_cancels_their_future_bookings_each_with_its_own_event() {
    let clinic = open_clinic().await;
    let (ada, bob) = (clinic.patient("Ada").await, clinic.patient("Bob").await);
    let first = clinic.booked(&ada, &at(3, 9, 0)).await;
    let second = clinic.booked(&ada, &at(4, 9, 0)).await;
    let arrived = clinic.booked(&ada, &at(5, 9, 0)).await;
    let mut checked_in = arrived.clone();
    checked_in["status"] = json!("checked_in");
    let path = format!("/api/appointments/{}", arrived["id"].as_str().unwrap());
    assert_eq!(
        clinic.call(Method::PUT, &path, Some(checked_in)).await.0,
        200
    );
    let bobs = clinic.booked(&bob, &at(3, 10, 0)).await;

    let (status, _) = clinic
        .call(Method::DELETE, &format!("/api/patients/{ada}"), None)
        .await;
    assert_eq!(status, 204);
    let deleted = the_event(
        &clinic.app,
        &format!("hospital.events.patient.{ada}.deleted"),
    )
    .await;

    let events = cancellations(&clinic.app, 2).await;
    assert_eq!(events.len(), 2, "only the booked ones, once each");
    let mut cancelled: Vec<String> = events.iter().map(|e| e.aggregate_id.to_string()).collect();
    cancelled.sort();
    let mut expected = vec![
        first["id"].as_str().unwrap().to_owned(),
        second["id"].as_str().unwrap().to_owned(),
    ];
    expected.sort();
    assert_eq!(cancelled, expected);
    for event in &events {
        assert_eq!(event.event_type, "appointment.cancelled");
        assert_eq!(event.data["cancellation_reason"], "the patient was deleted");
        assert_eq!(event.data["status"], "cancelled");
        assert_eq!(event.aggregate_version, 2);
        assert_eq!(
            (event.actor.id.as_str(), event.actor.role.as_str()),
            ("system", "system")
        );
        assert_eq!(event.correlation_id, Some(deleted.event_id.to_string()));
    }
    assert_eq!(status_of(&clinic, &first).await, "cancelled");
    assert_eq!(status_of(&clinic, &arrived).await, "checked_in");
    assert_eq!(status_of(&clinic, &bobs).await, "booked");
}

#[tokio::test]
async fn deleting_a_doctor_cancels_their_future_bookings() {
    let clinic = open_clinic().await;
    let patient = clinic.patient("Carla").await;
    let first = clinic.booked(&patient, &at(3, 9, 0)).await;
    let second = clinic.booked(&patient, &at(3, 11, 0)).await;
    let path = format!("/api/staff/{}", clinic.doctor);
    assert_eq!(clinic.call(Method::DELETE, &path, None).await.0, 204);

    let events = cancellations(&clinic.app, 2).await;
    assert_eq!(events.len(), 2);
    for event in &events {
        assert_eq!(event.data["cancellation_reason"], "the doctor was deleted");
    }
    assert_eq!(status_of(&clinic, &first).await, "cancelled");
    assert_eq!(status_of(&clinic, &second).await, "cancelled");
    let (status, problem) = clinic.book(&patient, &at(6, 9, 0)).await;
    assert_eq!(status, 422);
    assert_eq!(
        problem["errors"][0]["message"],
        "the doctor has been deleted"
    );
}

#[tokio::test]
async fn an_event_delivered_twice_changes_nothing() {
    let clinic = open_clinic().await;
    let app = &clinic.app;
    let db = appointment_db(app).await;
    let ada = clinic.patient("Ada").await;
    let booking = clinic.booked(&ada, &at(3, 9, 0)).await;
    clinic
        .call(Method::DELETE, &format!("/api/patients/{ada}"), None)
        .await;
    assert_eq!(cancellations(app, 1).await.len(), 1);

    // The stream hands the same events over again (a republish under a new Nats-Msg-Id): the
    // delete, and the older create after it.
    let js = app.publisher_of("patient").await;
    let mut last_sequence = 0;
    for verb in ["deleted", "created"] {
        let event = the_event(app, &format!("hospital.events.patient.{ada}.{verb}")).await;
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", uuid::Uuid::now_v7().to_string().as_str());
        let payload = serde_json::to_vec(&event).unwrap();
        let ack = js
            .publish_with_headers(event.subject(), headers, payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
        last_sequence = ack.sequence;
    }
    let position = || {
        db.number(
            "SELECT stream_sequence FROM read_model_position WHERE consumer = 'appointment-read-model'",
        )
    };
    for _ in 0..100 {
        if position().await >= last_sequence as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        position().await,
        last_sequence as i64,
        "the copies were consumed"
    );
    let directory: Option<(bool, i64)> = db
        .by_id(
            "SELECT deleted, version FROM directory_patients WHERE id = $1",
            ada.parse().unwrap(),
        )
        .await;
    assert_eq!(
        directory,
        Some((true, 2)),
        "the older create did not bring the patient back"
    );
    assert_eq!(
        cancellations(app, 1).await.len(),
        1,
        "no second cancellation"
    );
    let path = format!("/api/appointments/{}", booking["id"].as_str().unwrap());
    assert_eq!(clinic.call(Method::GET, &path, None).await.1["version"], 2);

    // The projection itself, applied directly twice to a new delete: the second does nothing.
    let bob = clinic.patient("Bob").await;
    let bobs = clinic.booked(&bob, &at(4, 9, 0)).await;
    let mut deleted = the_event(app, &format!("hospital.events.patient.{bob}.created")).await;
    deleted.event_id = uuid::Uuid::now_v7();
    deleted.event_type = "patient.deleted".into();
    deleted.aggregate_version = 2;
    deleted.data["version"] = json!(2);
    deleted.data["deleted_at"] = json!(chrono::Utc::now());
    let mut caused = Vec::new();
    for _ in 0..2 {
        // In a transaction, as the runner applies it, on the service's own backend.
        let cancelled = match &db {
            TestDb::Sqlite(pool) => {
                let mut tx = kit::sqlite::begin_write(pool).await.unwrap();
                let rows = Projection::<Sqlite>::apply(&PeopleProjection, &mut tx, &deleted)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                rows
            }
            TestDb::Postgres(pool) => {
                let mut tx = pool.begin().await.unwrap();
                let rows = Projection::<Postgres>::apply(&PeopleProjection, &mut tx, &deleted)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                rows
            }
        };
        caused.push(cancelled.len());
    }
    assert_eq!(caused, [1, 0]);
    assert_eq!(status_of(&clinic, &bobs).await, "cancelled");
    // Its event waited in the outbox, and the relay publishes it.
    assert_eq!(cancellations(app, 2).await.len(), 2);
}

#[tokio::test]
async fn a_read_model_that_was_offline_catches_up_when_it_comes_back() {
    let app = spawn_app_with(Parts {
        appointment: false,
        record: false,
        ..Parts::default()
    })
    .await;
    let token = app.admin_token().await;
    let clinic = Clinic {
        app,
        token,
        doctor: String::new(),
    };
    let doctor = clinic.staff("Dr Kelso", "doctor").await;
    let kept = clinic.patient("Kept").await;
    let gone = clinic.patient("Gone").await;
    clinic
        .call(Method::DELETE, &format!("/api/patients/{gone}"), None)
        .await;

    let config = appointment_config(&clinic.app.nats_server, &clinic.app.databases);
    let service = AppointmentService::build(config.clone()).await.unwrap();
    let running = clinic.app.run_component(service);
    let clinic = Clinic { doctor, ..clinic };
    let (status, _) = book_when_up(&clinic, &kept, &at(3, 9, 0)).await;
    assert_eq!(status, 201);
    let (status, problem) = clinic.book(&gone, &at(3, 10, 0)).await;
    assert_eq!(
        (status, &problem["errors"][0]["message"]),
        (422, &json!("the patient has been deleted"))
    );

    // Down again while a patient arrives; back, it resumes where it stopped.
    running.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let late = clinic.patient("Late").await;
    let service = AppointmentService::build(config).await.unwrap();
    clinic.app.run_component(service);
    let (status, _) = book_when_up(&clinic, &late, &at(3, 11, 0)).await;
    assert_eq!(status, 201);
    let db = appointment_db(&clinic.app).await;
    let known = db.number("SELECT COUNT(*) FROM directory_patients").await;
    assert_eq!(known, 3);
}

/// Books once the gateway reaches a (re)started appointment service (503 until then).
async fn book_when_up(clinic: &Clinic, patient: &str, start: &str) -> (u16, Value) {
    for _ in 0..100 {
        let (status, body) = clinic.book(patient, start).await;
        if status != 503 {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the appointment service did not come up");
}
