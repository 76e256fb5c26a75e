//! A record's life after it is written: amendments with every version readable,
//! entered-in-error, the patient's timeline, and the events each change publishes.

use reqwest::Method;
use serde_json::{Value, json};
use shared_events::{Actor, Aggregate};
use uuid::Uuid;

use crate::helpers::{patient_body, spawn_app};
use crate::records::{create_record, invalid_fields, note, send};

#[tokio::test]
async fn amendments_keep_every_version_readable() {
    let app = spawn_app().await;
    let desk = app.admin_token().await;
    let (token, doctor_id) = app.staff_login("doctor").await;
    let patient = app
        .create_patient(&desk, patient_body("Amended Often"))
        .await;
    let first = note(&patient["id"], "Chest pain", "2026-03-01T10:00:00Z");
    let record = create_record(&app, &token, &first).await;
    let path = format!("/api/records/{}", record["id"].as_str().unwrap());

    let mut second = first.clone();
    second["title"] = json!("Chest pain, musculoskeletal");
    let amended = app
        .api(Method::PUT, &path, &token)
        .header("If-Match", "\"1\"")
        .json(&second)
        .send()
        .await
        .unwrap();
    assert_eq!(amended.status(), 200);
    assert_eq!(amended.headers()["etag"], "\"2\"");
    // Amending from a stale copy is refused; repeating the same text is no change at all.
    let stale = app
        .api(Method::PUT, &path, &token)
        .header("If-Match", "\"1\"")
        .json(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
    let same: Value = send(&app, Method::PUT, &path, &token, Some(&second))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(same["version"], 2);
    let mut third = second.clone();
    third["kind"] = json!("diagnosis");
    third["diagnoses"] = json!([{"code": "r07.89", "description": "Other chest pain"}]);
    let latest: Value = send(&app, Method::PUT, &path, &token, Some(&third))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            latest["version"].as_i64(),
            latest["diagnoses"][0]["code"].as_str()
        ),
        (Some(3), Some("R07.89"))
    );
    assert_eq!(latest["author_id"], record["author_id"]);
    assert_eq!(latest["created_at"], record["created_at"]);

    let mut moved = third.clone();
    moved["patient_id"] = json!(Uuid::now_v7());
    let response = send(&app, Method::PUT, &path, &token, Some(&moved)).await;
    assert_eq!(
        invalid_fields(response).await,
        [("patient_id".into(), "cannot be changed".into())]
    );

    let history: Vec<Value> = send(&app, Method::GET, &format!("{path}/history"), &token, None)
        .await
        .json()
        .await
        .unwrap();
    let summary: Vec<(i64, &str, &str)> = history
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["change"].as_str().unwrap(),
                v["record"]["title"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "created", "Chest pain"),
            (2, "amended", "Chest pain, musculoskeletal"),
            (3, "amended", "Chest pain, musculoskeletal")
        ]
    );
    for version in &history {
        assert_eq!(
            version["changed_by"],
            json!({"id": doctor_id, "role": "doctor"})
        );
        assert_eq!(version["changed_at"], version["record"]["updated_at"]);
    }
    assert_eq!(history[0]["record"], record);
    assert_eq!(history[2]["record"], latest);
}

