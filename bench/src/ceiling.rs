//! The ceilings every figure is measured against, served by this process on loopback:
//! - a bare axum handler (what HTTP alone costs here);
//! - an axum handler that verifies the access token exactly as the gateway does and makes one
//!   NATS request/reply to an echo responder connected as the patient service, over the
//!   project's `nats.conf` (users, permissions and per-user inboxes): the least any `/api` call
//!   of this design can cost.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use futures::StreamExt;
use gateway::auth::jwt::Tokens;
use kit::nats_server::TestNatsServer;
use shared_events::Authenticated;
use shared_events::staff::StaffRole;
use tokio_util::sync::CancellationToken;

const ECHO_SUBJECT: &str = "hospital.patient.bench_echo";

/// A patient as the patient service answers one: the echo sends back a body of this size.
const PATIENT_JSON: &str = r#"{"id":"019ad0a4-5c1e-7b52-9a51-0c3c0f0e1a2b","mrn":"1000000018","name":"Ada Lovelace","birth_date":"1985-12-10","sex":"female","phone":"+1 555 0100","email":"ada@example.org","address":"12 St James's Square, London","version":1,"created_at":"2026-12-06T08:00:00.000000Z","updated_at":"2026-12-06T08:00:00.000000Z","deleted_at":null}"#;

/// The two ceiling servers and what they need; stopped when dropped.
pub struct Ceilings {
    pub bare: SocketAddr,
    pub echo: SocketAddr,
    /// A valid token for the echo ceiling.
    pub token: String,
    stop: CancellationToken,
    _nats: TestNatsServer,
}

impl Drop for Ceilings {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

struct EchoState {
    tokens: Tokens,
    nats: async_nats::Client,
}

pub async fn start() -> anyhow::Result<Ceilings> {
    let nats = TestNatsServer::start().await;
    let stop = CancellationToken::new();

    // The echo responder: the patient service's NATS user, answering with a patient's bytes.
    let responder = nats.connect_as("patient").await;
    let mut requests = responder
        .subscribe(ECHO_SUBJECT)
        .await
        .context("subscribe the echo")?;
    kit::nats_server::round_trip(&responder).await;
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            if let Some(reply) = request.reply {
                let _ = responder.publish(reply, PATIENT_JSON.into()).await;
            }
        }
    });

    let secret = uuid::Uuid::new_v4().to_string();
    let tokens = Tokens::new(secret.as_bytes(), Duration::from_secs(3600));
    let token = tokens
        .issue(&Authenticated {
            staff_id: uuid::Uuid::now_v7(),
            name: "Bench Desk".into(),
            role: StaffRole::Receptionist,
        })?
        .access_token;
    let state = Arc::new(EchoState {
        tokens,
        nats: nats.connect_as("gateway").await,
    });

    let bare = serve(
        Router::new().route("/", get(|| async { "ok" })),
        stop.clone(),
    )
    .await?;
    let echo = serve(
        Router::new().route("/", get(echo)).with_state(state),
        stop.clone(),
    )
    .await?;
    Ok(Ceilings {
        bare,
        echo,
        token,
        stop,
        _nats: nats,
    })
}

async fn echo(State(state): State<Arc<EchoState>>, headers: HeaderMap) -> impl IntoResponse {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return (StatusCode::UNAUTHORIZED, "no token").into_response();
    };
    let claims = match state.tokens.verify(token) {
        Ok(claims) => claims,
        Err(_) => return (StatusCode::UNAUTHORIZED, "bad token").into_response(),
    };
    match state
        .nats
        .request(ECHO_SUBJECT, claims.sub.to_string().into())
        .await
    {
        Ok(reply) => ([(header::CONTENT_TYPE, "application/json")], reply.payload).into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn serve(router: Router, stop: CancellationToken) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
    });
    Ok(addr)
}
