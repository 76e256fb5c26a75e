//! Writing medical records through the gateway: who may write, and the patient, appointment
//! and clinical values checked against the record service's own read-model. Amendments and
//! the timeline are in `records_history`, the read-model's own behaviour in `records_read_model`.
//! The client helpers here are shared by those modules.

use async_nats::HeaderMap;
use chrono::{TimeZone, Utc};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use shared_events::appointment::{Appointment, AppointmentStatus};
use shared_events::headers::{ACTOR_ID, ACTOR_ROLE, MSG_ID};
use shared_events::{Actor, Aggregate, EventEnvelope};
use uuid::Uuid;

use crate::helpers::{TestApp, patient_body, spawn_app};

/// A note about `patient_id`, observed at `recorded_at`.
pub fn note(patient_id: &Value, title: &str, recorded_at: &str) -> Value {
    json!({"patient_id": patient_id, "kind": "note", "title": title,
           "body": "Seen on the ward round.", "recorded_at": recorded_at})
}

pub async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> Response {
    let request = app.api(method, path, token);
    let request = match body {
        Some(body) => request.json(body),
        None => request,
    };
    request.send().await.unwrap()
}

/// Writes a record and returns it, asserting the 201.
pub async fn create_record(app: &TestApp, token: &str, body: &Value) -> Value {
    let response = send(app, Method::POST, "/api/records", token, Some(body)).await;
    assert_eq!(response.status(), 201, "create record {body}");
    response.json().await.unwrap()
}

/// The fields a 422 names, sorted, with their messages.
pub async fn invalid_fields(response: Response) -> Vec<(String, String)> {
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    let mut fields: Vec<(String, String)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().into(),
                e["message"].as_str().unwrap().into(),
            )
        })
        .collect();
    fields.sort();
    fields
}

/// Publishes an appointment event as the appointment service would, so these tests do not
/// depend on its booking rules.
async fn publish_appointment(app: &TestApp, patient_id: &Value) -> Uuid {
    let start = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
    let appointment = Appointment {
        id: Uuid::now_v7(),
        patient_id: serde_json::from_value(patient_id.clone()).unwrap(),
        doctor_id: Uuid::now_v7(),
        start,
        end: start + chrono::Duration::minutes(30),
        duration_minutes: 30,
        reason: Some("Asthma review".into()),
        status: AppointmentStatus::Booked,
        notes: None,
        cancellation_reason: None,
        version: 1,
        created_at: start,
        updated_at: start,
    };
    let event = EventEnvelope {
        event_id: Uuid::now_v7(),
        event_type: "appointment.created".into(),
        aggregate: Aggregate::Appointment,
        aggregate_id: appointment.id,
        aggregate_version: 1,
        occurred_at: start,
        actor: Actor::system(),
        correlation_id: None,
        data: &appointment,
    };
    let mut headers = HeaderMap::new();
    headers.insert(MSG_ID, event.event_id.to_string().as_str());
    let payload = serde_json::to_vec(&event).unwrap();
    app.publisher_of("appointment")
        .await
        .publish_with_headers(event.subject(), headers, payload.into())
        .await
        .unwrap()
        .await
        .unwrap();
    appointment.id
}

#[tokio::test]
async fn records_need_a_known_patient_who_is_not_deleted() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let doctor = app.doctor_token().await;
    let unknown = json!(Uuid::now_v7());
    let response = send(
        &app,
        Method::POST,
        "/api/records",
        &doctor,
        Some(&note(&unknown, "Ghost", "2026-01-01T09:00:00Z")),
    )
    .await;
    assert_eq!(
        invalid_fields(response).await,
        [("patient_id".into(), "no such patient".into())]
    );

    let patient = app
        .create_patient(&token, patient_body("Gone Patient"))
        .await;
    let path = format!("/api/patients/{}", patient["id"].as_str().unwrap());
    assert_eq!(
        send(&app, Method::DELETE, &path, &token, None)
            .await
            .status(),
        204
    );
    // At once: the record service catches up with the delete before it decides.
    let body = note(&patient["id"], "Too late", "2026-01-01T09:00:00Z");
    let response = send(&app, Method::POST, "/api/records", &doctor, Some(&body)).await;
    assert_eq!(
        invalid_fields(response).await,
        [("patient_id".into(), "the patient has been deleted".into())]
    );
}

