//! The services are discoverable the way `nats micro ls` / `nats micro info` find them (as the
//! operator user), and a plain NATS request with the gateway's credentials reaches them the way
//! `nats req --user gateway` does.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn srv_ping_and_info_list_every_service_and_its_endpoints() {
    let app = spawn_app().await;
    let inbox = app.nats.new_inbox();
    let mut replies = app.nats.subscribe(inbox.clone()).await.unwrap();
    app.nats
        .publish_with_reply("$SRV.INFO", inbox, "".into())
        .await
        .unwrap();
    let mut infos = Vec::new();
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_millis(500), replies.next()).await
    {
        infos.push(serde_json::from_slice::<Value>(&message.payload).unwrap());
    }
    let mut names: Vec<&str> = infos.iter().map(|i| i["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["appointment", "patient", "record", "staff"]);
    let patient = infos.iter().find(|i| i["name"] == "patient").unwrap();
    let subjects: Vec<&str> = patient["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert!(subjects.contains(&"hospital.patient.create"));
    assert!(subjects.contains(&"hospital.patient.list"));
}

#[tokio::test]
async fn a_plain_nats_request_is_answered_and_errors_are_typed() {
    let app = spawn_app().await;
    // Commands are the gateway's to send: the operator user may not.
    let gateway = app.nats_as("gateway").await;
    let reply = gateway
        .request(
            "hospital.patient.list",
            json!({"limit": 5}).to_string().into(),
        )
        .await
        .unwrap();
    let page: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(page["items"], json!([]));

    let reply = gateway
        .request(
            "hospital.patient.get",
            json!({"id": uuid::Uuid::now_v7()}).to_string().into(),
        )
        .await
        .unwrap();
    let headers = reply.headers.as_ref().expect("an error reply has headers");
    assert_eq!(
        headers.get("Nats-Service-Error-Code").unwrap().as_str(),
        "404"
    );
    let error: Value =
        serde_json::from_str(headers.get("Hospital-Error").unwrap().as_str()).unwrap();
    assert_eq!(error["code"], "not_found");

    let reply = gateway
        .request("hospital.patient.create", "not json".into())
        .await
        .unwrap();
    assert_eq!(
        reply
            .headers
            .unwrap()
            .get("Nats-Service-Error-Code")
            .unwrap()
            .as_str(),
        "400"
    );
}
