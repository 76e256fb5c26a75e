//! The API contract (`/api/openapi.json`) against the services that enforce it: the fields,
//! lengths, ranges and enums the document gives are the ones each service's validation uses,
//! and what `scripts/fuzz-api` (schemathesis against the live system) found, kept as
//! regression tests.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use shared_events::appointment::AppointmentStatus;
use shared_events::patient::Sex;
use shared_events::record::RecordKind;
use shared_events::staff::StaffRole;

use crate::helpers::spawn_app;

fn document() -> Value {
    serde_json::to_value(gateway::openapi::document()).unwrap()
}

fn schema<'a>(document: &'a Value, name: &str) -> &'a Value {
    let schema = &document["components"]["schemas"][name];
    assert!(schema.is_object(), "no schema {name}");
    schema
}

fn property<'a>(schema: &'a Value, name: &str) -> &'a Value {
    let property = &schema["properties"][name];
    assert!(property.is_object(), "no property {name} in {schema}");
    property
}

/// The properties a client writes, and those only the server sets.
fn fields(schema: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut writable = BTreeSet::new();
    let mut read_only = BTreeSet::new();
    for (name, property) in schema["properties"].as_object().unwrap() {
        if property["readOnly"] == true {
            read_only.insert(name.clone());
        } else {
            writable.insert(name.clone());
        }
    }
    (writable, read_only)
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// The writable fields a body must have.
fn required_writable(schema: &Value) -> BTreeSet<String> {
    let (writable, _) = fields(schema);
    schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .filter(|n| writable.contains(n))
        .collect()
}

fn max_length(schema: &Value, name: &str) -> usize {
    property(schema, name)["maxLength"].as_u64().unwrap() as usize
}

#[test]
fn the_documented_fields_are_the_ones_each_service_reads() {
    let document = document();
    let patient = schema(&document, "Patient");
    let (writable, read_only) = fields(patient);
    assert_eq!(writable, set(&patient_service::domain::WRITABLE_FIELDS));
    // deleted_at is accepted as an echo but never answered: a deleted patient is not found.
    let mut echoed = set(&patient_service::domain::READ_ONLY_FIELDS);
    echoed.remove("deleted_at");
    assert_eq!(read_only, echoed);
    assert_eq!(
        required_writable(patient),
        set(&["name", "birth_date", "sex"])
    );

    let staff = schema(&document, "Staff");
    let (writable, read_only) = fields(staff);
    assert_eq!(writable, set(&staff_service::domain::WRITABLE_FIELDS));
    assert_eq!(read_only, set(&staff_service::domain::READ_ONLY_FIELDS));
    assert_eq!(property(staff, "password")["writeOnly"], true);
    assert_eq!(required_writable(staff), set(&["name", "role"]));

    let appointment = schema(&document, "Appointment");
    let (writable, read_only) = fields(appointment);
    let mut expected = set(&appointment_service::domain::BOOKING_FIELDS);
    expected.insert("cancellation_reason".into());
    assert_eq!(writable, expected);
    assert_eq!(
        read_only,
        set(&appointment_service::domain::READ_ONLY_FIELDS)
    );
    assert_eq!(
        required_writable(appointment),
        set(&["patient_id", "doctor_id", "start"])
    );

    let record = schema(&document, "MedicalRecord");
    let (writable, read_only) = fields(record);
    assert_eq!(writable, set(&record_service::details::WRITABLE_FIELDS));
    assert_eq!(read_only, set(&record_service::details::READ_ONLY_FIELDS));
    assert_eq!(
        required_writable(record),
        set(&["patient_id", "kind", "title"])
    );
}

#[test]
fn the_documented_limits_are_the_ones_each_service_checks() {
    use appointment_service::domain as appointment;
    use patient_service::domain as patient;
    use staff_service::domain as staff;

    let document = document();
    let schema_of = |name| schema(&document, name);
    let p = schema_of("Patient");
    assert_eq!(max_length(p, "name"), patient::MAX_NAME_CHARS);
    assert_eq!(max_length(p, "address"), patient::MAX_ADDRESS_CHARS);
    assert_eq!(max_length(p, "email"), patient::MAX_EMAIL_CHARS);
    assert_eq!(max_length(p, "phone"), patient::MAX_PHONE_CHARS);
    assert_eq!(property(p, "email")["format"], "email");
    assert_eq!(property(p, "birth_date")["format"], "date");
    assert_eq!(property(p, "id")["format"], "uuid");

    let s = schema_of("Staff");
    assert_eq!(max_length(s, "name"), staff::MAX_NAME_CHARS);
    assert_eq!(
        max_length(s, "specialization"),
        staff::MAX_SPECIALIZATION_CHARS
    );
    assert_eq!(max_length(s, "email"), staff::MAX_EMAIL_CHARS);
    assert_eq!(max_length(s, "phone"), staff::MAX_PHONE_CHARS);
    let password = property(s, "password");
    assert_eq!(
        password["minLength"].as_u64().unwrap() as usize,
        staff_service::passwords::MIN_PASSWORD_CHARS
    );
    assert_eq!(
        password["maxLength"].as_u64().unwrap() as usize,
        staff_service::passwords::MAX_PASSWORD_CHARS
    );
    for username in ["ada", "grey.m-2_x"] {
        assert_eq!(staff::username_problem(username), None, "{username}");
    }

    let a = schema_of("Appointment");
    let duration = property(a, "duration_minutes");
    assert_eq!(duration["minimum"], appointment::MIN_DURATION_MINUTES);
    assert_eq!(duration["maximum"], appointment::MAX_DURATION_MINUTES);
    assert_eq!(duration["default"], appointment::DEFAULT_DURATION_MINUTES);
    assert_eq!(max_length(a, "reason"), appointment::MAX_REASON_CHARS);
    assert_eq!(max_length(a, "notes"), appointment::MAX_NOTES_CHARS);
    assert_eq!(
        max_length(a, "cancellation_reason"),
        appointment::MAX_CANCELLATION_REASON_CHARS
    );
    assert_eq!(property(a, "start")["format"], "date-time");

    let r = schema_of("MedicalRecord");
    assert_eq!(
        max_length(r, "title"),
        record_service::details::MAX_TITLE_CHARS
    );
    assert_eq!(
        max_length(r, "body"),
        record_service::details::MAX_BODY_CHARS
    );
    assert_eq!(
        property(r, "diagnoses")["maxItems"].as_u64().unwrap() as usize,
        record_service::diagnoses::MAX_DIAGNOSES
    );
    let diagnosis = schema_of("Diagnosis");
    assert_eq!(
        max_length(diagnosis, "description"),
        record_service::diagnoses::MAX_DESCRIPTION_CHARS
    );
    let vitals = schema_of("Vitals");
    let documented: BTreeSet<&String> = vitals["properties"].as_object().unwrap().keys().collect();
    assert_eq!(documented.len(), record_service::vitals::VITAL_RANGES.len());
    for range in &record_service::vitals::VITAL_RANGES {
        let vital = property(vitals, range.name);
        assert_eq!(vital["minimum"].as_f64(), Some(range.min), "{}", range.name);
        assert_eq!(vital["maximum"].as_f64(), Some(range.max), "{}", range.name);
        let whole = vital["type"]
            .as_array()
            .unwrap()
            .contains(&json!("integer"));
        assert_eq!(whole, range.whole, "{}", range.name);
    }
}

#[test]
fn the_documented_enums_are_the_ones_the_services_accept() {
    let document = document();
    let values = |name: &str| -> Vec<String> {
        schema(&document, name)["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let strings = |all: Vec<&str>| all.into_iter().map(String::from).collect::<Vec<_>>();
    assert_eq!(values("Sex"), strings(Sex::ALL.map(Sex::as_str).to_vec()));
    assert_eq!(
        values("StaffRole"),
        strings(StaffRole::ALL.map(StaffRole::as_str).to_vec())
    );
    assert_eq!(
        values("AppointmentStatus"),
        strings(
            AppointmentStatus::ALL
                .map(AppointmentStatus::as_str)
                .to_vec()
        )
    );
    assert_eq!(
        values("RecordKind"),
        strings(RecordKind::ALL.map(RecordKind::as_str).to_vec())
    );
}

/// Found by fuzzing: a validation error quoting a field name with a line break could not be
/// put in the reply's `Nats-Service-Error` header; the service's task panicked, the request was
/// never answered, and the client got a 504 after the request timeout.
#[tokio::test]
async fn a_field_name_with_a_line_break_is_a_422_at_once_on_every_resource() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let doctor = app.doctor_token().await;
    for (path, token) in [
        ("/api/patients", &admin),
        ("/api/staff", &admin),
        ("/api/appointments", &admin),
        ("/api/records", &doctor),
    ] {
        let started = Instant::now();
        let response = app
            .api(Method::POST, path, token)
            .json(&json!({"bad\r\nname": 1, "\u{0}": 2}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{path}");
        assert!(started.elapsed() < Duration::from_secs(2), "{path}");
        let problem: Value = response.json().await.unwrap();
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&"bad\r\nname"), "{path}: {problem}");
    }
}

#[tokio::test]
async fn the_live_gateway_serves_the_document_its_code_builds() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let served: Value = response.json().await.unwrap();
    assert_eq!(served, document());
    let page = app.http.get(app.url("/api/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("swagger-ui-bundle.js"));
}

/// Found by fuzzing (requests the document forbade were accepted): the document said `q` is at
/// most 256 characters and `after` a UUID, but a long search is fine and an empty `after` counts
/// as absent. Every list the document gives a `q` or an `after` takes both as it now says.
#[tokio::test]
async fn a_long_search_and_an_empty_cursor_are_accepted_as_documented() {
    let app = spawn_app().await;
    let doctor = app.doctor_token().await;
    let document = document();
    let long = "ada ".repeat(100);
    let mut tried = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        let Some(list) = item.get("get") else {
            continue;
        };
        let names: Vec<&str> = list["parameters"]
            .as_array()
            .map(|p| p.iter().filter_map(|p| p["name"].as_str()).collect())
            .unwrap_or_default();
        // The audit trail and the live feed page by stream sequence, not by id.
        if !names.contains(&"after") || path == "/api/audit" || path == "/api/events/stream" {
            continue;
        }
        let after = &list["parameters"].as_array().unwrap()
            [names.iter().position(|n| *n == "after").unwrap()];
        assert!(after["schema"]["anyOf"].is_array(), "{path}: {after}");
        let mut query = vec![("after", String::new())];
        if names.contains(&"q") {
            assert!(
                list["parameters"][names.iter().position(|n| *n == "q").unwrap()]["schema"]
                    .get("maxLength")
                    .is_none()
            );
            query.push(("q", long.clone()));
        }
        let url = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
        let response = app
            .api(Method::GET, &url, &doctor)
            .query(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "{path}: {}",
            response.text().await.unwrap()
        );
        tried += 1;
    }
    assert_eq!(tried, 7, "the four collections and three sub-collections");
}
