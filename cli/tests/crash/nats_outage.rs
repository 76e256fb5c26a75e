//! nats-server stops while clients write: the gateway answers 503 within 2 s (requests in flight
//! included), and once NATS is back every process reconnects by itself, the outboxes drain and
//! nothing acknowledged is lost.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::checks::{assert_nothing_acknowledged_was_lost, outbox_rows};
use crate::support::load::{Fixture, Load};
use crate::support::serial;
use crate::support::system::{COMPONENTS, SERVICES, System};

/// The longest a client may wait for its answer while NATS is down.
const OUTAGE_ANSWER_LIMIT: Duration = Duration::from_secs(2);
/// How long nats-server stays down.
const OUTAGE: Duration = Duration::from_secs(3);
/// How long after NATS is back every service must acknowledge writes again.
const RECOVERY_LIMIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_nats_is_down_the_gateway_answers_503_within_2_s_and_all_recovers_by_itself() {
    let _serial = serial().await;
    let mut system = System::start().await;
    let token = system.admin_token().await;
    let fixture = Arc::new(Fixture::create(&system.gateway, token.clone()).await);
    let patient = fixture.patients[0].clone();
    let load = Load::start(&system.gateway, fixture.clone());
    for service in SERVICES {
        load.until_more_acks(service, 5, Duration::from_secs(30))
            .await;
    }
    let pids: BTreeMap<&str, i32> = COMPONENTS.iter().map(|&c| (c, system.pid(c))).collect();

    // A request surely in flight when NATS dies: the record service is frozen, so the record it
    // was asked to create waits for an answer.
    system.signal("record", libc::SIGSTOP);
    let in_flight = {
        let request = reqwest::Client::new()
            .post(format!("{}/api/records", system.gateway))
            .bearer_auth(&fixture.doctor_token)
            .timeout(Duration::from_secs(10))
            .json(&json!({"patient_id": patient, "kind": "note", "title": "In flight"}))
            .send();
        tokio::spawn(async move {
            let response = request.await;
            (Instant::now(), response.map(|r| r.status().as_u16()))
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    system.nats_server.single().stop().await;
    let stopped_at = Instant::now();
    system.signal("record", libc::SIGCONT);
    let (answered_at, status) = in_flight.await.unwrap();
    let status = status.expect("an answer to the request in flight");
    let in_flight_latency = answered_at - stopped_at;
    assert_eq!(status, 503, "the request in flight when NATS died");
    assert!(
        in_flight_latency <= OUTAGE_ANSWER_LIMIT,
        "the request in flight answered {in_flight_latency:?} after NATS died"
    );

    tokio::time::sleep(OUTAGE).await;
    let waiting_in_outboxes = outbox_rows(&system).await;
    let acks_at_resume: BTreeMap<&str, usize> =
        SERVICES.iter().map(|&s| (s, load.acks_of(s))).collect();
    system.nats_server.single().resume().await;
    let resumed_at = Instant::now();

    // Nothing is restarted: each service must acknowledge writes again by itself.
    let mut recovered = BTreeMap::new();
    while recovered.len() < SERVICES.len() {
        for service in SERVICES {
            if !recovered.contains_key(service) && load.acks_of(service) > acks_at_resume[service] {
                recovered.insert(service, resumed_at.elapsed());
            }
        }
        assert!(
            resumed_at.elapsed() < RECOVERY_LIMIT,
            "within {RECOVERY_LIMIT:?} of NATS coming back only {recovered:?} acknowledged writes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if let Err(last) = system.wait_until_ready(RECOVERY_LIMIT).await {
        panic!("/ready after NATS came back: {last}");
    }
    let ready_after = resumed_at.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let journal = load.stop().await;

    for (component, pid) in pids {
        assert_eq!(system.pid(component), pid, "{component} was not restarted");
    }
    let in_flight_at_stop: Vec<_> = journal
        .outcomes
        .iter()
        .filter(|o| o.sent_at < stopped_at && o.answered_at() > stopped_at)
        .collect();
    let during_outage: Vec<_> = journal
        .outcomes
        .iter()
        .filter(|o| o.sent_at >= stopped_at && o.sent_at < resumed_at)
        .collect();
    let slowest_in_outage = in_flight_at_stop
        .iter()
        .map(|o| o.answered_at() - stopped_at)
        .chain(during_outage.iter().map(|o| o.latency))
        .chain([in_flight_latency])
        .max()
        .unwrap_or_default();
    eprintln!(
        "nats-server down {} ms: {} client requests in flight at the stop (+1 to a frozen service, \
         answered {} 503 after {} ms), {} sent during the outage; slowest answer in the outage {} ms; \
         outbox rows waiting during the outage {waiting_in_outboxes:?}",
        (resumed_at - stopped_at).as_millis(),
        in_flight_at_stop.len(),
        status,
        in_flight_latency.as_millis(),
        during_outage.len(),
        slowest_in_outage.as_millis()
    );
    eprintln!(
        "  reconnect without restarts: first acknowledged write after NATS came back {:?} ms; \
         /ready 200 after {} ms",
        recovered
            .iter()
            .map(|(s, d)| (*s, d.as_millis()))
            .collect::<BTreeMap<_, _>>(),
        ready_after.as_millis()
    );
    eprintln!("  load: {}", journal.summary());

    for outcome in &in_flight_at_stop {
        let waited = outcome.answered_at() - stopped_at;
        assert!(
            waited <= OUTAGE_ANSWER_LIMIT && outcome.status() != Some(504),
            "a request in flight when NATS died: {outcome:?}, answered {waited:?} after the stop"
        );
    }
    for outcome in &during_outage {
        assert!(
            outcome.status() == Some(503) && outcome.latency <= OUTAGE_ANSWER_LIMIT,
            "a request sent while NATS was down: {outcome:?}"
        );
    }
    assert!(
        !during_outage.is_empty(),
        "the clients kept writing during the outage"
    );
    assert_nothing_acknowledged_was_lost(&system, &journal, &fixture).await;
}
