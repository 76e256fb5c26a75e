//! Safe retries: an `Idempotency-Key` on `POST`, `PUT` and `DELETE`. A repeat with the same key
//! and body gets the original status and body (byte for byte) and makes no second change or
//! event; the same key with a different body is a 422; a key is its caller's own; concurrent
//! repeats make one change; keys live in the service's database (they survive a restart) and
//! are purged once older than the retention.

use std::time::Duration;

use futures::future::join_all;
use kit::database::Database;
use kit::runtime::Component;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::appointments::{at, open_clinic};
use crate::backend::count_rows;
use crate::helpers::{Parts, TestApp, patient_body, patient_config, spawn_app, spawn_app_with};
use crate::records::note;

/// What a client sees of an answer: status, the headers a retry relies on, the exact body.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    status: u16,
    etag: Option<String>,
    location: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn id(&self) -> String {
        self.json()["id"].as_str().expect("an id").to_owned()
    }
}

/// Sends `method path` with `body` (if any), an `Idempotency-Key` (if any) and an `If-Match`
/// (if any).
async fn send(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    key: Option<&str>,
    if_match: Option<i64>,
    body: Option<&Value>,
) -> Answer {
    let mut request = app.api(method, path, token);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    if let Some(version) = if_match {
        request = request.header("If-Match", format!("\"{version}\""));
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    Answer {
        status: response.status().as_u16(),
        etag: header("etag"),
        location: header("location"),
        content_type: header("content-type"),
        body: response.bytes().await.unwrap().to_vec(),
    }
}

/// Sends the same request twice and asserts the repeat is answered exactly as the first.
#[allow(clippy::too_many_arguments)]
async fn twice(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    key: &str,
    if_match: Option<i64>,
    body: Option<&Value>,
    expected_status: u16,
) -> Answer {
    let first = send(app, token, method.clone(), path, Some(key), if_match, body).await;
    assert_eq!(
        first.status,
        expected_status,
        "{method} {path}: {}",
        String::from_utf8_lossy(&first.body)
    );
    let repeat = send(app, token, method.clone(), path, Some(key), if_match, body).await;
    assert_eq!(
        repeat, first,
        "the repeat of {method} {path} is answered as the first"
    );
    first
}

/// How many events one aggregate has in the stream.
async fn events_of(app: &TestApp, aggregate: &str, id: &str) -> Vec<String> {
    app.events(&format!("hospital.events.{aggregate}.{id}.>"))
        .await
        .into_iter()
        .map(|(_, event)| event.event_type)
        .collect()
}

/// Logs in a second administrator and returns their token.
async fn second_admin(app: &TestApp, token: &str) -> String {
    let created = send(
        app,
        token,
        Method::POST,
        "/api/staff",
        None,
        None,
        Some(&json!({"name": "Second Admin", "role": "admin",
                     "username": "admin2", "password": "another long password"})),
    )
    .await;
    assert_eq!(created.status, 201);
    let response = app.login("admin2", "another long password").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_repeated_patient_post_replays_the_201_without_a_second_patient() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let body = patient_body("Retry Rita");
    let first = twice(
        &app,
        &token,
        Method::POST,
        "/api/patients",
        "create-rita-1",
        None,
        Some(&body),
        201,
    )
    .await;
    assert!(first.location.is_some());
    assert_eq!(
        events_of(&app, "patient", &first.id()).await,
        ["patient.created"]
    );
    assert_eq!(
        app.events("hospital.events.patient.*.created").await.len(),
        1
    );
    // Without a key, the same body is a new patient.
    let again = send(
        &app,
        &token,
        Method::POST,
        "/api/patients",
        None,
        None,
        Some(&body),
    )
    .await;
    assert_eq!(again.status, 201);
    assert_ne!(again.id(), first.id());
}

#[tokio::test]
async fn a_repeated_patient_put_or_delete_replays_without_a_second_change() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let patient = app.create_patient(&token, patient_body("Ann Update")).await;
    let id = patient["id"].as_str().unwrap();
    let path = format!("/api/patients/{id}");

    let mut changed = patient_body("Ann Updated");
    changed["phone"] = json!("+1 555 0199");
    let updated = twice(
        &app,
        &token,
        Method::PUT,
        &path,
        "put-ann",
        Some(1),
        Some(&changed),
        200,
    )
    .await;
    assert_eq!(updated.json()["version"], 2);
    assert_eq!(updated.etag.as_deref(), Some("\"2\""));

    twice(
        &app,
        &token,
        Method::DELETE,
        &path,
        "delete-ann",
        Some(2),
        None,
        204,
    )
    .await;
    // The replay is not a second attempt: without the key the patient is already gone.
    let plain = send(&app, &token, Method::DELETE, &path, None, Some(2), None).await;
    assert_eq!(plain.status, 404);
    assert_eq!(
        events_of(&app, "patient", id).await,
        ["patient.created", "patient.updated", "patient.deleted"]
    );
}

