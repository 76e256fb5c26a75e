//! A command in flight when the NATS connection drops is answered 503 at once, not a 504 after
//! the request timeout; and the connection comes back by itself when NATS does.

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::connection::State;
use axum::http::StatusCode;
use futures::StreamExt;
use gateway::nats_call::send_command;
use kit::nats_server::TestNatsServer;

async fn until_state(client: &async_nats::Client, wanted: State, patience: Duration) -> Duration {
    let started = Instant::now();
    while client.connection_state() != wanted {
        assert!(
            started.elapsed() < patience,
            "connection not {wanted:?} within {patience:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn a_command_in_flight_when_nats_dies_is_a_503_at_once_and_the_link_comes_back() {
    let mut server = TestNatsServer::start().await;
    let config = server.config_for(kit::nats_users::GATEWAY);
    let client = kit::nats::connect(&config, "gateway-outage-test")
        .await
        .unwrap();
    until_state(&client, State::Connected, Duration::from_secs(5)).await;
    // A patient service that takes every command and never answers.
    let service = server.connect_as("patient").await;
    let mut silent = service.subscribe("hospital.patient.get").await.unwrap();
    // In place before the gateway's command (it is another connection).
    kit::nats_server::round_trip(&service).await;

    let gateway_client = client.clone();
    let request = tokio::spawn(async move {
        let body = serde_json::json!({"id": "x"});
        let result = send_command(&gateway_client, "patient", "get", HeaderMap::new(), &body).await;
        (Instant::now(), result.map(|_| ()).map_err(|e| e.status()))
    });
    // The command has reached the silent service: it is in flight.
    tokio::time::timeout(Duration::from_secs(5), silent.next())
        .await
        .expect("the command arrives")
        .expect("a message");

    server.stop().await;
    let stopped = Instant::now();
    let (answered, result) = request.await.unwrap();
    let waited = answered - stopped;
    assert_eq!(result, Err(StatusCode::SERVICE_UNAVAILABLE));
    assert!(
        waited < Duration::from_secs(1),
        "answered {waited:?} after NATS died"
    );

    // While it is down, a new command is refused at once too.
    let started = Instant::now();
    let refused = send_command(&client, "patient", "get", HeaderMap::new(), &()).await;
    assert_eq!(
        refused.map(|_| ()).map_err(|e| e.status()),
        Err(StatusCode::SERVICE_UNAVAILABLE)
    );
    assert!(started.elapsed() < Duration::from_millis(100));

    // Back without anyone reconnecting by hand, within the 1 s cap between attempts (plus the
    // attempt itself).
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.resume().await;
    let reconnected = until_state(&client, State::Connected, Duration::from_secs(3)).await;
    eprintln!(
        "in-flight command answered 503 {} ms after NATS died; reconnected {} ms after it came back",
        waited.as_millis(),
        reconnected.as_millis()
    );
}
