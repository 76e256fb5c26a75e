//! Every cell of the permission matrix, through real HTTP: for each role and route, an allowed
//! call succeeds (2xx) and a refused one is a 403 problem that changes nothing. The expected
//! table is written out here on purpose, apart from the gateway's `MATRIX`, so that a change
//! to the matrix has to be made twice: once in the gateway, once here, deliberately.

use std::sync::atomic::{AtomicI64, Ordering};

use reqwest::Method;
use serde_json::{Value, json};

use crate::appointments::at;
use crate::helpers::{TestApp, patient_body, spawn_app};

const ROLES: [&str; 4] = ["admin", "doctor", "nurse", "receptionist"];

/// Allowed (`Y`) or refused (`N`) for admin, doctor, nurse, receptionist.
const EXPECTED: &[(&str, [char; 4])] = &[
    ("GET /api/patients", ['Y', 'Y', 'Y', 'Y']),
    ("GET /api/patients/{id}", ['Y', 'Y', 'Y', 'Y']),
    ("POST /api/patients", ['Y', 'N', 'N', 'Y']),
    ("PUT /api/patients/{id}", ['Y', 'N', 'N', 'Y']),
    ("DELETE /api/patients/{id}", ['Y', 'N', 'N', 'Y']),
    ("GET /api/staff", ['Y', 'Y', 'Y', 'Y']),
    ("GET /api/staff/{id}", ['Y', 'Y', 'Y', 'Y']),
    ("POST /api/staff", ['Y', 'N', 'N', 'N']),
    ("PUT /api/staff/{id}", ['Y', 'N', 'N', 'N']),
    ("DELETE /api/staff/{id}", ['Y', 'N', 'N', 'N']),
    ("GET /api/appointments", ['Y', 'Y', 'Y', 'Y']),
    ("GET /api/appointments/{id}", ['Y', 'Y', 'Y', 'Y']),
    ("GET /api/patients/{id}/appointments", ['Y', 'Y', 'Y', 'Y']),
    ("GET /api/staff/{id}/appointments", ['Y', 'Y', 'Y', 'Y']),
    (
        "POST /api/appointments (the caller's)",
        ['Y', 'Y', 'N', 'Y'],
    ),
    (
        "POST /api/appointments (another doctor's)",
        ['Y', 'N', 'N', 'Y'],
    ),
    (
        "PUT /api/appointments/{id} (the caller's)",
        ['Y', 'Y', 'N', 'Y'],
    ),
    (
        "PUT /api/appointments/{id} (another doctor's)",
        ['Y', 'N', 'N', 'Y'],
    ),
    (
        "PUT /api/appointments/{id} (the caller's, to another doctor)",
        ['Y', 'N', 'N', 'Y'],
    ),
    (
        "DELETE /api/appointments/{id} (the caller's)",
        ['Y', 'Y', 'N', 'Y'],
    ),
    (
        "DELETE /api/appointments/{id} (another doctor's)",
        ['Y', 'N', 'N', 'Y'],
    ),
    ("GET /api/records", ['N', 'Y', 'Y', 'N']),
    ("GET /api/records/{id}", ['N', 'Y', 'Y', 'N']),
    ("GET /api/records/{id}/history", ['N', 'Y', 'Y', 'N']),
    ("GET /api/patients/{id}/records", ['N', 'Y', 'Y', 'N']),
    ("POST /api/records (vitals)", ['N', 'Y', 'Y', 'N']),
    ("POST /api/records (diagnosis)", ['N', 'Y', 'N', 'N']),
    ("PUT /api/records/{id} (vitals)", ['N', 'Y', 'Y', 'N']),
    ("PUT /api/records/{id} (diagnosis)", ['N', 'Y', 'N', 'N']),
    (
        "PUT /api/records/{id} (vitals into a diagnosis)",
        ['N', 'Y', 'N', 'N'],
    ),
    ("DELETE /api/records/{id} (vitals)", ['N', 'Y', 'Y', 'N']),
    ("DELETE /api/records/{id} (diagnosis)", ['N', 'Y', 'N', 'N']),
    ("GET /api/audit", ['Y', 'N', 'N', 'N']),
];

