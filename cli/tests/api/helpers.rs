//! `spawn_app()`: the whole system on free ports with fresh data, plus the client-side helpers
//! every test uses (login, JSON requests, reading the event stream).

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use kit::ServiceConfig;
use kit::nats::NatsConfig;
use kit::nats_server::TestNatsServer;
use kit::runtime::Component;
use serde_json::{Value, json};
use shared_events::EventEnvelope;
use shared_events::subjects::EVENT_STREAM;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::backend::ServiceDatabases;

pub const ADMIN_PASSWORD: &str = "correct horse battery staple";
pub const JWT_SECRET: &str = "a-test-secret-that-is-long-enough-0123456789";

/// Which parts of the system a test runs.
#[derive(Clone, Copy)]
pub struct Parts {
    pub patient: bool,
    pub staff: bool,
    pub appointment: bool,
    pub record: bool,
    /// The gateway's NATS request timeout.
    pub request_timeout: Duration,
}

impl Default for Parts {
    fn default() -> Self {
        Parts {
            patient: true,
            staff: true,
            appointment: true,
            record: true,
            request_timeout: Duration::from_secs(5),
        }
    }
}

pub struct TestApp {
    /// `http://127.0.0.1:<port>`
    pub address: String,
    pub http: reqwest::Client,
    pub nats_server: TestNatsServer,
    /// A NATS client as the operator user, as an operator's `nats` tool would be: it reads
    /// everything and can neither send commands nor publish events (see [`TestApp::nats_as`]).
    pub nats: async_nats::Client,
    pub data_dir: tempfile::TempDir,
    /// Each service's database: a SQLite file in `data_dir`, or a PostgreSQL database
    /// (`HOSPITAL_TEST_BACKEND=postgres`, see [`crate::backend`]).
    pub databases: ServiceDatabases,
    /// Cancelled when the app is dropped: every component stops.
    shutdown: CancellationToken,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Parts::default()).await
}

pub async fn spawn_app_with(parts: Parts) -> TestApp {
    spawn_app_with_http(parts, gateway::config::HttpSettings::default()).await
}

/// As [`spawn_app_with`], the gateway with these HTTP settings (CORS allowlist, time limits).
pub async fn spawn_app_with_http(parts: Parts, http: gateway::config::HttpSettings) -> TestApp {
    let nats_server = TestNatsServer::start().await;
    let data_dir = tempfile::tempdir().expect("temporary data directory");
    let databases = ServiceDatabases::new(data_dir.path()).await;
    let shutdown = CancellationToken::new();
    // Every component connects as its own NATS user; the passwords are also kept in the data
    // directory, as `hospital up` keeps them, for the operator commands the tests run.
    let nats_config = NatsConfig {
        request_timeout: parts.request_timeout,
        ..nats_server.config_for("gateway")
    };
    nats_server
        .passwords()
        .save(&data_dir.path().join(kit::nats_users::FILE_NAME))
        .expect("keep the NATS passwords");

    if parts.patient {
        let config = patient_config(&nats_server, &databases);
        let service = patient_service::PatientService::build(config)
            .await
            .expect("patient service starts");
        run(service, shutdown.clone());
    }
    if parts.staff {
        let config = staff_service::Config {
            service: service_config(
                &nats_server,
                &databases,
                "staff",
                staff_service::startup::DATABASE_VAR,
            ),
            admin_password: Some(ADMIN_PASSWORD.into()),
            login_limits: staff_service::login_limits::LoginLimits::default(),
        };
        let service = staff_service::StaffService::build(config)
            .await
            .expect("staff service starts");
        run(service, shutdown.clone());
    }
    if parts.appointment {
        let config = appointment_config(&nats_server, &databases);
        let service = appointment_service::AppointmentService::build(config)
            .await
            .expect("appointment service starts");
        run(service, shutdown.clone());
    }
    if parts.record {
        let config = record_config(&nats_server, &databases);
        let service = record_service::RecordService::build(config)
            .await
            .expect("record service starts");
        run(service, shutdown.clone());
    }
    let mut gateway_config = gateway_config(nats_config);
    gateway_config.http = http;
    let gateway = gateway::Gateway::build(gateway_config)
        .await
        .expect("gateway starts");
    let address = format!("http://{}", gateway.local_addr());
    run(gateway, shutdown.clone());

    let nats = nats_server.connect_as(kit::nats_users::OPERATOR).await;
    let app = TestApp {
        address,
        http: reqwest::Client::new(),
        nats_server,
        nats,
        data_dir,
        databases,
        shutdown,
    };
    app.wait_until_ready(parts).await;
    app
}

/// The gateway's settings for a test: a free port, the test secret.
fn gateway_config(nats: NatsConfig) -> gateway::Config {
    gateway::Config {
        nats,
        http_addr: "127.0.0.1:0".parse().unwrap(),
        stream_replicas: 1,
        jwt_secret: JWT_SECRET.into(),
        token_ttl: Duration::from_secs(15 * 60),
        frontend_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../frontend").into(),
        audit_retention: Duration::ZERO,
        http: gateway::config::HttpSettings::default(),
    }
}

/// An owning service's settings for a test: its database in `databases`, a fast outbox relay.
fn service_config(
    nats_server: &TestNatsServer,
    databases: &ServiceDatabases,
    service: &'static str,
    database_var: &'static str,
) -> ServiceConfig {
    let database_url = databases.url(service);
    let mut config = ServiceConfig::new(
        service,
        database_var,
        nats_server.config_for(service),
        database_url,
    );
    config.outbox_interval = Duration::from_millis(200);
    config
}

