//! The gateway in front of stand-in services: what it sends over NATS (commands, headers) and
//! how it turns replies and typed errors into HTTP.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use serde_json::json;
use shared_events::staff::StaffRole;
use support::{
    ADMIN_ID, BROKEN, LIMITED, LIMITED_WAIT, MISSING, NEXT, PASSWORD, SLOW, TestGateway, USERNAME,
    authorized, get, json_post,
};
use uuid::Uuid;

async fn gateway() -> TestGateway {
    TestGateway::with_services(Duration::from_secs(5)).await
}

#[tokio::test]
async fn ready_reports_every_check_once_the_services_answer() {
    let gateway = gateway().await;
    let reply = gateway.send(get("/ready")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({
            "status": "ready",
            "nats": "connected",
            "services": {"patient": "up", "staff": "up", "appointment": "up", "record": "up"},
            "revocations": "loaded",
        })
    );
}

#[tokio::test]
async fn ready_is_503_while_any_one_service_is_missing() {
    for missing in support::ALL_SERVICES {
        let gateway = TestGateway::without(missing).await;
        let reply = gateway.send(get("/ready")).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{missing}");
        let ready = reply.json();
        assert_eq!(ready["status"], "not_ready");
        let services = ready["services"].as_object().unwrap();
        assert_eq!(services.len(), 4, "{ready}");
        for (name, state) in services {
            let expected = if name == missing { "down" } else { "up" };
            assert_eq!(state, expected, "{name} while {missing} is missing");
        }
    }
}

