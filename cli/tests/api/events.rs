//! Every write puts exactly one event, with the documented subject and envelope, into the stream.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{patient_body, spawn_app};

#[tokio::test]
async fn each_patient_write_publishes_one_event_with_the_full_state() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let patient = app
        .create_patient(&token, patient_body("Mary Seacole"))
        .await;
    let id = patient["id"].as_str().unwrap().to_owned();
    let path = format!("/api/patients/{id}");
    app.api(Method::PUT, &path, &token)
        .json(&patient_body("Mary Jane Seacole"))
        .send()
        .await
        .unwrap();
    // An update that changes nothing is no change: no new version, no event.
    app.api(Method::PUT, &path, &token)
        .json(&patient_body("Mary Jane Seacole"))
        .send()
        .await
        .unwrap();
    app.api(Method::DELETE, &path, &token)
        .header("X-Request-Id", "req-delete-1")
        .send()
        .await
        .unwrap();

    let events = app.events(&format!("hospital.events.patient.{id}.>")).await;
    let subjects: Vec<&str> = events.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        subjects,
        [
            format!("hospital.events.patient.{id}.created"),
            format!("hospital.events.patient.{id}.updated"),
            format!("hospital.events.patient.{id}.deleted"),
        ]
    );
    let versions: Vec<i64> = events.iter().map(|(_, e)| e.aggregate_version).collect();
    assert_eq!(versions, [1, 2, 3]);
    let (_, created) = &events[0];
    assert_eq!(created.event_type, "patient.created");
    assert_eq!(created.aggregate_id.to_string(), id);
    assert_eq!(created.data["name"], "Mary Seacole");
    assert_eq!(created.data["mrn"], patient["mrn"]);
    assert_eq!(created.actor.role, "admin");
    assert_eq!(created.event_id.get_version_num(), 7);
    let (_, deleted) = &events[2];
    assert!(deleted.data["deleted_at"].is_string());
    assert_eq!(deleted.correlation_id.as_deref(), Some("req-delete-1"));
}

#[tokio::test]
async fn staff_events_never_carry_a_password_or_its_hash() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let body = json!({"name": "Dr Kelso", "role": "doctor", "username": "bkelso", "password": "a secret password"});
    app.api(Method::POST, "/api/staff", &token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let events = app.events("hospital.events.staff.>").await;
    // The bootstrap admin and Dr Kelso.
    assert_eq!(events.len(), 2);
    for (_, event) in &events {
        let text = serde_json::to_string(event).unwrap();
        assert!(
            !text.contains("password") && !text.contains("argon2"),
            "{text}"
        );
    }
    assert_eq!(events[1].1.data["username"], "bkelso");
}

#[tokio::test]
async fn rejected_writes_publish_nothing() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let bad = app
        .api(Method::POST, "/api/patients", &token)
        .json(&json!({"name": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    assert!(app.events("hospital.events.patient.>").await.is_empty());
}