#[tokio::test]
async fn a_record_entered_in_error_is_kept_but_leaves_the_default_list() {
    let app = spawn_app().await;
    let desk = app.admin_token().await;
    let token = app.doctor_token().await;
    let patient = app.create_patient(&desk, patient_body("Wrong Chart")).await;
    let kept = create_record(
        &app,
        &token,
        &note(&patient["id"], "Right chart", "2026-03-01T09:00:00Z"),
    )
    .await;
    let wrong = create_record(
        &app,
        &token,
        &note(&patient["id"], "Wrong chart", "2026-03-01T10:00:00Z"),
    )
    .await;
    let path = format!("/api/records/{}", wrong["id"].as_str().unwrap());
    let deleted = app
        .api(Method::DELETE, &path, &token)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);

    let read: Value = send(&app, Method::GET, &path, &token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (read["status"].as_str(), read["version"].as_i64()),
        (Some("entered_in_error"), Some(2))
    );
    assert_eq!(read["title"], "Wrong chart");
    let ids = |records: Vec<Value>| -> Vec<Value> {
        records.into_iter().map(|r| r["id"].clone()).collect()
    };
    let timeline = format!(
        "/api/records?patient_id={}",
        patient["id"].as_str().unwrap()
    );
    let default: Vec<Value> = send(&app, Method::GET, &timeline, &token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(default), [kept["id"].clone()]);
    let all: Vec<Value> = send(
        &app,
        Method::GET,
        &format!("{timeline}&status=all"),
        &token,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(ids(all), [wrong["id"].clone(), kept["id"].clone()]);
    let marked: Vec<Value> = send(
        &app,
        Method::GET,
        &format!("{timeline}&status=entered_in_error"),
        &token,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(ids(marked), [wrong["id"].clone()]);

    let history: Vec<Value> = send(&app, Method::GET, &format!("{path}/history"), &token, None)
        .await
        .json()
        .await
        .unwrap();
    let changes: Vec<&str> = history
        .iter()
        .map(|v| v["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["created", "entered_in_error"]);
    // It is final: no amendment, and marking it again is a conflict too (GET still shows it).
    let mut amendment = note(&patient["id"], "Second thoughts", "2026-03-01T10:00:00Z");
    amendment["body"] = json!("changed");
    assert_eq!(
        send(&app, Method::PUT, &path, &token, Some(&amendment))
            .await
            .status(),
        409
    );
    assert_eq!(
        send(&app, Method::DELETE, &path, &token, None)
            .await
            .status(),
        409
    );
}

#[tokio::test]
async fn the_patient_timeline_is_newest_first_and_paged() {
    let app = spawn_app().await;
    let desk = app.admin_token().await;
    let token = app.doctor_token().await;
    let patient = app
        .create_patient(&desk, patient_body("Long History"))
        .await;
    let other = app
        .create_patient(&desk, patient_body("Someone Else"))
        .await;
    create_record(
        &app,
        &token,
        &note(&other["id"], "Not mine", "2026-05-01T09:00:00Z"),
    )
    .await;
    // Written out of order: the timeline follows when things were observed.
    for day in [3, 1, 5, 2, 4] {
        let at = format!("2026-04-0{day}T09:00:00Z");
        create_record(
            &app,
            &token,
            &note(&patient["id"], &format!("Day {day}"), &at),
        )
        .await;
    }
    let id = patient["id"].as_str().unwrap();
    let mut next = Some(format!("/api/patients/{id}/records?limit=2"));
    let mut titles = Vec::new();
    let mut pages = 0;
    while let Some(path) = next.take() {
        let response = send(&app, Method::GET, &path, &token, None).await;
        assert_eq!(response.status(), 200, "{path}");
        next = response.headers().get("link").map(|link| {
            let link = link.to_str().unwrap();
            let target = &link[link.find('<').unwrap() + 1..link.find('>').unwrap()];
            target.trim_start_matches(&app.address).to_owned()
        });
        let page: Vec<Value> = response.json().await.unwrap();
        titles.extend(page.iter().map(|r| r["title"].as_str().unwrap().to_owned()));
        pages += 1;
    }
    assert_eq!(titles, ["Day 5", "Day 4", "Day 3", "Day 2", "Day 1"]);
    assert_eq!(pages, 3);
    let filtered: Vec<Value> = send(
        &app,
        Method::GET,
        &format!("/api/records?patient_id={id}&kind=note"),
        &token,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(filtered.len(), 5);
    for bad in [
        "/api/records?ward=B",
        "/api/records?patient_id=7",
        "/api/records?status=deleted",
        "/api/records?q=asthma",
    ] {
        assert_eq!(
            send(&app, Method::GET, bad, &token, None).await.status(),
            400,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn each_record_change_publishes_one_event_with_the_full_state() {
    let app = spawn_app().await;
    let desk = app.admin_token().await;
    let (token, doctor_id) = app.staff_login("doctor").await;
    let patient = app
        .create_patient(&desk, patient_body("Event Source"))
        .await;
    let body = note(&patient["id"], "Observed", "2026-11-25T09:30:00Z");
    let record = create_record(&app, &token, &body).await;
    let id = record["id"].as_str().unwrap();
    let path = format!("/api/records/{id}");
    let mut amended = body.clone();
    amended["title"] = json!("Observed closely");
    send(&app, Method::PUT, &path, &token, Some(&amended)).await;
    send(&app, Method::PUT, &path, &token, Some(&amended)).await; // no change, no event
    app.api(Method::DELETE, &path, &token)
        .header("X-Request-Id", "req-eie-1")
        .send()
        .await
        .unwrap();

    let events = app.events(&format!("hospital.events.record.{id}.>")).await;
    let subjects: Vec<&str> = events.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        subjects,
        ["created", "amended", "deleted"].map(|verb| format!("hospital.events.record.{id}.{verb}"))
    );
    let summary: Vec<(&str, i64, &str)> = events
        .iter()
        .map(|(_, e)| {
            (
                e.event_type.as_str(),
                e.aggregate_version,
                e.data["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("record.created", 1, "active"),
            ("record.amended", 2, "active"),
            ("record.deleted", 3, "entered_in_error")
        ]
    );
    for (_, event) in &events {
        assert_eq!(event.aggregate, Aggregate::Record);
        assert_eq!(event.aggregate_id.to_string(), id);
        assert_eq!(
            event.actor,
            Actor {
                id: doctor_id.clone(),
                role: "doctor".into()
            }
        );
        assert_eq!(event.event_id.get_version_num(), 7);
    }
    assert_eq!(events[0].1.data, record);
    assert_eq!(events[1].1.data["title"], "Observed closely");
    assert_eq!(events[2].1.correlation_id.as_deref(), Some("req-eie-1"));
}