pub fn patient_config(nats_server: &TestNatsServer, databases: &ServiceDatabases) -> ServiceConfig {
    service_config(
        nats_server,
        databases,
        "patient",
        patient_service::startup::DATABASE_VAR,
    )
}

pub fn appointment_config(
    nats_server: &TestNatsServer,
    databases: &ServiceDatabases,
) -> ServiceConfig {
    service_config(
        nats_server,
        databases,
        "appointment",
        appointment_service::startup::DATABASE_VAR,
    )
}

pub fn record_config(nats_server: &TestNatsServer, databases: &ServiceDatabases) -> ServiceConfig {
    service_config(
        nats_server,
        databases,
        "record",
        record_service::startup::DATABASE_VAR,
    )
}

fn run<C: Component + 'static>(component: C, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        component
            .run_until_stopped(shutdown)
            .await
            .expect("component runs until stopped");
    })
}

impl TestApp {
    /// A NATS client connected as `user` of `nats.conf`: the gateway to send commands, a
    /// service to publish that service's events.
    pub async fn nats_as(&self, user: &str) -> async_nats::Client {
        self.nats_server.connect_as(user).await
    }

    /// JetStream as the service that owns `aggregate`: the only one allowed to publish its
    /// events (`hospital.events.<aggregate>.>`).
    pub async fn publisher_of(&self, aggregate: &str) -> jetstream::Context {
        jetstream::new(self.nats_as(aggregate).await)
    }

    /// Runs one more component (a second instance, or one restarted after a test stopped it)
    /// until the returned token is cancelled or the app is dropped.
    pub fn run_component<C: Component + 'static>(&self, component: C) -> CancellationToken {
        let token = self.shutdown.child_token();
        run(component, token.clone());
        token
    }

    /// Another gateway instance on the same NATS: its base URL.
    pub async fn second_gateway(&self) -> String {
        let gateway =
            gateway::Gateway::build(gateway_config(self.nats_server.config_for("gateway")))
                .await
                .expect("a second gateway starts");
        let address = format!("http://{}", gateway.local_addr());
        self.run_component(gateway);
        address
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Waits until the gateway is connected to NATS and every started service answers.
    async fn wait_until_ready(&self, parts: Parts) {
        for _ in 0..400 {
            if let Ok(response) = self.http.get(self.url("/ready")).send().await
                && let Ok(ready) = response.json::<Value>().await
            {
                let up = |name: &str| ready["services"][name] == "up";
                if ready["nats"] == "connected"
                    && ready["revocations"] == "loaded"
                    && (!parts.patient || up("patient"))
                    && (!parts.staff || up("staff"))
                    && (!parts.appointment || up("appointment"))
                    && (!parts.record || up("record"))
                {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the system did not become ready");
    }

    /// Logs in and returns the access token.
    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.http
            .post(self.url("/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .expect("login request")
    }

    pub async fn admin_token(&self) -> String {
        let response = self.login("admin", ADMIN_PASSWORD).await;
        assert_eq!(response.status(), 200, "admin login");
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// A new staff member with `role` and a login, registered by the admin: their token and id.
    pub async fn staff_login(&self, role: &str) -> (String, String) {
        let admin = self.admin_token().await;
        let username = format!("{role}.{}", uuid::Uuid::now_v7().simple());
        let password = "a long enough password";
        let response = self
            .api(reqwest::Method::POST, "/api/staff", &admin)
            .json(&json!({"name": format!("Test {role}"), "role": role,
                          "username": username, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "create a {role}");
        let staff: Value = response.json().await.unwrap();
        let response = self.login(&username, password).await;
        assert_eq!(response.status(), 200, "{role} login");
        let body: Value = response.json().await.unwrap();
        (
            body["access_token"].as_str().unwrap().to_owned(),
            staff["id"].as_str().unwrap().to_owned(),
        )
    }

    /// The token of a new doctor (who may write medical records).
    pub async fn doctor_token(&self) -> String {
        self.staff_login("doctor").await.0
    }

    /// An authenticated request builder.
    pub fn api(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(token)
    }

    pub async fn create_patient(&self, token: &str, body: Value) -> Value {
        let response = self
            .api(reqwest::Method::POST, "/api/patients", token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "create patient {body}");
        response.json().await.unwrap()
    }

    /// Every event in the stream whose subject matches `filter`, in stream order.
    pub async fn events(&self, filter: &str) -> Vec<(String, EventEnvelope)> {
        let js = jetstream::new(self.nats.clone());
        let stream = js
            .get_stream(EVENT_STREAM)
            .await
            .expect("the event stream exists");
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                filter_subject: filter.to_owned(),
                ack_policy: consumer::AckPolicy::None,
                deliver_policy: consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .expect("an ephemeral consumer");
        let mut events = Vec::new();
        let mut batch = consumer
            .fetch()
            .max_messages(10_000)
            .expires(Duration::from_millis(300))
            .messages()
            .await
            .expect("fetch events");
        while let Some(Ok(message)) = batch.next().await {
            let envelope: EventEnvelope =
                serde_json::from_slice(&message.payload).expect("an event envelope");
            events.push((message.subject.to_string(), envelope));
        }
        events
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A valid patient body with a distinct name.
pub fn patient_body(name: &str) -> Value {
    json!({"name": name, "birth_date": "1985-04-12", "sex": "female", "phone": "+1 555 0100",
           "email": "patient@example.org", "address": "1 Main Street"})
}
