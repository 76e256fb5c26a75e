//! Appointments through the gateway: booking against the local read-model of people and no
//! double-booking (even under concurrency). The rest has a module each: [`lifecycle`] (PUT,
//! DELETE, events), [`lists`] (filters, paging) and [`read_model`] (cascades, redeliveries,
//! catching up).

mod lifecycle;
mod lists;
mod read_model;

use chrono::{Duration, DurationRound, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Parts, TestApp, patient_body, spawn_app_with};

/// A running system (without the record service, which appointments do not need), an admin
/// session and one doctor.
pub struct Clinic {
    pub app: TestApp,
    pub token: String,
    pub doctor: String,
}

pub async fn open_clinic() -> Clinic {
    let app = spawn_app_with(Parts {
        record: false,
        ..Parts::default()
    })
    .await;
    Clinic::open(app).await
}

impl Clinic {
    /// The clinic of `app`, as its administrator, with one doctor on staff.
    pub async fn open(app: TestApp) -> Clinic {
        let token = app.admin_token().await;
        let mut clinic = Clinic {
            app,
            token,
            doctor: String::new(),
        };
        clinic.doctor = clinic.staff("Dr Gregory House", "doctor").await;
        clinic
    }

    /// Sends a request and returns the status and the JSON body (`null` when there is none).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.app.api(method, path, &self.token);
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

    pub async fn staff(&self, name: &str, role: &str) -> String {
        let (status, staff) = self
            .call(
                Method::POST,
                "/api/staff",
                Some(json!({"name": name, "role": role})),
            )
            .await;
        assert_eq!(status, 201, "create staff {staff}");
        staff["id"].as_str().unwrap().to_owned()
    }

    pub async fn patient(&self, name: &str) -> String {
        let patient = self
            .app
            .create_patient(&self.token, patient_body(name))
            .await;
        patient["id"].as_str().unwrap().to_owned()
    }

    /// `POST /api/appointments` for `patient` with the clinic's doctor at `start`.
    pub async fn book(&self, patient: &str, start: &str) -> (u16, Value) {
        let body = json!({"patient_id": patient, "doctor_id": self.doctor, "start": start});
        self.call(Method::POST, "/api/appointments", Some(body))
            .await
    }

    pub async fn booked(&self, patient: &str, start: &str) -> Value {
        let (status, appointment) = self.book(patient, start).await;
        assert_eq!(status, 201, "book {appointment}");
        appointment
    }
}

