//! What the gateway's tests share: a real nats-server of their own, the router driven with
//! `oneshot`, and stand-in patient and staff services built on the same kit as the real ones,
//! which answer with what they received so a test can see what the gateway sent.

#![allow(dead_code)] // each test binary uses its own part of this

pub mod live;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::connection::State as ConnectionState;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use bytes::Bytes;
use gateway::config::HttpSettings;
use gateway::{AppState, Config, app};
use kit::command::{CommandHandler, RequestContext, ServiceSpec, serve_commands};
use kit::nats::NatsConfig;
use kit::nats_server::TestNatsServer;
use serde_json::{Value, json};
use shared_events::staff::StaffRole;
use shared_events::subjects::service;
use shared_events::{Authenticated, ErrorCode, ServiceError};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use uuid::Uuid;

pub const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256";

/// Ids the stand-in patient service treats specially.
pub const MISSING: Uuid = Uuid::from_u128(0x404);
pub const BROKEN: Uuid = Uuid::from_u128(0x500);
pub const SLOW: Uuid = Uuid::from_u128(0x504);
/// The `next_after` of every page the stand-in lists (unless asked for the last page).
pub const NEXT: Uuid = Uuid::from_u128(0x7e57);

/// The login the stand-in staff service accepts.
pub const USERNAME: &str = "admin";
/// The username the stand-in staff service refuses as having too many failures, for
/// [`LIMITED_WAIT`], naming the client address it was sent.
pub const LIMITED: &str = "limited";
pub const LIMITED_WAIT: Duration = Duration::from_secs(120);
pub const PASSWORD: &str = "correct horse battery staple";
pub const ADMIN_ID: Uuid = Uuid::from_u128(0xad);

/// Every service the gateway routes to, as `/ready` lists them.
pub const ALL_SERVICES: [&str; 4] = [
    service::PATIENT,
    service::STAFF,
    service::APPOINTMENT,
    service::RECORD,
];

/// The filter every stand-in refuses as unknown, as a real service would.
pub const UNKNOWN_FILTER: &str = "bogus";

pub struct TestGateway {
    pub state: AppState,
    /// Stops the stand-in services (if any) when the test ends.
    services: CancellationToken,
    _nats: TestNatsServer,
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.services.cancel();
    }
}

pub fn frontend_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../frontend"))
}

/// The gateway's settings on `nats`, connecting as its own NATS user.
pub fn config(nats: &TestNatsServer, request_timeout: Duration) -> Config {
    Config {
        nats: NatsConfig {
            request_timeout,
            ..nats.config_for(kit::nats_users::GATEWAY)
        },
        http_addr: "127.0.0.1:0".parse().unwrap(),
        stream_replicas: 1,
        jwt_secret: SECRET.to_owned(),
        token_ttl: Duration::from_secs(15 * 60),
        frontend_dir: frontend_dir(),
        audit_retention: Duration::ZERO,
        http: HttpSettings::default(),
    }
}

impl TestGateway {
    /// A gateway on its own nats-server, with no service running.
    pub async fn without_services() -> Self {
        Self::start(false, Duration::from_secs(5)).await
    }

    /// A gateway with the stand-ins of all four services; requests time out after
    /// `request_timeout`.
    pub async fn with_services(request_timeout: Duration) -> Self {
        Self::start(true, request_timeout).await
    }

    async fn start(services: bool, request_timeout: Duration) -> Self {
        let running: &[&str] = if services { &ALL_SERVICES } else { &[] };
        Self::start_only(running, request_timeout).await
    }

    /// A gateway with the stand-ins of every service but `missing`; returns once the others
    /// answer (so `/ready` is 503 only for want of `missing`).
    pub async fn without(missing: &str) -> Self {
        let running: Vec<&str> = ALL_SERVICES
            .iter()
            .copied()
            .filter(|&name| name != missing)
            .collect();
        Self::start_only(&running, Duration::from_secs(5)).await
    }

    /// A gateway with every stand-in and these HTTP settings (CORS, time limits).
    pub async fn with_http(http: HttpSettings, request_timeout: Duration) -> Self {
        Self::start_with(&ALL_SERVICES, request_timeout, http).await
    }

    async fn start_only(running: &[&str], request_timeout: Duration) -> Self {
        Self::start_with(running, request_timeout, HttpSettings::default()).await
    }

    async fn start_with(running: &[&str], request_timeout: Duration, http: HttpSettings) -> Self {
        let nats = TestNatsServer::start().await;
        let mut config = config(&nats, request_timeout);
        config.http = http;
        let client = kit::nats::connect(&config.nats, "gateway-test")
            .await
            .expect("connect to the test nats-server");
        wait_for(|| client.connection_state() == ConnectionState::Connected).await;
        let state = AppState::new(client, &config);
        state.follow_revocations(config.token_ttl);
        wait_for(|| state.revocations().is_loaded()).await;
        let gateway = TestGateway {
            state,
            services: CancellationToken::new(),
            _nats: nats,
        };
        if !running.is_empty() {
            gateway.start_services(running).await;
        }
        gateway
    }