#[tokio::test]
async fn a_record_written_right_after_its_patient_is_registered_is_accepted() {
    let app = spawn_app().await;
    let desk = app.admin_token().await;
    // A nurse records the admission observations.
    let (token, nurse_id) = app.staff_login("nurse").await;
    let patient = app.create_patient(&desk, patient_body("Brand New")).await;
    let body = json!({"patient_id": patient["id"], "kind": "vitals", "title": "Admission obs",
                      "vitals": {"temperature_c": 37.9, "pulse_bpm": 96, "systolic_mmhg": 128,
                                 "diastolic_mmhg": 84, "spo2_percent": 97}});
    let response = send(&app, Method::POST, "/api/records", &token, Some(&body)).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let record: Value = response.json().await.unwrap();
    assert_eq!(record["author_id"], nurse_id.as_str());
    assert_eq!(
        (record["status"].as_str(), record["version"].as_i64()),
        (Some("active"), Some(1))
    );
    assert_eq!(record["vitals"]["pulse_bpm"], 96);
    let path = format!("/api/records/{}", record["id"].as_str().unwrap());
    let read: Value = send(&app, Method::GET, &path, &token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read, record);
}

#[tokio::test]
async fn invalid_clinical_values_are_each_named() {
    let app = spawn_app().await;
    let desk = app.admin_token().await;
    let token = app.doctor_token().await;
    let patient = app.create_patient(&desk, patient_body("Typo Prone")).await;
    let body = json!({"patient_id": patient["id"], "kind": "diagnosis", "title": "Review",
                      "diagnoses": [{"code": "J45.909", "description": "Asthma"}, {"code": "asthma", "description": ""}],
                      "vitals": {"pulse_bpm": 720, "mood": "fine"}, "recorded_at": "2999-01-01T00:00:00Z"});
    let response = send(&app, Method::POST, "/api/records", &token, Some(&body)).await;
    let fields: Vec<String> = invalid_fields(response)
        .await
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(
        fields,
        [
            "diagnoses[1].code",
            "diagnoses[1].description",
            "recorded_at",
            "vitals.mood",
            "vitals.pulse_bpm"
        ]
    );
}
#[tokio::test]
async fn a_record_may_only_name_an_appointment_of_its_own_patient() {
    let app = spawn_app().await;
    let desk = app.admin_token().await;
    let token = app.doctor_token().await;
    let patient = app
        .create_patient(&desk, patient_body("Has Appointment"))
        .await;
    let other = app
        .create_patient(&desk, patient_body("Other Patient"))
        .await;
    let appointment = publish_appointment(&app, &other["id"]).await;

    let mut body = note(&patient["id"], "Clinic letter", "2026-11-25T09:30:00Z");
    body["appointment_id"] = json!(appointment);
    let response = send(&app, Method::POST, "/api/records", &token, Some(&body)).await;
    assert_eq!(
        invalid_fields(response).await,
        [(
            "appointment_id".into(),
            "is an appointment of another patient".into()
        )]
    );
    body["appointment_id"] = json!(Uuid::now_v7());
    let response = send(&app, Method::POST, "/api/records", &token, Some(&body)).await;
    assert_eq!(
        invalid_fields(response).await,
        [("appointment_id".into(), "no such appointment".into())]
    );

    body["patient_id"] = other["id"].clone();
    body["appointment_id"] = json!(appointment);
    let record = create_record(&app, &token, &body).await;
    assert_eq!(record["appointment_id"], json!(appointment));
    let of_appointment: Vec<Value> = send(
        &app,
        Method::GET,
        &format!("/api/records?appointment_id={appointment}"),
        &token,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(of_appointment.len(), 1);
}

#[tokio::test]
async fn only_a_known_staff_member_writes_records() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let patient = app.create_patient(&token, patient_body("Protected")).await;
    let payload =
        json!({"fields": note(&patient["id"], "Forged", "2026-11-25T09:30:00Z")}).to_string();
    // Straight to the service, bypassing the gateway's checks (with the gateway's credentials:
    // only the gateway may send commands).
    let gateway = app.nats_as("gateway").await;
    for actor in [Uuid::now_v7().to_string(), "system".to_owned()] {
        let mut headers = HeaderMap::new();
        headers.insert(ACTOR_ID, actor.as_str());
        headers.insert(ACTOR_ROLE, "doctor");
        let reply = gateway
            .request_with_headers("hospital.record.create", headers, payload.clone().into())
            .await
            .unwrap();
        let error = kit::command::error_from_reply(&reply).expect("an error reply");
        assert_eq!(error.code.http_status(), 403, "{actor}");
        assert_eq!(
            error.message,
            "only a staff member can write medical records"
        );
    }
}