#[tokio::test]
async fn login_issues_a_bearer_token_for_the_staff_member() {
    let gateway = gateway().await;
    let body = json!({"username": USERNAME, "password": PASSWORD}).to_string();
    let reply = gateway.send(json_post("/auth/login", &body)).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let answer = reply.json();
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 900);
    let claims = gateway
        .state
        .tokens()
        .verify(answer["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.sub, ADMIN_ID);
    assert_eq!(claims.role, StaffRole::Admin);
    assert_eq!(claims.name, "Grace Hopper");

    // The token it issued opens the API.
    let token = answer["access_token"].as_str().unwrap();
    let reply = gateway
        .send(authorized("GET", "/api/patients", token, None))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_401() {
    let gateway = gateway().await;
    let mut problems = Vec::new();
    for (username, password) in [(USERNAME, "wrong"), ("nobody", PASSWORD)] {
        let body = json!({"username": username, "password": password}).to_string();
        let reply = gateway.send(json_post("/auth/login", &body)).await;
        let mut problem = reply.problem(401);
        problem.as_object_mut().unwrap().remove("request_id");
        problems.push(problem);
    }
    assert_eq!(problems[0], problems[1]);
    assert_eq!(problems[0]["detail"], "invalid username or password");
}

#[tokio::test]
async fn a_login_refused_by_the_staff_service_is_a_429_with_its_retry_after() {
    let gateway = gateway().await;
    let body = json!({"username": LIMITED, "password": PASSWORD}).to_string();
    let mut request = json_post("/auth/login", &body);
    // The client's address, as the server's connection info gives it: passed to the service.
    let client: SocketAddr = "10.1.2.3:40123".parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(client));
    let reply = gateway.send(request).await;
    let problem = reply.problem(429);
    assert_eq!(
        reply.header("retry-after"),
        Some(LIMITED_WAIT.as_secs().to_string().as_str())
    );
    assert_eq!(
        problem["detail"],
        "too many failed logins from \"10.1.2.3\""
    );
}

#[tokio::test]
async fn a_command_carries_the_caller_the_request_id_and_the_idempotency_key() {
    let gateway = gateway().await;
    let token = gateway.token(StaffRole::Receptionist);
    let request = Request::post("/api/patients")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-request-id", "req-42")
        .header("idempotency-key", "key-7")
        .body(Body::from(r#"{"name": "Ada"}"#))
        .unwrap();
    let reply = gateway.send(request).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(reply.header("x-request-id"), Some("req-42"));
    let seen = &reply.json()["seen"];
    assert_eq!(seen["action"], "create");
    assert_eq!(seen["command"], json!({"fields": {"name": "Ada"}}));
    assert_eq!(seen["actor_id"], ADMIN_ID.to_string());
    assert_eq!(seen["actor_role"], "receptionist");
    assert_eq!(seen["request_id"], "req-42");
    assert_eq!(seen["idempotency_key"], "key-7");
}

#[tokio::test]
async fn without_a_client_request_id_one_is_made_and_sent_on() {
    let gateway = gateway().await;
    let token = gateway.token(StaffRole::Doctor);
    let id = Uuid::now_v7();
    let reply = gateway
        .send(authorized(
            "GET",
            &format!("/api/patients/{id}"),
            &token,
            None,
        ))
        .await;
    let made = reply.header("x-request-id").unwrap().to_owned();
    assert!(Uuid::parse_str(&made).is_ok());
    assert_eq!(reply.json()["seen"]["request_id"], made);
    assert_eq!(reply.json()["seen"]["idempotency_key"], json!(null));
}

#[tokio::test]
async fn create_answers_201_with_location_and_etag() {
    let gateway = gateway().await;
    let token = gateway.token(StaffRole::Admin);
    let reply = gateway
        .send(authorized(
            "POST",
            "/api/patients",
            &token,
            Some(json!({"name": "Ada"})),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        reply.header("location"),
        Some(format!("/api/patients/{id}").as_str())
    );
    assert_eq!(reply.header("etag"), Some("\"1\""));
}

#[tokio::test]
async fn get_one_answers_the_entity_with_its_version_as_etag() {
    let gateway = gateway().await;
    let token = gateway.token(StaffRole::Nurse);
    let id = Uuid::now_v7();
    let reply = gateway
        .send(authorized(
            "GET",
            &format!("/api/patients/{id}"),
            &token,
            None,
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("etag"), Some("\"3\""));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json()["seen"]["command"], json!({"id": id}));
}

#[tokio::test]
async fn update_sends_the_if_match_version_and_answers_the_new_etag() {
    let gateway = gateway().await;
    let token = gateway.token(StaffRole::Admin);
    let id = Uuid::now_v7();
    let uri = format!("/api/patients/{id}");
    for (if_match, expected) in [
        (Some("\"3\""), json!(3)),
        (Some("W/\"3\""), json!(3)),
        (Some("3"), json!(3)),
        (Some("*"), json!(null)),
        (None, json!(null)),
    ] {
        let mut request = authorized("PUT", &uri, &token, Some(json!({"name": "Ada"})));
        if let Some(value) = if_match {
            request
                .headers_mut()
                .insert(header::IF_MATCH, value.parse().unwrap());
        }
        let reply = gateway.send(request).await;
        assert_eq!(reply.status, StatusCode::OK, "{if_match:?}");
        assert_eq!(reply.header("etag"), Some("\"4\""));
        let command = &reply.json()["seen"]["command"];
        assert_eq!(command["expected_version"], expected, "{if_match:?}");
        assert_eq!(command["fields"], json!({"name": "Ada"}));
    }
}

#[tokio::test]
async fn an_unparsable_if_match_is_412_and_a_stale_one_412_from_the_service() {
    let gateway = gateway().await;
    let token = gateway.token(StaffRole::Admin);
    let uri = format!("/api/patients/{}", Uuid::now_v7());
    let mut request = authorized("DELETE", &uri, &token, None);
    request
        .headers_mut()
        .insert(header::IF_MATCH, "\"three\"".parse().unwrap());
    gateway.send(request).await.problem(412);

    let mut request = authorized("PUT", &uri, &token, Some(json!({"name": "Ada"})));
    request
        .headers_mut()
        .insert(header::IF_MATCH, "\"99\"".parse().unwrap());
    let problem = gateway.send(request).await.problem(412);
    assert!(problem["detail"].as_str().unwrap().contains("version is 3"));
}

#[tokio::test]
async fn delete_answers_204_without_a_body() {
    let gateway = gateway().await;
    let token = gateway.token(StaffRole::Admin);
    let mut request = authorized(
        "DELETE",
        &format!("/api/patients/{}", Uuid::now_v7()),
        &token,
        None,
    );
    request
        .headers_mut()
        .insert(header::IF_MATCH, "\"3\"".parse().unwrap());
    let reply = gateway.send(request).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(reply.body.is_empty());
}

#[tokio::test]
async fn a_list_is_the_array_of_items_with_a_link_to_the_next_page() {
    let gateway = gateway().await;
    let token = gateway.token(StaffRole::Doctor);
    let reply = gateway
        .send(authorized(
            "GET",
            "/api/patients?q=Ada%20L%C3%B6we&limit=2",
            &token,
            None,
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let items = reply.json();
    assert!(items.is_array(), "{items}");
    assert_eq!(items[0]["command"], json!({"q": "Ada Löwe", "limit": 2}));
    assert_eq!(
        reply.header("link"),
        Some(
            format!("</api/patients?limit=2&after={NEXT}&q=Ada+L%C3%B6we>; rel=\"next\"").as_str()
        )
    );

    let last = gateway
        .send(authorized(
            "GET",
            "/api/patients?q=last%20page",
            &token,
            None,
        ))
        .await;
    assert_eq!(last.status, StatusCode::OK);
    assert_eq!(last.header("link"), None);
}

#[tokio::test]
async fn service_errors_become_problems_with_their_status() {
    let gateway = gateway().await;
    let token = gateway.token(StaffRole::Admin);

    let reply = gateway
        .send(authorized(
            "GET",
            &format!("/api/patients/{MISSING}"),
            &token,
            None,
        ))
        .await;
    assert_eq!(reply.problem(404)["detail"], "patient not found");

    let reply = gateway
        .send(authorized(
            "POST",
            "/api/patients",
            &token,
            Some(json!({"phone": "1"})),
        ))
        .await;
    let problem = reply.problem(422);
    assert_eq!(
        problem["errors"],
        json!([{"field": "name", "message": "is required"}])
    );

    let reply = gateway
        .send(authorized(
            "GET",
            &format!("/api/patients/{BROKEN}"),
            &token,
            None,
        ))
        .await;
    let problem = reply.problem(500);
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        !detail.contains("sqlite") && !detail.contains("/var/lib"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_slow_service_is_504_after_the_request_timeout() {
    let gateway = TestGateway::with_services(Duration::from_millis(300)).await;
    let token = gateway.token(StaffRole::Admin);
    let started = Instant::now();
    let reply = gateway
        .send(authorized(
            "GET",
            &format!("/api/patients/{SLOW}"),
            &token,
            None,
        ))
        .await;
    reply.problem(504);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_resource_whose_service_is_not_running_is_503_while_others_work() {
    // The stand-in staff service only answers logins: listing staff finds no responder.
    let gateway = gateway().await;
    let token = gateway.token(StaffRole::Admin);
    let reply = gateway
        .send(authorized("GET", "/api/staff", &token, None))
        .await;
    let problem = reply.problem(503);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("staff service")
    );
}

#[tokio::test]
async fn a_read_is_not_answered_when_its_audit_entry_cannot_be_stored_but_a_write_is() {
    let gateway = gateway().await;
    // A stream of that name that does not take the audit subjects: every audit append fails.
    let js = gateway.state.jetstream();
    js.create_stream(async_nats::jetstream::stream::Config {
        name: shared_events::subjects::AUDIT_STREAM.to_owned(),
        subjects: vec!["elsewhere.audit.>".to_owned()],
        ..Default::default()
    })
    .await
    .unwrap();
    let token = gateway.token(StaffRole::Admin);
    let read = gateway
        .send(authorized(
            "GET",
            &format!("/api/patients/{}", Uuid::now_v7()),
            &token,
            None,
        ))
        .await;
    assert_eq!(read.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(read.json().get("id").is_none(), "no data without its trail");
    let write = gateway
        .send(authorized(
            "POST",
            "/api/patients",
            &token,
            Some(json!({"name": "Ada"})),
        ))
        .await;
    assert_eq!(
        write.status,
        StatusCode::CREATED,
        "a change made is answered"
    );
}
