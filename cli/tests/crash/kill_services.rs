//! `kill -9` of each service (and of the gateway) while clients write through the gateway:
//! afterwards every write a client saw acknowledged is there, exactly once in the stream, and in
//! every read-model.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::checks::assert_nothing_acknowledged_was_lost;
use crate::support::load::{Fixture, Load};
use crate::support::serial;
use crate::support::system::{SERVICES, System};

/// How many writes of the victim are acknowledged before the kill and after the restart.
const WRITES_AROUND_THE_KILL: usize = 10;
/// How long the clients keep writing while the service is dead.
const DEAD_FOR: Duration = Duration::from_secs(1);

/// Writes run; the service is killed with SIGKILL while its writes are in flight; writes go on
/// for a second; the service starts again on the same database; writes go on; then every
/// acknowledged write is checked.
async fn kill_and_restart_while_clients_write(service: &'static str) {
    let _serial = serial().await;
    let mut system = System::start().await;
    let token = system.admin_token().await;
    let fixture = Arc::new(Fixture::create(&system.gateway, token.clone()).await);
    let load = Load::start(&system.gateway, fixture.clone());
    let patience = Duration::from_secs(30);
    load.until_more_acks(service, WRITES_AROUND_THE_KILL, patience)
        .await;

    system.kill9(service).await;
    let killed_at = Instant::now();
    // The writers of the service wait out the requests it died with (504 after the gateway's
    // request timeout); new requests meanwhile must be refused at once.
    let mut while_dead = Vec::new();
    while killed_at.elapsed() < DEAD_FOR {
        while_dead.push(load.probe(service).await);
    }
    let start_took = system.restart(service).await;
    let down_for = killed_at.elapsed();
    let back = Instant::now();
    let mut before_first_ack = Vec::new();
    let first_ack_after = loop {
        let (status, latency) = load.probe(service).await;
        if status.is_some_and(|s| (200..300).contains(&s)) {
            break back.elapsed();
        }
        before_first_ack.push((status, latency.as_millis()));
        assert!(
            back.elapsed() < patience,
            "{service} acknowledged nothing after its restart"
        );
    };
    load.until_more_acks(service, WRITES_AROUND_THE_KILL, patience)
        .await;
    let journal = load.stop().await;

    let slowest_refusal = while_dead.iter().map(|(_, l)| *l).max().unwrap_or_default();
    let in_flight_at_kill = journal
        .outcomes
        .iter()
        .filter(|o| o.what.starts_with(service))
        .filter(|o| o.sent_at < killed_at && o.answered_at() > killed_at)
        .count();
    eprintln!(
        "kill -9 {service}: {in_flight_at_kill} of its writes in flight at the kill; down {} ms \
         (restart answered {} ms after spawn); {} writes while it was down, answered {:?} within \
         {} ms; first write acknowledged {} ms after it answered (refused before: {:?})",
        down_for.as_millis(),
        start_took.as_millis(),
        while_dead.len(),
        while_dead
            .iter()
            .map(|(s, _)| *s)
            .collect::<std::collections::BTreeSet<_>>(),
        slowest_refusal.as_millis(),
        first_ack_after.as_millis(),
        before_first_ack,
    );
    eprintln!("  load: {}", journal.summary());
    assert!(
        while_dead
            .iter()
            .all(|(status, latency)| *status == Some(503) && *latency < Duration::from_secs(1)),
        "while {service} was dead every write was a prompt 503: {while_dead:?}"
    );
    assert_nothing_acknowledged_was_lost(&system, &journal, &fixture).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_patient_service_loses_no_acknowledged_write() {
    kill_and_restart_while_clients_write("patient").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_staff_service_loses_no_acknowledged_write() {
    kill_and_restart_while_clients_write("staff").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_appointment_service_loses_no_acknowledged_write() {
    kill_and_restart_while_clients_write("appointment").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_record_service_loses_no_acknowledged_write() {
    kill_and_restart_while_clients_write("record").await;
}

/// The gateway keeps nothing but its connections: while it is dead clients cannot connect (a
/// prompt transport error, never a hang), the writes it was carrying may or may not have
/// happened, and once it is back every acknowledged write is intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_gateway_loses_no_acknowledged_write() {
    let _serial = serial().await;
    let mut system = System::start().await;
    let token = system.admin_token().await;
    let fixture = Arc::new(Fixture::create(&system.gateway, token.clone()).await);
    let load = Load::start(&system.gateway, fixture.clone());
    let patience = Duration::from_secs(30);
    for service in SERVICES {
        load.until_more_acks(service, 5, patience).await;
    }

    let kill_sent = Instant::now();
    system.kill9("gateway").await;
    let mut while_dead = Vec::new();
    while kill_sent.elapsed() < DEAD_FOR {
        while_dead.push(load.probe("patient").await);
    }
    let start_took = system.restart("gateway").await;
    let back = Instant::now();
    let first_ack_after = loop {
        if load
            .probe("patient")
            .await
            .0
            .is_some_and(|s| (200..300).contains(&s))
        {
            break back.elapsed();
        }
        assert!(
            back.elapsed() < patience,
            "nothing acknowledged after the gateway's restart"
        );
    };
    for service in SERVICES {
        load.until_more_acks(service, 5, patience).await;
    }
    let mut journal = load.stop().await;
    journal.gateway_down = Some((kill_sent, back + first_ack_after + Duration::from_secs(1)));

    let in_flight_at_kill = journal
        .outcomes
        .iter()
        .filter(|o| o.sent_at < kill_sent && o.answered_at() > kill_sent)
        .count();
    let slowest_refusal = while_dead.iter().map(|(_, l)| *l).max().unwrap_or_default();
    eprintln!(
        "kill -9 gateway: {in_flight_at_kill} writes in flight at the kill; {} connection attempts \
         while it was down, each refused within {} ms; restart answered {} ms after spawn; first \
         write acknowledged {} ms after that",
        while_dead.len(),
        slowest_refusal.as_millis(),
        start_took.as_millis(),
        first_ack_after.as_millis()
    );
    eprintln!("  load: {}", journal.summary());
    assert!(
        while_dead
            .iter()
            .all(|(status, latency)| status.is_none() && *latency < Duration::from_secs(1)),
        "while the gateway was dead every request failed at once: {while_dead:?}"
    );
    assert_nothing_acknowledged_was_lost(&system, &journal, &fixture).await;
}
