//! NATS least privilege in the running system: a component whose credentials leak can do no
//! more than that component. (Each user's permissions one by one: `services/kit/tests/
//! nats_permissions.rs`.)
//!
//! nats-server refuses a denied subscribe or publish with `-ERR 'Permissions Violation ...'`,
//! which async-nats reports as a `ServerError` event; it comes before the answer to the flush
//! that follows, so the tests wait for it instead of guessing how long to wait.

use std::time::Duration;

use async_nats::{Event, ServerError};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::helpers::{ADMIN_PASSWORD, TestApp, spawn_app};

/// A client with the credentials of `user`, and the errors the server sends it.
async fn connect_as(
    app: &TestApp,
    user: &str,
) -> (async_nats::Client, mpsc::UnboundedReceiver<String>) {
    let credentials = app.nats_server.credentials(user);
    let (sender, errors) = mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::new()
        .user_and_password(credentials.user.clone(), credentials.password().to_owned())
        .custom_inbox_prefix(credentials.inbox_prefix())
        .event_callback(move |event| {
            let sender = sender.clone();
            async move {
                if let Event::ServerError(ServerError::Other(error)) = event {
                    let _ = sender.send(error);
                }
            }
        })
        .connect(app.nats_server.url())
        .await
        .unwrap();
    (client, errors)
}

async fn refused(
    client: &async_nats::Client,
    errors: &mut mpsc::UnboundedReceiver<String>,
    what: &str,
) {
    client.flush().await.unwrap();
    let wanted = format!("Permissions Violation for {what}");
    loop {
        let error = tokio::time::timeout(Duration::from_secs(10), errors.recv())
            .await
            .unwrap_or_else(|_| panic!("nats-server did not refuse {what}"))
            .expect("the client is open");
        if error.contains(&wanted) {
            return;
        }
    }
}

#[tokio::test]
async fn the_patient_services_credentials_neither_hear_logins_nor_forge_staff_events() {
    let app = spawn_app().await;
    let (rogue, mut errors) = connect_as(&app, "patient").await;

    // Listening in on the staff service's login command (it carries passwords) is refused...
    let mut eavesdrop = rogue
        .queue_subscribe("hospital.staff.authenticate", "staff".into())
        .await
        .unwrap();
    refused(
        &rogue,
        &mut errors,
        "Subscription to \"hospital.staff.authenticate\"",
    )
    .await;
    // ...so logins go on reaching the staff service alone.
    for _ in 0..5 {
        assert_eq!(app.login("admin", ADMIN_PASSWORD).await.status(), 200);
    }
    let heard = tokio::time::timeout(Duration::from_millis(200), eavesdrop.next()).await;
    assert!(
        heard.map_or(true, |m| m.is_none()),
        "the patient service's user heard a login"
    );

    // A staff event forged with its credentials never reaches the stream.
    let staff_events = app.events("hospital.events.staff.>").await.len();
    assert_eq!(staff_events, 1, "the bootstrap admin");
    let forged = format!("hospital.events.staff.{}.created", uuid::Uuid::now_v7());
    let mut js = async_nats::jetstream::new(rogue.clone());
    js.set_timeout(Duration::from_secs(1));
    let ack = js.publish(forged.clone(), "{}".into()).await.unwrap().await;
    assert!(ack.is_err(), "a forged staff event was acknowledged");
    refused(&rogue, &mut errors, &format!("Publish to \"{forged}\"")).await;
    assert_eq!(
        app.events("hospital.events.staff.>").await.len(),
        staff_events
    );
}

#[tokio::test]
async fn the_gateways_credentials_cannot_write_to_the_event_stream() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    app.create_patient(&token, crate::helpers::patient_body("Ada Lovelace"))
        .await;
    let before = app.events("hospital.events.>").await.len();
    let (gateway, mut errors) = connect_as(&app, "gateway").await;
    let mut js = async_nats::jetstream::new(gateway.clone());
    js.set_timeout(Duration::from_secs(1));

    let patient = app.events("hospital.events.patient.>").await;
    let (subject, _) = &patient[0];
    let deleted = subject.replace(".created", ".deleted");
    assert!(
        js.publish(deleted.clone(), "{}".into())
            .await
            .unwrap()
            .await
            .is_err()
    );
    refused(&gateway, &mut errors, &format!("Publish to \"{deleted}\"")).await;
    assert!(
        js.delete_stream(shared_events::subjects::EVENT_STREAM)
            .await
            .is_err()
    );
    refused(
        &gateway,
        &mut errors,
        "Publish to \"$JS.API.STREAM.DELETE.HOSPITAL_EVENTS\"",
    )
    .await;
    assert_eq!(app.events("hospital.events.>").await.len(), before);
}
