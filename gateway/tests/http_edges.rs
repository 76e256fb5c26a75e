//! The gateway's answers that need no service: health, authentication, body checks, unknown
//! routes, the frontend, and a clean 503 when no service is running.

mod support;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use kit::runtime::Component;
use serde_json::json;
use shared_events::Authenticated;
use shared_events::staff::StaffRole;
use support::{TestGateway, authorized, get, json_post};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

#[tokio::test]
async fn health_answers_ok_without_any_service() {
    let gateway = TestGateway::without_services().await;
    let reply = gateway.send(get("/health")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({"status": "ok"}));
    assert!(reply.header("x-request-id").is_some());
}

#[tokio::test]
async fn ready_is_503_and_names_the_missing_services() {
    let gateway = TestGateway::without_services().await;
    let reply = gateway.send(get("/ready")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.json(),
        json!({
            "status": "not_ready",
            "nats": "connected",
            "services": {
                "patient": "down",
                "staff": "down",
                "appointment": "down",
                "record": "down",
            },
            "revocations": "loaded",
        })
    );
}

#[tokio::test]
async fn the_api_without_a_token_is_401_asking_for_a_bearer_token() {
    let gateway = TestGateway::without_services().await;
    let reply = gateway.send(get("/api/patients")).await;
    let problem = reply.problem(401);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    assert!(problem["detail"].as_str().unwrap().contains("access token"));
}

#[tokio::test]
async fn the_api_with_a_bad_token_is_401() {
    let gateway = TestGateway::without_services().await;
    let forged = {
        let other = gateway::auth::Tokens::new(
            b"not-the-gateway-secret-but-long-enough",
            Duration::from_secs(60),
        );
        let who = Authenticated {
            staff_id: Uuid::now_v7(),
            name: "Mallory".into(),
            role: StaffRole::Admin,
        };
        other.issue(&who).unwrap().access_token
    };
    for token in ["garbage", "a.b.c", forged.as_str()] {
        let reply = gateway
            .send(authorized("GET", "/api/patients", token, None))
            .await;
        reply.problem(401);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    }
    let basic = Request::get("/api/staff")
        .header(header::AUTHORIZATION, "Basic YWRtaW46YWRtaW4=")
        .body(Body::empty())
        .unwrap();
    gateway.send(basic).await.problem(401);
}

