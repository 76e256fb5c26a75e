//! HTTP hardening over real HTTP (issue #5): security headers on pages, API answers and errors;
//! CORS off by default and from an allowlist; the request time limit (the live feed excepted);
//! a body that does not arrive in time; an oversized body.

use std::time::{Duration, Instant};

use gateway::config::HttpSettings;
use gateway::security_headers::{API_CSP, PAGE_CSP};
use reqwest::Method;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{ADMIN_PASSWORD, Parts, patient_body, spawn_app, spawn_app_with_http};

const LISTED: &str = "http://localhost:3000";
const UNLISTED: &str = "https://evil.example.com";

fn assert_security_headers(response: &reqwest::Response, csp: &str) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let url = response.url().path().to_owned();
    assert_eq!(
        header("content-security-policy").as_deref(),
        Some(csp),
        "{url}"
    );
    assert_eq!(
        header("x-content-type-options").as_deref(),
        Some("nosniff"),
        "{url}"
    );
    assert_eq!(header("x-frame-options").as_deref(), Some("DENY"), "{url}");
    assert_eq!(
        header("referrer-policy").as_deref(),
        Some("no-referrer"),
        "{url}"
    );
    assert_eq!(
        header("cross-origin-opener-policy").as_deref(),
        Some("same-origin"),
        "{url}"
    );
    assert!(header("permissions-policy").is_some(), "{url}");
}

fn cors_headers(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .keys()
        .map(|name| name.as_str().to_owned())
        .filter(|name| name.starts_with("access-control-allow-"))
        .collect()
}

async fn preflight(app: &crate::helpers::TestApp, origin: &str) -> reqwest::Response {
    app.http
        .request(Method::OPTIONS, app.url("/api/patients"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap()
}

async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    response.json().await.unwrap()
}

#[tokio::test]
async fn pages_api_answers_and_errors_carry_the_security_headers() {
    let app = spawn_app().await;

    let page = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_security_headers(&page, PAGE_CSP);
    let dashboard = app
        .http
        .get(app.url("/dashboard.html"))
        .send()
        .await
        .unwrap();
    assert_security_headers(&dashboard, PAGE_CSP);

    let login = app.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(login.status(), 200);
    assert_security_headers(&login, API_CSP);
    assert_eq!(login.headers()["cache-control"], "no-store");
    let token = login.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let list = app
        .api(Method::GET, "/api/patients", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    assert_security_headers(&list, API_CSP);

    let unauthorized = app.http.get(app.url("/api/patients")).send().await.unwrap();
    assert_security_headers(&unauthorized, API_CSP);
    problem(unauthorized, 401).await;

    let missing = app.http.get(app.url("/nothing.html")).send().await.unwrap();
    assert_security_headers(&missing, API_CSP);
    problem(missing, 404).await;

    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(70 * 1024));
    let too_large = app
        .api(Method::POST, "/api/patients", &token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_security_headers(&too_large, API_CSP);
    let body = problem(too_large, 413).await;
    assert_eq!(body["detail"], "the request body is larger than 64 KiB");
}

#[tokio::test]
async fn by_default_no_origin_gets_cors_and_preflights_are_refused() {
    let app = spawn_app().await;
    let refused = preflight(&app, LISTED).await;
    assert!(cors_headers(&refused).is_empty(), "{refused:?}");
    problem(refused, 403).await;

    let token = app.admin_token().await;
    let response = app
        .api(Method::GET, "/api/patients", &token)
        .header("origin", LISTED)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(cors_headers(&response).is_empty(), "{response:?}");
}

#[tokio::test]
async fn only_origins_on_the_allowlist_may_call_from_another_origin() {
    let http = HttpSettings {
        cors_origins: vec![LISTED.into()],
        ..HttpSettings::default()
    };
    let app = spawn_app_with_http(Parts::default(), http).await;

    let allowed = preflight(&app, LISTED).await;
    assert!(allowed.status().is_success(), "{allowed:?}");
    assert_eq!(allowed.headers()["access-control-allow-origin"], LISTED);
    let methods = allowed.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(methods.contains("POST"), "{methods}");

    let refused = preflight(&app, UNLISTED).await;
    assert!(cors_headers(&refused).is_empty(), "{refused:?}");
    problem(refused, 403).await;

    let token = app.admin_token().await;
    let created = app
        .api(Method::POST, "/api/patients", &token)
        .header("origin", LISTED)
        .json(&patient_body("Cora Origin"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["access-control-allow-origin"], LISTED);
    let exposed = created.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(
        exposed.contains("location") && exposed.contains("etag"),
        "{exposed}"
    );

    let other = app
        .api(Method::GET, "/api/patients", &token)
        .header("origin", UNLISTED)
        .send()
        .await
        .unwrap();
    assert!(cors_headers(&other).is_empty(), "{other:?}");
}

#[tokio::test]
async fn a_request_that_outlasts_the_limit_is_a_503_problem() {
    // The patient service is replaced by a subscriber that never answers, and NATS would wait a
    // minute: only the HTTP time limit (1 s) can end the request.
    let http = HttpSettings {
        request_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_millis(500),
        ..HttpSettings::default()
    };
    let parts = Parts {
        patient: false,
        request_timeout: Duration::from_secs(60),
        ..Parts::default()
    };
    let app = spawn_app_with_http(parts, http).await;
    // As the patient service's NATS user: the only one allowed to take its commands.
    let impostor = app.nats_as(shared_events::subjects::service::PATIENT).await;
    let _silent = impostor.subscribe("hospital.patient.*").await.unwrap();
    kit::nats_server::round_trip(&impostor).await;

    let token = app.admin_token().await;
    let started = Instant::now();
    let response = app
        .api(Method::GET, "/api/patients", &token)
        .send()
        .await
        .unwrap();
    assert_security_headers(&response, API_CSP);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = problem(response, 503).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("took longer than 1 s"),
        "{body}"
    );
    assert_eq!(body["request_id"], request_id.as_str());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
}

#[tokio::test]
async fn the_live_feed_outlives_the_request_time_limit() {
    let http = HttpSettings {
        request_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_millis(500),
        ..HttpSettings::default()
    };
    let app = spawn_app_with_http(Parts::default(), http).await;
    let token = app.admin_token().await;
    let mut feed = app
        .api(Method::GET, "/api/events/stream?aggregates=patient", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    let first = feed.chunk().await.unwrap().expect("the ready message");
    assert!(String::from_utf8_lossy(&first).contains("event: ready"));

    // Past the limit, the feed is still open and still delivers.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let patient = app.create_patient(&token, patient_body("Lena Later")).await;
    let id = patient["id"].as_str().unwrap().to_owned();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains(&id) {
        assert!(
            Instant::now() < deadline,
            "no event after the limit: {seen}"
        );
        let chunk = tokio::time::timeout(Duration::from_secs(10), feed.chunk())
            .await
            .expect("the feed delivers")
            .unwrap()
            .expect("the feed is still open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: patient.created"), "{seen}");
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_a_408_problem() {
    let http = HttpSettings {
        request_timeout: Duration::from_secs(30),
        body_timeout: Duration::from_millis(300),
        ..HttpSettings::default()
    };
    let app = spawn_app_with_http(Parts::default(), http).await;
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    // A body announced as 100 bytes, of which only the first few ever come.
    let head = format!(
        "POST /auth/login HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\nConnection: close\r\n\r\n{{\"username\": "
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the gateway answers without waiting for the rest")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(
        answer.contains("the request body was not received in time"),
        "{answer}"
    );
}