    async fn start_services(&self, running: &[&str]) {
        const CRUD: &[&str] = &["list", "get", "create", "update", "delete"];
        let stand_ins = [
            (
                service::PATIENT,
                CRUD,
                StandIn::Echo(service::PATIENT, "patient"),
            ),
            (service::STAFF, &["authenticate"][..], StandIn::Staff),
            (
                service::APPOINTMENT,
                CRUD,
                StandIn::Echo(service::APPOINTMENT, "appointment"),
            ),
            (
                service::RECORD,
                &["list", "get", "create", "update", "delete", "history"][..],
                StandIn::Echo(service::RECORD, "medical record"),
            ),
        ];
        for (name, actions, handler) in stand_ins {
            if !running.contains(&name) {
                continue;
            }
            let spec = ServiceSpec {
                name,
                description: "stand-in service",
                version: "0.1.0",
                actions,
            };
            // Each stand-in connects as the service it stands in for.
            let client = self._nats.connect_as(name).await;
            tokio::spawn(serve_commands(
                client,
                spec,
                Arc::new(handler),
                self.services.clone(),
            ));
        }
        // Ready once each started one answers its service-API ping.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let reply = self.send(get("/ready")).await;
            let ready = reply.json();
            if running.iter().all(|&name| ready["services"][name] == "up") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "stand-ins never became ready: {reply:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends one request through the whole router.
    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = app(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// A valid access token for a staff member with `role`.
    pub fn token(&self, role: StaffRole) -> String {
        let who = Authenticated {
            staff_id: ADMIN_ID,
            name: "Test User".into(),
            role,
        };
        self.state.tokens().issue(&who).unwrap().access_token
    }
}

async fn wait_for(condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json answer with `status`, and returns its body.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{self:?}"
        );
        let body = self.json();
        assert_eq!(body["status"], status);
        assert!(body["title"].is_string() && body["detail"].is_string());
        assert_eq!(body["type"], "about:blank");
        assert_eq!(
            body["request_id"].as_str(),
            self.header("x-request-id"),
            "the problem quotes the request id"
        );
        body
    }
}

pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

/// A request with a bearer token and, when given, a JSON body.
pub fn authorized(method: &str, uri: &str, token: &str, body: Option<Value>) -> Request<Body> {
    let builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

pub fn json_post(uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// The stand-in services: each answers with what it received, so tests can check it.
enum StandIn {
    /// An owning service (patient, appointment, record): its name and its noun.
    Echo(&'static str, &'static str),
    /// Logins only.
    Staff,
}

impl CommandHandler for StandIn {
    async fn handle(
        &self,
        action: &str,
        context: RequestContext,
        payload: Bytes,
    ) -> Result<Value, ServiceError> {
        let body: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
        match self {
            StandIn::Echo(name, noun) => echo(name, noun, action, context, body).await,
            StandIn::Staff => staff(body),
        }
    }
}

async fn echo(
    name: &str,
    noun: &str,
    action: &str,
    context: RequestContext,
    body: Value,
) -> Result<Value, ServiceError> {
    let seen = json!({
        "service": name,
        "action": action,
        "command": body,
        "actor_id": context.actor.id,
        "actor_role": context.actor.role,
        "request_id": context.request_id,
        "idempotency_key": context.idempotency_key,
    });
    let id = body["id"].as_str().and_then(|id| Uuid::parse_str(id).ok());
    match (action, id) {
        ("list", _) if body["filters"].get(UNKNOWN_FILTER).is_some() => Err(
            ServiceError::bad_request(format!("unknown filter: {UNKNOWN_FILTER}")),
        ),
        ("list", _) => {
            let next_after = if body["q"] == "last page" {
                None
            } else {
                Some(NEXT)
            };
            Ok(json!({"items": [seen], "next_after": next_after}))
        }
        ("create", _) if body["fields"].get("name").is_none() => {
            Err(ServiceError::invalid_field("name", "is required"))
        }
        ("create", _) => Ok(json!({"id": Uuid::now_v7(), "version": 1, "seen": seen})),
        (_, Some(MISSING)) => Err(ServiceError::not_found(noun)),
        (_, Some(BROKEN)) => Err(ServiceError::new(
            ErrorCode::Internal,
            "sqlite: disk I/O error in /var/lib/hospital/patient.db",
        )),
        (_, Some(SLOW)) => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Ok(json!({"id": SLOW, "version": 1}))
        }
        ("update", Some(_)) if body["expected_version"] == 99 => {
            Err(ServiceError::precondition_failed(3))
        }
        ("update", Some(id)) => Ok(json!({"id": id, "version": 4, "seen": seen})),
        ("history", Some(id)) => Ok(json!([
            {"version": 1, "change": "created", "record": {"id": id, "version": 1}},
            {"version": 2, "change": "amended", "record": {"id": id, "version": 2}, "seen": seen},
        ])),
        (_, Some(id)) => Ok(json!({"id": id, "version": 3, "seen": seen})),
        (_, None) => Err(ServiceError::bad_request("no id")),
    }
}

fn staff(body: Value) -> Result<Value, ServiceError> {
    match (body["username"].as_str(), body["password"].as_str()) {
        (Some(USERNAME), Some(PASSWORD)) => Ok(json!({
            "staff_id": ADMIN_ID,
            "name": "Grace Hopper",
            "role": "admin",
        })),
        (Some(LIMITED), _) => Err(ServiceError::too_many_requests(
            format!("too many failed logins from {}", body["client_address"]),
            LIMITED_WAIT,
        )),
        // Unlike the real service, these differ: the gateway must answer both alike.
        (Some(USERNAME), _) => Err(ServiceError::unauthorized("wrong password")),
        _ => Err(ServiceError::unauthorized("no such user")),
    }
}
