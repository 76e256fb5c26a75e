//! Bad input and failing dependencies get a clear problem answer, never a 500 or a hang.

use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::Method;
use serde_json::Value;

use crate::helpers::{Parts, spawn_app, spawn_app_with};

async fn assert_problem(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(actual, status, "{problem}");
    assert_eq!(problem["status"], status);
    assert!(problem["title"].is_string());
    problem
}

#[tokio::test]
async fn health_and_readiness_report_the_system() {
    let app = spawn_app().await;
    let health: Value = app
        .http
        .get(app.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let ready = app.http.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["services"]["patient"], "up");
    assert_eq!(ready["services"]["staff"], "up");
}

#[tokio::test]
async fn malformed_bodies_are_400_415_413() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let post = || app.api(Method::POST, "/api/patients", &token);

    let malformed = post()
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_problem(malformed, 400).await;
    let not_an_object = post()
        .header("content-type", "application/json")
        .body("[1, 2]")
        .send()
        .await
        .unwrap();
    assert_problem(not_an_object, 400).await;
    let wrong_type = post()
        .header("content-type", "text/plain")
        .body("name=Ada")
        .send()
        .await
        .unwrap();
    assert_problem(wrong_type, 415).await;
    let no_type = post().body("{}").send().await.unwrap();
    assert_problem(no_type, 415).await;
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(70 * 1024));
    let too_large = post()
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_problem(too_large, 413).await;
}

#[tokio::test]
async fn unknown_ids_and_routes_are_404s() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for path in [
        "/api/patients/not-a-uuid".to_owned(),
        format!("/api/patients/{}", uuid::Uuid::now_v7()),
        format!("/api/staff/{}", uuid::Uuid::now_v7()),
        "/api/nothing-here".to_owned(),
    ] {
        let response = app.api(Method::GET, &path, &token).send().await.unwrap();
        assert_problem(response, 404).await;
    }
}

#[tokio::test]
async fn a_service_that_is_down_is_a_quick_503() {
    let app = spawn_app_with(Parts {
        patient: false,
        ..Parts::default()
    })
    .await;
    let token = app.admin_token().await;
    let started = Instant::now();
    let response = app
        .api(Method::GET, "/api/patients", &token)
        .send()
        .await
        .unwrap();
    assert_problem(response, 503).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no responders must not wait for the timeout"
    );
    let ready = app.http.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["services"]["staff"], "up");
    assert_ne!(ready["services"]["patient"], "up");
}

#[tokio::test]
async fn a_service_that_does_not_answer_is_a_504_after_the_request_timeout() {
    let parts = Parts {
        patient: false,
        request_timeout: Duration::from_millis(500),
        ..Parts::default()
    };
    let app = spawn_app_with(parts).await;
    let token = app.admin_token().await;
    // Something takes the requests and never answers, like a hung service instance.
    let hung = app.nats_as("patient").await;
    let mut black_hole = hung
        .queue_subscribe("hospital.patient.*", "patient".to_owned())
        .await
        .unwrap();
    tokio::spawn(async move { while black_hole.next().await.is_some() {} });
    hung.flush().await.unwrap();
    // The server may answer "no responders" for a moment after a new subscription; wait until
    // a request is swallowed (times out) rather than refused.
    let gateway = app.nats_as("gateway").await;
    let swallowed = || async {
        let request = gateway.request("hospital.patient.list", "{}".into());
        tokio::time::timeout(Duration::from_millis(100), request)
            .await
            .is_err()
    };
    for _ in 0..20 {
        if swallowed().await {
            break;
        }
    }

    let started = Instant::now();
    let response = app
        .api(Method::GET, "/api/patients", &token)
        .send()
        .await
        .unwrap();
    assert_problem(response, 504).await;
    assert!(started.elapsed() < Duration::from_secs(3));
}
