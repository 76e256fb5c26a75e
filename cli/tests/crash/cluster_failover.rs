//! The system on a three-node NATS cluster (`deploy/nats/cluster.conf`, HOSPITAL_EVENTS and
//! HOSPITAL_AUDIT with three replicas) while clients write through the gateway: the node leading
//! HOSPITAL_EVENTS is killed with SIGKILL and restarted, then the new leader is frozen with
//! SIGSTOP for 10 s. Writes may fail only with 503/504, for at most 10 s after the kill, and for
//! at most 10 s after the frozen node resumes (its clients notice nothing before their pings time
//! out, ~20 s, so they wait for it); afterwards every acknowledged write is in its owner's
//! database, exactly once in the stream and in every read-model.

use std::sync::Arc;
use std::time::Instant;

use shared_events::subjects::EVENT_STREAM;

use crate::support::checks::assert_nothing_acknowledged_was_lost;
use crate::support::faults::{
    FAILING_AT_MOST, FROZEN_FOR, Fault, KILLED_FOR, every_service_acknowledges_again,
    wait_for_leader,
};
use crate::support::load::{Fixture, Load};
use crate::support::serial;
use crate::support::system::System;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_stream_leader_or_freezing_a_node_fails_writes_briefly_and_loses_none() {
    let _serial = serial().await;
    let mut system = System::start_on_cluster().await;
    let js = async_nats::jetstream::new(system.nats.clone());
    let token = system.admin_token().await;
    let fixture = Arc::new(Fixture::create(&system.gateway, token.clone()).await);
    let load = Load::start(&system.gateway, fixture.clone());
    every_service_acknowledges_again(&load).await;
    let mut faults = Vec::new();

    // SIGKILL of the node leading HOSPITAL_EVENTS; it comes back on its data after a while.
    let leader = system
        .nats_server
        .cluster()
        .leader_of(&js, EVENT_STREAM)
        .await
        .expect("HOSPITAL_EVENTS has a leader");
    let name = system.nats_server.cluster().name_of(leader).to_owned();
    system.nats_server.cluster().kill(leader).await;
    let killed_at = Instant::now();
    tokio::time::sleep(KILLED_FOR).await;
    system.nats_server.cluster().restart(leader).await;
    faults.push(Fault {
        what: format!("SIGKILL of {name} (leader of {EVENT_STREAM}), back after {KILLED_FOR:?}"),
        at: killed_at,
        // A killed node is gone at once: failing over is JetStream's, bounded from the kill.
        ended_at: killed_at,
        recovered_at: every_service_acknowledges_again(&load).await,
    });

    // SIGSTOP of whichever node leads now: it keeps its connections but answers nothing.
    let leader = wait_for_leader(&system, &js).await;
    let name = system.nats_server.cluster().name_of(leader).to_owned();
    system.nats_server.cluster().signal(leader, libc::SIGSTOP);
    let frozen_at = Instant::now();
    tokio::time::sleep(FROZEN_FOR).await;
    system.nats_server.cluster().signal(leader, libc::SIGCONT);
    faults.push(Fault {
        what: format!("SIGSTOP of {name} (leader of {EVENT_STREAM}) for {FROZEN_FOR:?}"),
        at: frozen_at,
        ended_at: Instant::now(),
        recovered_at: every_service_acknowledges_again(&load).await,
    });

    let journal = load.stop().await;
    eprintln!("  load: {}", journal.summary());
    let mut too_long = Vec::new();
    for fault in &faults {
        let failures = fault.failures(&journal);
        eprintln!(
            "{}: {} writes failed {:?}, the last answered {} ms after the fault; every \
             service acknowledged writes again {} ms after it",
            fault.what,
            failures.failed.len(),
            failures.by_status(),
            failures.failing_for.as_millis(),
            fault.recovered_after().as_millis()
        );
        if fault.failed_too_long(&failures) {
            too_long.push(format!(
                "{}: {} ms",
                fault.what,
                failures.failing_for.as_millis()
            ));
        }
    }
    // Hangs, transport errors, 4xx and 5xx other than 502-504 fail here.
    assert_nothing_acknowledged_was_lost(&system, &journal, &fixture).await;
    assert!(
        too_long.is_empty(),
        "writes failed for longer than {FAILING_AT_MOST:?} after a fault ended: {too_long:?}"
    );
}