/// Who is logged in, and what exists before each cell is tried.
struct World {
    app: TestApp,
    /// Token and staff id per role, in [`ROLES`] order.
    logins: Vec<(String, String)>,
    /// A doctor other than the logged-in one.
    other_doctor: String,
    patient: String,
    /// Numbers the half-hour slots, so no two bookings collide.
    slot: AtomicI64,
}

impl World {
    async fn open() -> World {
        let app = spawn_app().await;
        let mut logins = vec![(app.admin_token().await, String::new())];
        for role in &ROLES[1..] {
            logins.push(app.staff_login(role).await);
        }
        let admin = logins[0].0.clone();
        let other_doctor = created(
            &app,
            &admin,
            "/api/staff",
            json!({"name": "Dr Other", "role": "doctor"}),
        )
        .await;
        let patient = created(
            &app,
            &admin,
            "/api/patients",
            patient_body("Matrix Patient"),
        )
        .await;
        World {
            app,
            logins,
            other_doctor,
            patient,
            slot: AtomicI64::new(0),
        }
    }

    fn admin(&self) -> &str {
        &self.logins[0].0
    }

    fn doctor(&self) -> (&str, &str) {
        (&self.logins[1].0, &self.logins[1].1)
    }

    /// An appointment of `doctor` (set up by the admin), as the API shows it.
    async fn appointment(&self, doctor: &str) -> Value {
        let n = self.slot.fetch_add(1, Ordering::Relaxed);
        let body = json!({"patient_id": self.patient, "doctor_id": doctor,
                          "start": at(2 + n / 16, 8 + (n % 16) / 2, 30 * (n % 2))});
        entity(
            &self.app,
            self.admin(),
            Method::POST,
            "/api/appointments",
            body,
        )
        .await
    }

    fn booking(&self, doctor: &str) -> Value {
        let n = self.slot.fetch_add(1, Ordering::Relaxed);
        json!({"patient_id": self.patient, "doctor_id": doctor,
               "start": at(2 + n / 16, 8 + (n % 16) / 2, 30 * (n % 2))})
    }

    fn record_body(&self, kind: &str) -> Value {
        match kind {
            "vitals" => json!({"patient_id": self.patient, "kind": "vitals", "title": "Obs",
                               "vitals": {"pulse_bpm": 72, "temperature_c": 36.8}}),
            _ => json!({"patient_id": self.patient, "kind": kind, "title": "Asthma",
                        "diagnoses": [{"code": "J45.909", "description": "Asthma"}]}),
        }
    }

    /// A record of `kind` written by the doctor.
    async fn record(&self, kind: &str) -> Value {
        let body = self.record_body(kind);
        entity(
            &self.app,
            self.doctor().0,
            Method::POST,
            "/api/records",
            body,
        )
        .await
    }