#[tokio::test]
async fn the_same_key_with_a_different_request_is_a_422_problem() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let first = send(
        &app,
        &token,
        Method::POST,
        "/api/patients",
        Some("reused"),
        None,
        Some(&patient_body("Kay Once")),
    )
    .await;
    assert_eq!(first.status, 201);

    let other_body = send(
        &app,
        &token,
        Method::POST,
        "/api/patients",
        Some("reused"),
        None,
        Some(&patient_body("Kay Twice")),
    )
    .await;
    assert_eq!(other_body.status, 422);
    assert_eq!(
        other_body.content_type.as_deref(),
        Some("application/problem+json")
    );
    let problem = other_body.json();
    assert_eq!(problem["status"], 422);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key was already used for a different request"),
        "{problem}"
    );
    // Another action of the same service with the key is a different request too.
    let path = format!("/api/patients/{}", first.id());
    let other_action = send(
        &app,
        &token,
        Method::DELETE,
        &path,
        Some("reused"),
        Some(1),
        None,
    )
    .await;
    assert_eq!(other_action.status, 422);
    assert_eq!(app.events("hospital.events.patient.>").await.len(), 1);
}

#[tokio::test]
async fn a_failed_request_stores_nothing_so_a_corrected_retry_runs() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let invalid = json!({"name": "", "birth_date": "not a date", "sex": "female"});
    let refused = send(
        &app,
        &token,
        Method::POST,
        "/api/patients",
        Some("fix-me"),
        None,
        Some(&invalid),
    )
    .await;
    assert_eq!(refused.status, 422);
    let corrected = twice(
        &app,
        &token,
        Method::POST,
        "/api/patients",
        "fix-me",
        None,
        Some(&patient_body("Corrected Carl")),
        201,
    )
    .await;
    assert_eq!(corrected.json()["name"], "Corrected Carl");
}

#[tokio::test]
async fn a_key_never_replays_another_users_reply() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let other = second_admin(&app, &token).await;
    let body = patient_body("Shared Key");
    let mine = send(
        &app,
        &token,
        Method::POST,
        "/api/patients",
        Some("shared"),
        None,
        Some(&body),
    )
    .await;
    let theirs = send(
        &app,
        &other,
        Method::POST,
        "/api/patients",
        Some("shared"),
        None,
        Some(&body),
    )
    .await;
    assert_eq!((mine.status, theirs.status), (201, 201));
    assert_ne!(mine.id(), theirs.id(), "each caller's key is their own");
    assert_eq!(
        app.events("hospital.events.patient.*.created").await.len(),
        2
    );
}

#[tokio::test]
async fn concurrent_requests_with_one_key_make_one_change_and_get_one_answer() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let body = patient_body("Many Clicks");
    let answers = join_all((0..10).map(|_| {
        send(
            &app,
            &token,
            Method::POST,
            "/api/patients",
            Some("double-click"),
            None,
            Some(&body),
        )
    }))
    .await;
    assert_eq!(answers[0].status, 201, "{:?}", answers[0].json());
    for answer in &answers {
        assert_eq!(answer, &answers[0]);
    }
    assert_eq!(
        app.events("hospital.events.patient.*.created").await.len(),
        1
    );
}

