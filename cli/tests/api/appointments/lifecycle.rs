//! An appointment's life through `PUT` and `DELETE`, and the events each change publishes.

use reqwest::Method;
use serde_json::{Value, json};

use super::{at, open_clinic};

#[tokio::test]
async fn the_lifecycle_runs_through_put_and_an_illegal_step_is_409() {
    let clinic = open_clinic().await;
    let patient = clinic.patient("Mary Seacole").await;
    let appointment = clinic.booked(&patient, &at(6, 9, 0)).await;
    let path = format!("/api/appointments/{}", appointment["id"].as_str().unwrap());
    let put = |mut body: Value, changes: Value| {
        for (k, v) in changes.as_object().unwrap() {
            body[k] = v.clone();
        }
        clinic.call(Method::PUT, &path, Some(body))
    };

    // The same body again is no change: no new version.
    let (status, same) = put(appointment.clone(), json!({})).await;
    assert_eq!((status, &same["version"]), (200, &json!(1)));
    let (status, moved) = put(
        appointment.clone(),
        json!({"start": at(6, 11, 0), "duration_minutes": 45, "notes": "fasting"}),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(
        (&moved["version"], &moved["end"]),
        (&json!(2), &json!(at(6, 11, 45)))
    );
    let (status, _) = put(moved.clone(), json!({"start": at(-1, 11, 0)})).await;
    assert_eq!(status, 422, "a reschedule into the past");
    let (status, _) = put(moved.clone(), json!({"patient_id": uuid::Uuid::now_v7()})).await;
    assert_eq!(status, 422, "another patient");

    let stale = clinic
        .app
        .api(Method::PUT, &path, &clinic.token)
        .header("If-Match", "\"1\"")
        .json(&moved)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);

    let (status, checked_in) = put(moved.clone(), json!({"status": "checked_in"})).await;
    assert_eq!((status, &checked_in["status"]), (200, &json!("checked_in")));
    let (status, problem) = put(checked_in.clone(), json!({"status": "noshow"})).await;
    assert_eq!(status, 409);
    assert_eq!(
        problem["detail"],
        "an appointment that is checked_in cannot become noshow"
    );
    let (status, fulfilled) = put(checked_in.clone(), json!({"status": "fulfilled"})).await;
    assert_eq!((status, &fulfilled["version"]), (200, &json!(4)));
    for changes in [
        json!({"status": "booked"}),
        json!({"status": "cancelled"}),
        json!({"start": at(7, 9, 0)}),
    ] {
        let (status, problem) = put(fulfilled.clone(), changes.clone()).await;
        assert_eq!(status, 409, "{changes}: {problem}");
    }
    let (status, noted) = put(fulfilled.clone(), json!({"notes": "recovered well"})).await;
    assert_eq!((status, &noted["notes"]), (200, &json!("recovered well")));

    let other = clinic.booked(&patient, &at(8, 9, 0)).await;
    let other_path = format!("/api/appointments/{}", other["id"].as_str().unwrap());
    let mut no_show = other.clone();
    no_show["status"] = json!("noshow");
    let (status, no_show) = clinic.call(Method::PUT, &other_path, Some(no_show)).await;
    assert_eq!((status, &no_show["status"]), (200, &json!("noshow")));
}

#[tokio::test]
async fn delete_cancels_and_the_appointment_stays_readable() {
    let clinic = open_clinic().await;
    let patient = clinic.patient("Florence Nightingale").await;
    let appointment = clinic.booked(&patient, &at(9, 14, 0)).await;
    let path = format!("/api/appointments/{}", appointment["id"].as_str().unwrap());
    let stale = clinic
        .app
        .api(Method::DELETE, &path, &clinic.token)
        .header("If-Match", "\"7\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
    let (status, _) = clinic.call(Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let (status, cancelled) = clinic.call(Method::GET, &path, None).await;
    assert_eq!(
        (status, &cancelled["status"], &cancelled["version"]),
        (200, &json!("cancelled"), &json!(2))
    );
    // Cancelling again changes nothing; a cancelled appointment cannot come back.
    let (status, _) = clinic.call(Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let mut revived = cancelled.clone();
    revived["status"] = json!("booked");
    assert_eq!(clinic.call(Method::PUT, &path, Some(revived)).await.0, 409);
    let (_, again) = clinic.call(Method::GET, &path, None).await;
    assert_eq!(again["version"], 2);

    // A cancellation through PUT may say why.
    let other = clinic.booked(&patient, &at(9, 15, 0)).await;
    let mut cancel = other.clone();
    cancel["status"] = json!("cancelled");
    cancel["cancellation_reason"] = json!("the patient phoned");
    let (status, cancelled) = clinic
        .call(
            Method::PUT,
            &format!("/api/appointments/{}", other["id"].as_str().unwrap()),
            Some(cancel),
        )
        .await;
    assert_eq!(
        (status, &cancelled["cancellation_reason"]),
        (200, &json!("the patient phoned"))
    );
}

#[tokio::test]
async fn each_appointment_write_publishes_one_event_with_its_subject_and_envelope() {
    let clinic = open_clinic().await;
    let patient = clinic.patient("Edith Cavell").await;
    let appointment = clinic.booked(&patient, &at(10, 9, 0)).await;
    let id = appointment["id"].as_str().unwrap().to_owned();
    let path = format!("/api/appointments/{id}");
    let mut checked_in = appointment.clone();
    checked_in["status"] = json!("checked_in");
    clinic
        .call(Method::PUT, &path, Some(checked_in.clone()))
        .await;
    clinic.call(Method::PUT, &path, Some(checked_in)).await; // no change, no event
    let response = clinic
        .app
        .api(Method::DELETE, &path, &clinic.token)
        .header("X-Request-Id", "req-cancel-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);

    let events = clinic
        .app
        .events(&format!("hospital.events.appointment.{id}.>"))
        .await;
    let subjects: Vec<&str> = events.iter().map(|(s, _)| s.as_str()).collect();
    let expected: Vec<String> = ["created", "updated", "cancelled"]
        .iter()
        .map(|verb| format!("hospital.events.appointment.{id}.{verb}"))
        .collect();
    assert_eq!(subjects, expected);
    let versions: Vec<i64> = events.iter().map(|(_, e)| e.aggregate_version).collect();
    assert_eq!(versions, [1, 2, 3]);
    let (_, created) = &events[0];
    assert_eq!(created.event_type, "appointment.created");
    assert_eq!(created.aggregate_id.to_string(), id);
    assert_eq!(created.data, appointment);
    assert_eq!(created.actor.role, "admin");
    assert_eq!(created.event_id.get_version_num(), 7);
    let (_, cancelled) = &events[2];
    assert_eq!(cancelled.event_type, "appointment.cancelled");
    assert_eq!(cancelled.data["status"], "cancelled");
    assert_eq!(cancelled.correlation_id.as_deref(), Some("req-cancel-1"));
}