    /// Sets up what `route` needs and sends it as `token`'s owner; returns the status and body.
    async fn attempt(&self, route: &str, token: &str) -> (u16, Value) {
        let admin = self.admin();
        let doctor_id = self.doctor().1;
        // "The caller's" appointments are the logged-in doctor's; to any other role they are
        // just some doctor's appointments.
        let me = doctor_id;
        let fresh_patient = || async {
            created(
                &self.app,
                admin,
                "/api/patients",
                patient_body("Fresh Patient"),
            )
            .await
        };
        let fresh_staff = || async {
            created(
                &self.app,
                admin,
                "/api/staff",
                json!({"name": "Temp Porter", "role": "nurse"}),
            )
            .await
        };
        let id_of = |v: &Value| v["id"].as_str().unwrap().to_owned();
        let (method, path, body) = match route {
            "GET /api/patients" => (Method::GET, "/api/patients".to_owned(), None),
            "GET /api/patients/{id}" => {
                (Method::GET, format!("/api/patients/{}", self.patient), None)
            }
            "POST /api/patients" => (
                Method::POST,
                "/api/patients".to_owned(),
                Some(patient_body("New Patient")),
            ),
            "PUT /api/patients/{id}" => {
                let id = fresh_patient().await;
                (
                    Method::PUT,
                    format!("/api/patients/{id}"),
                    Some(patient_body("Renamed Patient")),
                )
            }
            "DELETE /api/patients/{id}" => {
                let id = fresh_patient().await;
                (Method::DELETE, format!("/api/patients/{id}"), None)
            }
            "GET /api/staff" => (Method::GET, "/api/staff".to_owned(), None),
            "GET /api/staff/{id}" => (Method::GET, format!("/api/staff/{doctor_id}"), None),
            "POST /api/staff" => (
                Method::POST,
                "/api/staff".to_owned(),
                Some(json!({"name": "New Nurse", "role": "nurse"})),
            ),
            "PUT /api/staff/{id}" => {
                let id = fresh_staff().await;
                (
                    Method::PUT,
                    format!("/api/staff/{id}"),
                    Some(json!({"name": "Renamed Porter", "role": "nurse"})),
                )
            }
            "DELETE /api/staff/{id}" => {
                let id = fresh_staff().await;
                (Method::DELETE, format!("/api/staff/{id}"), None)
            }
            "GET /api/appointments" => (Method::GET, "/api/appointments".to_owned(), None),
            "GET /api/appointments/{id}" => {
                let appointment = self.appointment(doctor_id).await;
                (
                    Method::GET,
                    format!("/api/appointments/{}", id_of(&appointment)),
                    None,
                )
            }
            "GET /api/patients/{id}/appointments" => (
                Method::GET,
                format!("/api/patients/{}/appointments", self.patient),
                None,
            ),
            "GET /api/staff/{id}/appointments" => (
                Method::GET,
                format!("/api/staff/{doctor_id}/appointments"),
                None,
            ),
            "POST /api/appointments (the caller's)" => (
                Method::POST,
                "/api/appointments".to_owned(),
                Some(self.booking(me)),
            ),
            "POST /api/appointments (another doctor's)" => (
                Method::POST,
                "/api/appointments".to_owned(),
                Some(self.booking(&self.other_doctor)),
            ),
            "PUT /api/appointments/{id} (the caller's)"
            | "PUT /api/appointments/{id} (the caller's, to another doctor)" => {
                let mut appointment = self.appointment(me).await;
                appointment["notes"] = json!("bring the referral letter");
                if route.ends_with("to another doctor)") {
                    appointment["doctor_id"] = json!(self.other_doctor);
                }
                (
                    Method::PUT,
                    format!("/api/appointments/{}", id_of(&appointment)),
                    Some(appointment),
                )
            }
            "PUT /api/appointments/{id} (another doctor's)" => {
                let mut appointment = self.appointment(&self.other_doctor).await;
                appointment["notes"] = json!("bring the referral letter");
                (
                    Method::PUT,
                    format!("/api/appointments/{}", id_of(&appointment)),
                    Some(appointment),
                )
            }
            "DELETE /api/appointments/{id} (the caller's)" => {
                let appointment = self.appointment(me).await;
                (
                    Method::DELETE,
                    format!("/api/appointments/{}", id_of(&appointment)),
                    None,
                )
            }
            "DELETE /api/appointments/{id} (another doctor's)" => {
                let appointment = self.appointment(&self.other_doctor).await;
                (
                    Method::DELETE,
                    format!("/api/appointments/{}", id_of(&appointment)),
                    None,
                )
            }
            "GET /api/records" => (Method::GET, "/api/records".to_owned(), None),
            "GET /api/records/{id}" | "GET /api/records/{id}/history" => {
                let record = self.record("note").await;
                let suffix = if route.ends_with("history") {
                    "/history"
                } else {
                    ""
                };
                (
                    Method::GET,
                    format!("/api/records/{}{suffix}", id_of(&record)),
                    None,
                )
            }
            "GET /api/patients/{id}/records" => (
                Method::GET,
                format!("/api/patients/{}/records", self.patient),
                None,
            ),
            "POST /api/records (vitals)" => (
                Method::POST,
                "/api/records".to_owned(),
                Some(self.record_body("vitals")),
            ),
            "POST /api/records (diagnosis)" => (
                Method::POST,
                "/api/records".to_owned(),
                Some(self.record_body("diagnosis")),
            ),
            "PUT /api/records/{id} (vitals)"
            | "PUT /api/records/{id} (diagnosis)"
            | "PUT /api/records/{id} (vitals into a diagnosis)" => {
                let kind = if route.contains("(diagnosis)") {
                    "diagnosis"
                } else {
                    "vitals"
                };
                let record = self.record(kind).await;
                let mut body = self.record_body(kind);
                body["title"] = json!("Amended");
                if route.contains("into a diagnosis") {
                    body = self.record_body("diagnosis");
                }
                (
                    Method::PUT,
                    format!("/api/records/{}", id_of(&record)),
                    Some(body),
                )
            }
            "DELETE /api/records/{id} (vitals)" | "DELETE /api/records/{id} (diagnosis)" => {
                let kind = if route.contains("vitals") {
                    "vitals"
                } else {
                    "diagnosis"
                };
                let record = self.record(kind).await;
                (
                    Method::DELETE,
                    format!("/api/records/{}", id_of(&record)),
                    None,
                )
            }
            "GET /api/audit" => (Method::GET, "/api/audit?limit=1".to_owned(), None),
            other => panic!("no set-up for {other}"),
        };
        let mut request = self.app.api(method, &path, token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

async fn entity(app: &TestApp, token: &str, method: Method, path: &str, body: Value) -> Value {
    let response = app
        .api(method, path, token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let entity: Value = response.json().await.unwrap();
    assert!(status.is_success(), "set-up {path}: {status} {entity}");
    entity
}

async fn created(app: &TestApp, token: &str, path: &str, body: Value) -> String {
    let entity = entity(app, token, Method::POST, path, body).await;
    entity["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_cell_of_the_matrix_is_enforced() {
    let world = World::open().await;
    let mut wrong = Vec::new();
    for (route, expected) in EXPECTED {
        for (column, role) in ROLES.iter().enumerate() {
            let (status, body) = world.attempt(route, &world.logins[column].0).await;
            let allowed = expected[column] == 'Y';
            let as_expected = if allowed {
                (200..300).contains(&status)
            } else {
                status == 403
                    && body["status"] == 403
                    && body["detail"].as_str().is_some_and(|d| !d.is_empty())
            };
            if !as_expected {
                wrong.push(format!(
                    "{role} {route}: expected {}, got {status} {body}",
                    if allowed { "2xx" } else { "403" }
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cells wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[tokio::test]
async fn a_refusal_says_why_and_changes_nothing() {
    let world = World::open().await;
    let (receptionist, _) = &world.logins[3];
    let (status, problem) = world
        .attempt("POST /api/records (vitals)", receptionist)
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        problem["detail"],
        "a receptionist may not create medical records"
    );
    let (nurse, _) = &world.logins[2];
    let (status, problem) = world.attempt("POST /api/records (diagnosis)", nurse).await;
    assert_eq!(status, 403);
    assert_eq!(
        problem["detail"],
        "nurses may only write vital-signs records"
    );
    // Nothing was written: the doctor sees no record of the patient.
    let records: Vec<Value> = world
        .app
        .api(Method::GET, "/api/records", world.doctor().0)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(records.is_empty(), "{records:?}");
}

#[tokio::test]
async fn the_live_feed_leaves_out_what_the_role_may_not_read() {
    let world = World::open().await;
    let record = world.record("note").await;
    let record_id = record["id"].as_str().unwrap();
    let patient = world.patient.as_str();
    let feed_has_record = |token: String| {
        let app = &world.app;
        async move {
            let response = app
                .api(Method::GET, "/api/events/stream?after=0", &token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let mut response = response;
            let mut body = String::new();
            // Everything from the start of the stream arrives at once; then the feed waits.
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
            while let Ok(Ok(Some(chunk))) =
                tokio::time::timeout_at(deadline, response.chunk()).await
            {
                body.push_str(&String::from_utf8_lossy(&chunk));
            }
            (body.contains(record_id), body.contains(patient))
        }
    };
    assert_eq!(
        feed_has_record(world.doctor().0.to_owned()).await,
        (true, true)
    );
    let (has_record, has_patient) = feed_has_record(world.logins[3].0.clone()).await;
    assert!(!has_record, "a receptionist's feed carried a record event");
    assert!(has_patient, "a receptionist's feed carries patient events");
}