#[tokio::test]
async fn concurrent_bookings_with_one_key_take_one_slot_and_all_get_the_201() {
    let clinic = open_clinic().await;
    let patient = clinic.patient("Busy Bee").await;
    let body = json!({"patient_id": patient, "doctor_id": clinic.doctor, "start": at(3, 9, 0)});
    let answers = join_all((0..10).map(|_| {
        send(
            &clinic.app,
            &clinic.token,
            Method::POST,
            "/api/appointments",
            Some("book-once"),
            None,
            Some(&body),
        )
    }))
    .await;
    // Those that lost the race failed on the slot or the key, and are answered with the winner's reply.
    assert_eq!(answers[0].status, 201, "{:?}", answers[0].json());
    for answer in &answers {
        assert_eq!(answer, &answers[0]);
    }
    let created = clinic
        .app
        .events("hospital.events.appointment.*.created")
        .await;
    assert_eq!(created.len(), 1);
}

#[tokio::test]
async fn staff_writes_replay_without_a_password_hash_in_the_stored_reply() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let body = json!({"name": "Nurse Joy", "role": "nurse", "username": "njoy",
                      "password": "a long enough password"});
    let created = twice(
        &app,
        &token,
        Method::POST,
        "/api/staff",
        "staff-joy",
        None,
        Some(&body),
        201,
    )
    .await;
    let id = created.id();
    let text = String::from_utf8(created.body.clone()).unwrap();
    assert!(
        !text.contains("password") && !text.contains("argon2"),
        "{text}"
    );
    let path = format!("/api/staff/{id}");
    let changed = json!({"name": "Nurse Joy", "role": "nurse", "phone": "+1 555 0111",
                         "username": "njoy"});
    twice(
        &app,
        &token,
        Method::PUT,
        &path,
        "staff-joy-put",
        Some(1),
        Some(&changed),
        200,
    )
    .await;
    twice(
        &app,
        &token,
        Method::DELETE,
        &path,
        "staff-joy-del",
        Some(2),
        None,
        204,
    )
    .await;
    assert_eq!(
        events_of(&app, "staff", &id).await,
        ["staff.created", "staff.updated", "staff.deleted"]
    );
}

#[tokio::test]
async fn appointment_writes_replay_without_a_second_change() {
    let clinic = open_clinic().await;
    let (app, token) = (&clinic.app, clinic.token.as_str());
    let patient = clinic.patient("Repeat Visit").await;
    let body = json!({"patient_id": patient, "doctor_id": clinic.doctor, "start": at(4, 10, 0)});
    let booked = twice(
        app,
        token,
        Method::POST,
        "/api/appointments",
        "book",
        None,
        Some(&body),
        201,
    )
    .await;
    let id = booked.id();
    let path = format!("/api/appointments/{id}");
    let mut moved = booked.json();
    moved["start"] = json!(at(4, 11, 0));
    moved["duration_minutes"] = json!(45);
    let revised = twice(
        app,
        token,
        Method::PUT,
        &path,
        "move",
        Some(1),
        Some(&moved),
        200,
    )
    .await;
    assert_eq!(revised.json()["version"], 2);
    twice(
        app,
        token,
        Method::DELETE,
        &path,
        "cancel",
        Some(2),
        None,
        204,
    )
    .await;
    let events = events_of(app, "appointment", &id).await;
    assert_eq!(events.len(), 3, "{events:?}");
}

