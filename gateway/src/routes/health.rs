//! `GET /health` (the process is alive) and `GET /ready` (it can serve: NATS is connected and
//! every service it routes to answers the service API's ping, and the revoked tokens are
//! loaded).

use std::time::Duration;

use async_nats::connection::State as ConnectionState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;

use super::resources;
use crate::state::AppState;

/// The services the gateway cannot serve without: every service that owns a routed resource
/// (the staff service also answers logins), so a new resource cannot be forgotten here.
pub fn required_services() -> Vec<&'static str> {
    resources::services()
}

/// How long a service may take to answer its ping before it counts as down.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

pub async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// What `/ready` reports: each check, and the verdict.
#[derive(Debug, Serialize)]
struct Readiness {
    status: &'static str,
    nats: &'static str,
    services: BTreeMap<&'static str, &'static str>,
    /// `loaded` once logouts and account changes are known, `loading` before.
    revocations: &'static str,
}

pub async fn ready(State(state): State<AppState>) -> Response {
    let nats = state.nats();
    let connection = nats.connection_state();
    let connected = connection == ConnectionState::Connected;
    let required = required_services();
    let mut services = BTreeMap::new();
    if connected {
        let pings = required.iter().map(|&name| async move {
            let up = ping(nats, name).await;
            (name, if up { "up" } else { "down" })
        });
        services.extend(futures::future::join_all(pings).await);
    } else {
        // No point asking over a link that is down: each would only wait out its timeout.
        services.extend(required.iter().map(|&name| (name, "unknown")));
    }
    let revocations_loaded = state.revocations().is_loaded();
    let all_up = connected && services.values().all(|&s| s == "up") && revocations_loaded;
    let readiness = Readiness {
        status: if all_up { "ready" } else { "not_ready" },
        nats: match connection {
            ConnectionState::Connected => "connected",
            ConnectionState::Disconnected => "disconnected",
            ConnectionState::Pending => "connecting",
        },
        services,
        revocations: if revocations_loaded {
            "loaded"
        } else {
            "loading"
        },
    };
    let status = if all_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness)).into_response()
}

/// Whether at least one instance of the service answers `$SRV.PING.<name>` in time.
async fn ping(nats: &async_nats::Client, name: &str) -> bool {
    let request = async_nats::Request::new()
        .payload(bytes::Bytes::new())
        .timeout(Some(PING_TIMEOUT));
    match nats
        .send_request(format!("$SRV.PING.{name}"), request)
        .await
    {
        Ok(_) => true,
        Err(error) => {
            tracing::debug!(service = name, %error, "service did not answer its ping");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_that_owns_a_resource_is_required_once() {
        assert_eq!(
            required_services(),
            ["patient", "staff", "appointment", "record"]
        );
    }
}
