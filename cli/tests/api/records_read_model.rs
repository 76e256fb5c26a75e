//! The record service's read-model of patients and staff: idempotent when an event arrives
//! twice, and caught up from its stored position after time offline.

use std::time::Duration;

use kit::runtime::Component;
use record_service::RecordService;
use reqwest::Method;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::backend::TestDb;
use crate::helpers::{Parts, TestApp, patient_body, record_config, spawn_app, spawn_app_with};
use crate::records::{create_record, invalid_fields, note, send};

/// The record service's own database, as an operator would inspect it.
pub async fn record_database(app: &TestApp) -> TestDb {
    TestDb::open(&app.databases, "record").await
}

/// The directory row of a patient: (deleted, version).
async fn directory_row(db: &TestDb, id: &Value) -> Option<(bool, i64)> {
    db.by_id(
        "SELECT deleted, version FROM directory_patients WHERE id = $1",
        id.as_str().unwrap().parse().unwrap(),
    )
    .await
}

/// Waits until the record read-model has applied the stream up to `sequence`.
async fn wait_until_applied(db: &TestDb, sequence: u64) {
    for _ in 0..200 {
        let position = db
            .number(
                "SELECT COALESCE(MAX(stream_sequence), -1) FROM read_model_position
                 WHERE consumer = 'record-read-model'",
            )
            .await;
        if position >= 0 && position as u64 >= sequence {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the record read-model did not reach sequence {sequence}");
}

#[tokio::test]
async fn the_same_patient_event_delivered_twice_changes_nothing() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let patient = app
        .create_patient(&token, patient_body("Delivered Twice"))
        .await;
    let path = format!("/api/patients/{}", patient["id"].as_str().unwrap());
    assert_eq!(
        send(&app, Method::DELETE, &path, &token, None)
            .await
            .status(),
        204
    );
    let db = record_database(&app).await;
    let events = app
        .events(&format!(
            "hospital.events.patient.{}.>",
            patient["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(events.len(), 2);

    // Both events again, as new stream messages (no Nats-Msg-Id, so the stream keeps them):
    // the delete once more, then the older create arriving late.
    let js = app.publisher_of("patient").await;
    let mut last = 0;
    for (subject, event) in [&events[1], &events[0]] {
        let payload = serde_json::to_vec(event).unwrap();
        let ack = js
            .publish(subject.clone(), payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
        last = ack.sequence;
    }
    wait_until_applied(&db, last).await;
    assert_eq!(directory_row(&db, &patient["id"]).await, Some((true, 2)));
    let body = note(&patient["id"], "Still gone", "2026-01-01T09:00:00Z");
    let doctor = app.doctor_token().await;
    let response = send(&app, Method::POST, "/api/records", &doctor, Some(&body)).await;
    assert_eq!(
        invalid_fields(response).await,
        [("patient_id".into(), "the patient has been deleted".into())]
    );
}

/// Starts a record service on the app's record database, and waits until it answers.
async fn start_record_service(app: &TestApp) -> CancellationToken {
    let config = record_config(&app.nats_server, &app.databases);
    let service = RecordService::build(config)
        .await
        .expect("record service starts");
    let stop = app.run_component(service);
    for _ in 0..200 {
        let ping = app.nats.request("$SRV.PING.record", "".into()).await;
        if ping.is_ok() {
            return stop;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the record service did not start");
}

/// Waits until no record service answers any more.
async fn wait_until_stopped(app: &TestApp) {
    for _ in 0..200 {
        let ping = tokio::time::timeout(
            Duration::from_millis(200),
            app.nats.request("$SRV.PING.record", "".into()),
        )
        .await;
        if !matches!(ping, Ok(Ok(_))) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the record service did not stop");
}

#[tokio::test]
async fn a_record_read_model_that_was_offline_catches_up_when_it_returns() {
    let app = spawn_app_with(Parts {
        record: false,
        ..Parts::default()
    })
    .await;
    let token = app.admin_token().await;
    let doctor = app.doctor_token().await;
    // Registered before the record service ever ran: it learns of them from the stream.
    let early = app.create_patient(&token, patient_body("Early Bird")).await;
    let stop = start_record_service(&app).await;
    let early_note = note(&early["id"], "First visit", "2026-01-01T09:00:00Z");
    let kept = create_record(&app, &doctor, &early_note).await;

    stop.cancel();
    wait_until_stopped(&app).await;
    // While it is offline: the early patient is deleted, a new one registered. Stream order
    // matters below: the new patient comes after the delete.
    let path = format!("/api/patients/{}", early["id"].as_str().unwrap());
    assert_eq!(
        send(&app, Method::DELETE, &path, &token, None)
            .await
            .status(),
        204
    );
    let late = app.create_patient(&token, patient_body("Late Comer")).await;

    let _again = start_record_service(&app).await;
    // Unknown at first: the service waits until it has caught up, then accepts...
    let late_note = note(
        &late["id"],
        "Registered while we were away",
        "2026-01-02T09:00:00Z",
    );
    create_record(&app, &doctor, &late_note).await;
    // ...and by then it has also seen the delete that came before.
    let response = send(
        &app,
        Method::POST,
        "/api/records",
        &doctor,
        Some(&early_note),
    )
    .await;
    assert_eq!(
        invalid_fields(response).await,
        [("patient_id".into(), "the patient has been deleted".into())]
    );
    // The deleted patient's existing record is kept.
    let record_path = format!("/api/records/{}", kept["id"].as_str().unwrap());
    let read: Value = send(&app, Method::GET, &record_path, &doctor, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["status"], "active");
    let db = record_database(&app).await;
    assert_eq!(directory_row(&db, &early["id"]).await, Some((true, 2)));
}