#[tokio::test]
async fn record_writes_replay_without_a_second_version() {
    let app = spawn_app().await;
    let desk = app.admin_token().await;
    let token = app.doctor_token().await;
    let patient = app
        .create_patient(&desk, patient_body("Chart Holder"))
        .await;
    let body = note(&patient["id"], "Admission", "2026-01-01T09:00:00Z");
    let created = twice(
        &app,
        &token,
        Method::POST,
        "/api/records",
        "record",
        None,
        Some(&body),
        201,
    )
    .await;
    let id = created.id();
    let path = format!("/api/records/{id}");
    let amended = note(
        &patient["id"],
        "Admission (amended)",
        "2026-01-01T09:00:00Z",
    );
    twice(
        &app,
        &token,
        Method::PUT,
        &path,
        "amend",
        Some(1),
        Some(&amended),
        200,
    )
    .await;
    twice(
        &app,
        &token,
        Method::DELETE,
        &path,
        "in-error",
        Some(2),
        None,
        204,
    )
    .await;
    assert_eq!(
        events_of(&app, "record", &id).await,
        ["record.created", "record.amended", "record.deleted"]
    );
    let history = send(
        &app,
        &token,
        Method::GET,
        &format!("{path}/history"),
        None,
        None,
        None,
    )
    .await;
    assert_eq!(history.json().as_array().unwrap().len(), 3);
}

/// Starts a patient service on the app's patient database, and waits until it answers.
async fn start_patient_service(app: &TestApp) -> CancellationToken {
    // The stopped instance may still be closing its database (it holds the single-writer lock
    // until then): try again for a moment.
    let mut attempts = 0;
    let service = loop {
        let config = patient_config(&app.nats_server, &app.databases);
        match patient_service::PatientService::build(config).await {
            Ok(service) => break service,
            Err(error) if attempts < 100 => {
                attempts += 1;
                tracing::debug!(%error, "patient service not started yet");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("patient service starts: {error}"),
        }
    };
    let stop = app.run_component(service);
    for _ in 0..200 {
        if app
            .nats
            .request("$SRV.PING.patient", "".into())
            .await
            .is_ok()
        {
            return stop;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the patient service did not start");
}

async fn stop_patient_service(app: &TestApp, stop: CancellationToken) {
    stop.cancel();
    for _ in 0..200 {
        let ping = tokio::time::timeout(
            Duration::from_millis(200),
            app.nats.request("$SRV.PING.patient", "".into()),
        )
        .await;
        if !matches!(ping, Ok(Ok(_))) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the patient service did not stop");
}

#[tokio::test]
async fn keys_survive_a_restart_and_are_purged_after_the_retention() {
    let app = spawn_app_with(Parts {
        patient: false,
        ..Parts::default()
    })
    .await;
    let token = app.admin_token().await;
    let body = patient_body("Restart Rosa");
    // The same registration, with the same key, each time.
    let register = async || {
        send(
            &app,
            &token,
            Method::POST,
            "/api/patients",
            Some("across-restarts"),
            None,
            Some(&body),
        )
        .await
    };
    let stop = start_patient_service(&app).await;
    let first = register().await;
    assert_eq!(first.status, 201);
    stop_patient_service(&app, stop).await;

    // A new process over the same database: the key is in the database, not in memory.
    let stop = start_patient_service(&app).await;
    let repeat = register().await;
    assert_eq!(repeat, first);
    assert_eq!(
        app.events("hospital.events.patient.*.created").await.len(),
        1
    );
    stop_patient_service(&app, stop).await;

    // Two days later (the key's clock turned back): the next start purges it.
    let db = app
        .databases
        .open_beside(patient_service::store::MIGRATIONS)
        .await;
    let two_days_ago = chrono::Utc::now() - chrono::Duration::hours(48);
    const AGE_KEYS: &str = "UPDATE idempotency_keys SET created_at = $1";
    match &db {
        Database::Sqlite { pool, .. } => sqlx::query(AGE_KEYS)
            .bind(kit::events::format_timestamp(two_days_ago))
            .execute(pool)
            .await
            .map(drop),
        Database::Postgres(pool) => sqlx::query(AGE_KEYS)
            .bind(two_days_ago)
            .execute(pool)
            .await
            .map(drop),
    }
    .unwrap();
    let _stop = start_patient_service(&app).await;
    let mut left = 1;
    for _ in 0..200 {
        left = count_rows(&db, "idempotency_keys").await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(left, 0, "the expired key is purged");
    // The key is free again: the same request is a new one.
    let after = register().await;
    assert_eq!(after.status, 201);
    assert_ne!(after.id(), first.id());
}