#[tokio::test]
async fn an_expired_token_is_401_saying_so() {
    let gateway = TestGateway::without_services().await;
    let who = Authenticated {
        staff_id: Uuid::now_v7(),
        name: "Ada".into(),
        role: StaffRole::Doctor,
    };
    let an_hour_ago = chrono::Utc::now().timestamp() - 3600;
    let expired = gateway.state.tokens().issue_at(&who, an_hour_ago).unwrap();
    let reply = gateway
        .send(authorized(
            "GET",
            "/api/patients",
            &expired.access_token,
            None,
        ))
        .await;
    let problem = reply.problem(401);
    assert!(problem["detail"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let gateway = TestGateway::without_services().await;
    let token = gateway.token(StaffRole::Admin);
    let request = Request::post("/api/patients")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("name=Ada"))
        .unwrap();
    gateway.send(request).await.problem(415);
    let no_type = Request::post("/auth/login")
        .body(Body::from(r#"{"username":"a","password":"b"}"#))
        .unwrap();
    gateway.send(no_type).await.problem(415);
}

#[tokio::test]
async fn malformed_json_is_400() {
    let gateway = TestGateway::without_services().await;
    let reply = gateway
        .send(json_post("/auth/login", r#"{"username": "#))
        .await;
    let problem = reply.problem(400);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
}

#[tokio::test]
async fn a_json_value_that_is_not_an_object_is_400() {
    let gateway = TestGateway::without_services().await;
    let token = gateway.token(StaffRole::Admin);
    let request = authorized("POST", "/api/patients", &token, Some(json!(["Ada"])));
    let problem = gateway.send(request).await.problem(400);
    assert_eq!(problem["detail"], "request body must be a JSON object");
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let gateway = TestGateway::without_services().await;
    let big = json!({"name": "x".repeat(70 * 1024)}).to_string();
    gateway
        .send(json_post("/auth/login", &big))
        .await
        .problem(413);

    let token = gateway.token(StaffRole::Admin);
    let request = authorized(
        "POST",
        "/api/patients",
        &token,
        Some(json!({"address": "x".repeat(70 * 1024)})),
    );
    gateway.send(request).await.problem(413);
}

#[tokio::test]
async fn a_login_missing_its_fields_is_422_naming_them() {
    let gateway = TestGateway::without_services().await;
    let reply = gateway.send(json_post("/auth/login", "{}")).await;
    let problem = reply.problem(422);
    assert_eq!(problem["errors"][0]["field"], "username");
    assert_eq!(problem["errors"][1]["field"], "password");
}

#[tokio::test]
async fn an_unknown_route_is_a_404_problem() {
    let gateway = TestGateway::without_services().await;
    for path in [
        "/nope",
        "/api/nothing-here",
        "/api",
        "/../etc/passwd",
        "/api/patients/1/x",
    ] {
        gateway.send(get(path)).await.problem(404);
    }
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem_listing_the_allowed_ones() {
    let gateway = TestGateway::without_services().await;
    let request = Request::patch("/api/patients").body(Body::empty()).unwrap();
    let reply = gateway.send(request).await;
    reply.problem(405);
    let allow = reply.header("allow").unwrap();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let reply = gateway
        .send(Request::delete("/health").body(Body::empty()).unwrap())
        .await;
    reply.problem(405);
}

#[tokio::test]
async fn an_id_that_is_not_a_uuid_is_404_without_asking_a_service() {
    let gateway = TestGateway::without_services().await;
    let token = gateway.token(StaffRole::Doctor);
    // With no service running, a routed call would be a 503: a 404 proves no call was made.
    for (method, body) in [("GET", None), ("PUT", Some(json!({}))), ("DELETE", None)] {
        let reply = gateway
            .send(authorized(method, "/api/patients/42", &token, body))
            .await;
        assert_eq!(reply.problem(404)["detail"], "patient not found");
    }
    let reply = gateway
        .send(authorized("GET", "/api/staff/not-an-id", &token, None))
        .await;
    assert_eq!(reply.problem(404)["detail"], "staff member not found");
    for (path, detail) in [
        ("/api/appointments/42", "appointment not found"),
        ("/api/records/42", "medical record not found"),
        ("/api/patients/42/appointments", "patient not found"),
        (
            "/api/staff/x/appointments?date=2025-01-02",
            "staff member not found",
        ),
        ("/api/patients/42/records", "patient not found"),
        ("/api/records/42/history", "medical record not found"),
    ] {
        let reply = gateway.send(authorized("GET", path, &token, None)).await;
        assert_eq!(reply.problem(404)["detail"], detail, "{path}");
    }
}

#[tokio::test]
async fn a_routed_call_without_services_is_503_at_once() {
    let gateway = TestGateway::without_services().await;
    let token = gateway.token(StaffRole::Receptionist);
    let started = Instant::now();
    let reply = gateway
        .send(authorized("GET", "/api/patients", &token, None))
        .await;
    let problem = reply.problem(503);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("patient service")
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    let login = json_post("/auth/login", r#"{"username":"admin","password":"pw"}"#);
    gateway.send(login).await.problem(503);
}

#[tokio::test]
async fn bad_list_parameters_are_400() {
    // With no service running, a routed call would be a 503: a 400 proves no call was made.
    let gateway = TestGateway::without_services().await;
    let token = gateway.token(StaffRole::Nurse);
    let too_many: Vec<String> = (0..17).map(|i| format!("f{i}=x")).collect();
    let long_name = format!("{}=x", "n".repeat(65));
    let long_value = format!("status={}", "v".repeat(257));
    for query in [
        "limit=0",
        "limit=ten",
        "after=yesterday",
        "status=booked&status=cancelled",
        "q=a&q=b",
        "status=",
        "status",
        "=x",
        &too_many.join("&"),
        &long_name,
        &long_value,
    ] {
        for path in [
            "/api/patients",
            "/api/appointments",
            "/api/records",
            "/api/patients/0190f6a4-7c1e-7b3a-9c4d-2e5f6a7b8c9d/appointments",
        ] {
            let reply = gateway
                .send(authorized("GET", &format!("{path}?{query}"), &token, None))
                .await;
            reply.problem(400);
        }
    }
}

#[tokio::test]
async fn a_nested_list_refuses_the_filter_its_path_gives() {
    let gateway = TestGateway::without_services().await;
    let token = gateway.token(StaffRole::Doctor);
    let id = Uuid::now_v7();
    for path in [
        format!("/api/patients/{id}/appointments?patient_id={id}"),
        format!("/api/patients/{id}/records?patient_id={id}"),
        format!("/api/staff/{id}/appointments?doctor_id={id}&date=2025-01-02"),
    ] {
        let problem = gateway
            .send(authorized("GET", &path, &token, None))
            .await
            .problem(400);
        assert!(
            problem["detail"].as_str().unwrap().contains("_id"),
            "{problem}"
        );
    }
}

#[tokio::test]
async fn the_client_request_id_is_echoed() {
    let gateway = TestGateway::without_services().await;
    let request = Request::get("/nope")
        .header("x-request-id", "trace-me-123")
        .body(Body::empty())
        .unwrap();
    let reply = gateway.send(request).await;
    assert_eq!(reply.header("x-request-id"), Some("trace-me-123"));
    assert_eq!(reply.problem(404)["request_id"], "trace-me-123");
}

#[tokio::test]
async fn the_root_serves_the_login_page_and_the_frontend_its_files() {
    let gateway = TestGateway::without_services().await;
    let reply = gateway.send(get("/")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let page = String::from_utf8_lossy(&reply.body);
    assert!(
        page.contains("<form") && page.contains("login.js"),
        "{page}"
    );
    assert!(reply.header("content-security-policy").is_some());

    for (path, kind) in [
        ("/login.html", "text/html"),
        ("/dashboard.html", "text/html"),
        ("/dashboard", "text/html"),
        ("/app.css", "text/css"),
        ("/login.js", ""),
        ("/dashboard.js", ""),
        ("/api.js", ""),
    ] {
        let reply = gateway.send(get(path)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        let content_type = reply.header("content-type").unwrap();
        // Scripts: text/javascript or application/javascript, both fine for modules.
        let expected = if kind.is_empty() {
            content_type.contains("javascript")
        } else {
            content_type.starts_with(kind)
        };
        assert!(expected, "{path}: {content_type}");
    }
    let reply = gateway
        .send(Request::post("/login.html").body(Body::empty()).unwrap())
        .await;
    reply.problem(404);
}

/// One HTTP/1.1 GET over a plain TCP stream: status line and body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn the_gateway_serves_on_its_port_and_stops_when_told() {
    let nats = kit::nats_server::TestNatsServer::start().await;
    let config = support::config(&nats, Duration::from_secs(5));
    let gateway = gateway::Gateway::build(config).await.unwrap();
    let addr = gateway.local_addr();
    assert_ne!(addr.port(), 0);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(gateway.run_until_stopped(shutdown.clone()));

    let answer = http_get(addr, "/health").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(r#"{"status":"ok"}"#), "{answer}");

    shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(5), running).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "{stopped:?}");
}
