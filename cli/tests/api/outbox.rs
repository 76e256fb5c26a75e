//! The outbox is crash-safe: a change committed while NATS is unreachable is published once NATS
//! is back, exactly once.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use kit::EventPublisher;
use kit::command::{CommandHandler, RequestContext};
use kit::database::Database;
use kit::nats::NatsConfig;
use patient_service::commands::PatientCommands;
use patient_service::store::{MIGRATIONS, PatientStore};
use serde_json::{Value, json};

use crate::backend::count_rows;
use crate::helpers::{patient_body, spawn_app};

async fn outbox_rows(database: &Database) -> i64 {
    count_rows(database, "outbox").await
}

#[tokio::test]
async fn a_change_committed_while_nats_is_down_is_published_exactly_once_when_it_returns() {
    let mut app = spawn_app().await;
    let database = app.databases.open_beside(MIGRATIONS).await;
    let config = NatsConfig {
        request_timeout: Duration::from_secs(1),
        ..app.nats_server.config_for("patient")
    };
    let client = kit::nats::connect(&config, "outbox-test").await.unwrap();
    let mut js = jetstream::new(client);
    js.set_timeout(Duration::from_secs(1));
    // The patient service's own command handler, working on its database.
    let commands = PatientCommands {
        store: PatientStore::new(&database),
        publisher: EventPublisher::new(js.clone(), database.clone()),
    };

    app.nats_server.stop().await;
    let fields = patient_body("Written During An Outage");
    let payload = json!({"fields": fields}).to_string();
    let created = commands
        .handle("create", RequestContext::system(), payload.into())
        .await
        .expect("the write commits");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        outbox_rows(&database).await,
        1,
        "the event waits in the outbox"
    );

    app.nats_server.resume().await;
    let filter = format!("hospital.events.patient.{id}.>");
    let mut published = Vec::new();
    for _ in 0..100 {
        published = app.events(&filter).await;
        if !published.is_empty() && outbox_rows(&database).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(published.len(), 1, "published once NATS is back");
    assert_eq!(
        outbox_rows(&database).await,
        0,
        "and cleared from the outbox"
    );
    assert_eq!(published[0].1.data["name"], "Written During An Outage");

    // A repeat of the same event (a relay that died before deleting its row) is dropped by the
    // stream's duplicate window.
    let envelope = &published[0].1;
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", envelope.event_id.to_string().as_str());
    let ack = js
        .publish_with_headers(
            envelope.subject(),
            headers,
            serde_json::to_vec(envelope).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(ack.duplicate);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.events(&filter).await.len(), 1, "still exactly once");
}

#[tokio::test]
async fn events_left_in_the_outbox_by_a_crash_are_published_by_the_relay() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    // Commit a change and its outbox row, then "crash" before publishing: nothing publishes it
    // but the relay.
    let store = PatientStore::new(&app.databases.open_beside(MIGRATIONS).await);
    let committed = store
        .create(&RequestContext::system(), |mrn| {
            let details = patient_service::domain::PatientDetails::parse(
                patient_body("Left In The Outbox").as_object().unwrap(),
                chrono::Utc::now().date_naive(),
            )
            .unwrap();
            patient_service::domain::register(details, mrn, kit::events::now())
        })
        .await
        .unwrap();
    let id = committed.patient.id;
    let mut events = Vec::new();
    for _ in 0..50 {
        events = app.events(&format!("hospital.events.patient.{id}.>")).await;
        if !events.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(events.len(), 1);
    let read: Value = app
        .api(reqwest::Method::GET, &format!("/api/patients/{id}"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["name"], "Left In The Outbox");
}