/// `days` from today at `hour:minute` UTC, as RFC 3339.
pub fn at(days: i64, hour: i64, minute: i64) -> String {
    let midnight = Utc::now().duration_trunc(Duration::days(1)).unwrap();
    let time = midnight + Duration::days(days) + Duration::hours(hour) + Duration::minutes(minute);
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The fields a problem answer names, and its detail.
fn named_fields(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap().to_owned(),
                        e["message"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_patient_created_a_moment_ago_can_be_booked_at_once_every_time() {
    let clinic = open_clinic().await;
    for i in 0..100 {
        let patient = clinic.patient(&format!("Walk In {i}")).await;
        let (status, appointment) = clinic.book(&patient, &at(2, 8, 30 * i)).await;
        assert_eq!(status, 201, "attempt {i}: {appointment}");
        assert_eq!(appointment["patient_id"], patient.as_str());
    }
}

#[tokio::test]
async fn a_booking_is_read_back_with_its_defaults_and_location() {
    let clinic = open_clinic().await;
    let patient = clinic.patient("Ada Lovelace").await;
    let body = json!({"patient_id": patient, "doctor_id": clinic.doctor,
                      "start": "2099-03-04T10:30:00+02:00", "reason": "  annual check-up  "});
    let response = clinic
        .app
        .api(Method::POST, "/api/appointments", &clinic.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/appointments/{}", created["id"].as_str().unwrap())
    );
    assert_eq!(created["start"], "2099-03-04T08:30:00Z");
    assert_eq!(created["end"], "2099-03-04T09:00:00Z");
    assert_eq!(created["duration_minutes"], 30);
    assert_eq!(created["status"], "booked");
    assert_eq!(created["reason"], "annual check-up");
    assert_eq!(created["version"], 1);
    let (status, read) = clinic.call(Method::GET, &location, None).await;
    assert_eq!((status, read), (200, created));
}

#[tokio::test]
async fn unknown_deleted_or_wrong_people_are_422_naming_the_field() {
    let clinic = open_clinic().await;
    let patient = clinic.patient("Grace Hopper").await;
    let nurse = clinic.staff("Carla Espinosa", "nurse").await;
    let gone = clinic.patient("Gone Away").await;
    let (status, _) = clinic
        .call(Method::DELETE, &format!("/api/patients/{gone}"), None)
        .await;
    assert_eq!(status, 204);
    let nobody = uuid::Uuid::now_v7().to_string();
    let start = at(3, 9, 0);
    let cases = [
        (
            json!({"patient_id": nobody, "doctor_id": clinic.doctor, "start": start}),
            vec![("patient_id", "no such patient")],
        ),
        (
            json!({"patient_id": patient, "doctor_id": nobody, "start": start}),
            vec![("doctor_id", "no such doctor")],
        ),
        (
            json!({"patient_id": patient, "doctor_id": nurse, "start": start}),
            vec![("doctor_id", "is not a doctor (nurse)")],
        ),
        (
            json!({"patient_id": gone, "doctor_id": nurse, "start": start}),
            vec![
                ("patient_id", "the patient has been deleted"),
                ("doctor_id", "is not a doctor (nurse)"),
            ],
        ),
        (
            json!({"patient_id": patient, "doctor_id": clinic.doctor, "start": at(-1, 9, 0)}),
            vec![("start", "must not be in the past")],
        ),
        (
            json!({"patient_id": patient, "doctor_id": clinic.doctor, "start": start, "duration_minutes": 481}),
            vec![("duration_minutes", "must be between 5 and 480 minutes")],
        ),
        (
            json!({"patient_id": patient, "doctor_id": clinic.doctor, "start": start, "status": "fulfilled"}),
            vec![("status", "must be booked: a new appointment is booked")],
        ),
    ];
    for (body, expected) in cases {
        let (status, problem) = clinic
            .call(Method::POST, "/api/appointments", Some(body.clone()))
            .await;
        assert_eq!(status, 422, "{body}: {problem}");
        let expected: Vec<(String, String)> = expected
            .into_iter()
            .map(|(f, m)| (f.to_owned(), m.to_owned()))
            .collect();
        assert_eq!(named_fields(&problem), expected, "{body}");
    }
    assert!(
        clinic
            .app
            .events("hospital.events.appointment.>")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn overlapping_bookings_of_the_doctor_or_the_patient_are_409_naming_the_booking() {
    let clinic = open_clinic().await;
    let (ada, bob) = (clinic.patient("Ada").await, clinic.patient("Bob").await);
    let first = clinic.booked(&ada, &at(4, 9, 0)).await;
    let id = first["id"].as_str().unwrap();

    let (status, problem) = clinic.book(&bob, &at(4, 9, 15)).await;
    assert_eq!(status, 409);
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!("the doctor already has appointment {id} from ")),
        "{detail}"
    );

    let other_doctor = clinic.staff("Dr Cox", "doctor").await;
    let body = json!({"patient_id": ada, "doctor_id": other_doctor, "start": at(4, 8, 45)});
    let (status, problem) = clinic
        .call(Method::POST, "/api/appointments", Some(body))
        .await;
    assert_eq!(status, 409);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("the patient already has appointment {id}"))
    );

    // Back to back is no overlap; a cancelled appointment frees its slot.
    clinic.booked(&bob, &at(4, 9, 30)).await;
    let (status, _) = clinic
        .call(Method::DELETE, &format!("/api/appointments/{id}"), None)
        .await;
    assert_eq!(status, 204);
    clinic.booked(&bob, &at(4, 9, 0)).await;
}

#[tokio::test]
async fn of_fifty_concurrent_bookings_of_one_slot_exactly_one_is_created() {
    let clinic = open_clinic().await;
    let mut patients = Vec::new();
    for i in 0..50 {
        patients.push(clinic.patient(&format!("Rush {i}")).await);
    }
    let start = at(5, 10, 0);
    let attempts = patients.iter().map(|patient| clinic.book(patient, &start));
    let outcomes = futures::future::join_all(attempts).await;
    let statuses: Vec<u16> = outcomes.iter().map(|(status, _)| *status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        49,
        "{statuses:?}"
    );
    // Every refusal names the booking that won.
    let winner = &outcomes.iter().find(|(s, _)| *s == 201).unwrap().1["id"];
    let named = format!("appointment {} from", winner.as_str().unwrap());
    for (_, problem) in outcomes.iter().filter(|(s, _)| *s == 409) {
        assert!(
            problem["detail"].as_str().unwrap().contains(&named),
            "{problem}"
        );
    }
    let (_, listed) = clinic
        .call(
            Method::GET,
            &format!("/api/staff/{}/appointments", clinic.doctor),
            None,
        )
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
}
