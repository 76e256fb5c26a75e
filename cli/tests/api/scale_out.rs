//! Several instances of one service on one PostgreSQL database (issue #9, DESIGN.md "Scaling
//! past one machine"): they share the service's NATS queue group, all appear in discovery,
//! share the writes between them, keep `If-Match` and `Idempotency-Key` promises across
//! instances, and publish each change's event exactly once. Always on PostgreSQL, whatever
//! `HOSPITAL_TEST_BACKEND` says: several writer instances are what SQLite refuses.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use futures::future::join_all;
use kit::postgres_test::FreshDatabase;
use kit::runtime::Component;
use serde_json::Value;

use crate::helpers::{Parts, TestApp, patient_body, patient_config, spawn_app_with};

const INSTANCES: usize = 2;
const PATIENTS: usize = 60;

/// `INSTANCES` patient services on `database`, as `hospital serve patient` processes with the
/// same `DATABASE_URL_PATIENT` would be; waits until discovery lists them all.
async fn start_instances(app: &TestApp, database: &FreshDatabase) {
    for _ in 0..INSTANCES {
        let mut config = patient_config(&app.nats_server, &app.databases);
        config.database_url = database.url().to_owned();
        let service = patient_service::PatientService::build(config)
            .await
            .expect("a patient instance starts on the shared database");
        app.run_component(service);
    }
    for _ in 0..200 {
        if discovered(app, "PING").await.len() == INSTANCES {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("discovery never listed {INSTANCES} patient instances");
}

/// Every instance's answer to `$SRV.<verb>.patient` (as `nats micro ping|stats patient`).
async fn discovered(app: &TestApp, verb: &str) -> Vec<Value> {
    let inbox = app.nats.new_inbox();
    let mut answers = app.nats.subscribe(inbox.clone()).await.unwrap();
    app.nats
        .publish_with_reply(format!("$SRV.{verb}.patient"), inbox, "".into())
        .await
        .unwrap();
    let mut found = Vec::new();
    while let Ok(Some(answer)) =
        tokio::time::timeout(Duration::from_millis(300), answers.next()).await
    {
        found.push(serde_json::from_slice(&answer.payload).unwrap());
    }
    found
}

async fn post(app: &TestApp, token: &str, body: &Value, key: &str) -> (u16, Value) {
    let response = app
        .api(reqwest::Method::POST, "/api/patients", token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn put(app: &TestApp, token: &str, id: &str, if_match: i64, body: &Value) -> u16 {
    app.api(reqwest::Method::PUT, &format!("/api/patients/{id}"), token)
        .header("If-Match", format!("\"{if_match}\""))
        .json(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn two_instances_on_one_postgres_database_serve_every_write_exactly_once() {
    let app = spawn_app_with(Parts {
        patient: false,
        ..Parts::default()
    })
    .await;
    let database = FreshDatabase::create().await;
    start_instances(&app, &database).await;
    let token = app.admin_token().await;

    // Registrations, each sent twice at once with its key: whichever instances take the two
    // copies, one patient is registered and both copies get its 201.
    let registrations = join_all((0..PATIENTS).map(|i| {
        let (app, token) = (&app, &token);
        async move {
            let body = patient_body(&format!("Shared Instance {i}"));
            let key = format!("scale-out-{i}");
            let (a, b) = tokio::join!(post(app, token, &body, &key), post(app, token, &body, &key));
            assert_eq!((a.0, b.0), (201, 201), "{i}: {} / {}", a.1, b.1);
            assert_eq!(a.1["id"], b.1["id"], "one registration per key");
            a.1["id"].as_str().unwrap().to_owned()
        }
    }))
    .await;

    // Two updates of each patient, both made against version 1, race on two instances: the
    // row lock lets exactly one through; the other is told the version moved on (412).
    let outcomes = join_all(registrations.iter().map(|id| {
        let (app, token) = (&app, &token);
        async move {
            let (once, twice) = (patient_body("Renamed Once"), patient_body("Renamed Twice"));
            let (a, b) = tokio::join!(
                put(app, token, id, 1, &once),
                put(app, token, id, 1, &twice)
            );
            let mut pair = [a, b];
            pair.sort();
            pair
        }
    }))
    .await;
    assert!(
        outcomes.iter().all(|pair| *pair == [200, 412]),
        "{outcomes:?}"
    );

    // Both instances served requests.
    let stats = discovered(&app, "STATS").await;
    assert_eq!(stats.len(), INSTANCES);
    for instance in &stats {
        let served: u64 = instance["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|endpoint| endpoint["num_requests"].as_u64().unwrap_or(0))
            .sum();
        assert!(served > 0, "an instance served nothing: {instance}");
    }

    // Every change has exactly one event: versions 1 and 2 of every patient, once each.
    let mut events: HashMap<(String, i64), usize> = HashMap::new();
    for _ in 0..100 {
        events.clear();
        for (_, event) in app.events("hospital.events.patient.>").await {
            *events
                .entry((event.aggregate_id.to_string(), event.aggregate_version))
                .or_default() += 1;
        }
        if events.len() == 2 * PATIENTS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in &registrations {
        for version in [1, 2] {
            assert_eq!(
                events.get(&(id.clone(), version)),
                Some(&1),
                "{id} v{version}"
            );
        }
    }
    assert_eq!(events.len(), 2 * PATIENTS, "no other patient events");

    // And every row is in the shared database, at version 2; nothing waits in the outbox.
    let (rows, outbox): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM patients WHERE version = 2), (SELECT COUNT(*) FROM outbox)",
    )
    .fetch_one(database.pool())
    .await
    .unwrap();
    assert_eq!(rows, PATIENTS as i64);
    let mut outbox = outbox;
    for _ in 0..100 {
        if outbox == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        outbox = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(database.pool())
            .await
            .unwrap();
    }
    assert_eq!(outbox, 0, "every published event left the outbox");
}

#[tokio::test]
async fn a_second_instance_on_one_sqlite_database_is_refused_with_a_clear_message() {
    let app = spawn_app_with(Parts {
        patient: false,
        ..Parts::default()
    })
    .await;
    let url = kit::config::sqlite_url_in(app.data_dir.path(), "patient-shared");
    let config = |url: &str| {
        let mut config = patient_config(&app.nats_server, &app.databases);
        config.database_url = url.to_owned();
        config
    };
    let first = patient_service::PatientService::build(config(&url))
        .await
        .expect("the first instance starts");
    let Err(refused) = patient_service::PatientService::build(config(&url)).await else {
        panic!("a second writer instance started on one SQLite database");
    };
    let message = refused.to_string();
    assert!(
        message.contains("only one instance may write a SQLite database"),
        "{message}"
    );
    drop(first);
}
