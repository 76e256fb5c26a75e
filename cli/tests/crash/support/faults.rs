//! Faults injected into a cluster while clients write, shared by the cluster tests: how long each
//! fault lasts, when writes count as recovered, and how long writes failed because of it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use shared_events::subjects::EVENT_STREAM;

use super::load::{Journal, Load, Outcome};
use super::system::{SERVICES, System};

/// The longest writes may fail after a kill (issue #9), or after a frozen node resumes.
pub const FAILING_AT_MOST: Duration = Duration::from_secs(10);
/// How long what was killed stays down, and how long a frozen node stays frozen.
pub const KILLED_FOR: Duration = Duration::from_secs(3);
pub const FROZEN_FOR: Duration = Duration::from_secs(10);
/// How long every service gets to acknowledge writes again after a fault.
pub const RECOVERY_PATIENCE: Duration = Duration::from_secs(30);
/// Acknowledged writes of every service that close a phase.
const WRITES_PER_PHASE: usize = 5;

/// One fault: what was done, when, and when it was over.
pub struct Fault {
    pub what: String,
    pub at: Instant,
    /// When what failed was back (a kill: at once, failing over is the system's; a freeze: when
    /// the node resumed, since nothing tells its clients it is frozen before their pings time
    /// out).
    pub ended_at: Instant,
    /// When every service had acknowledged writes again.
    pub recovered_at: Instant,
}

/// The attempts that failed around one fault.
pub struct Failures<'a> {
    pub failed: Vec<&'a Outcome>,
    /// How long after the fault the last of them was answered (writes failed at most that long).
    pub failing_for: Duration,
}

impl Fault {
    /// The attempts answered between the fault and the recovery that failed
    /// ([`Outcome::failed`]).
    pub fn failures<'a>(&self, journal: &'a Journal) -> Failures<'a> {
        let failed: Vec<_> = journal
            .outcomes
            .iter()
            .filter(|o| o.answered_at() >= self.at && o.answered_at() <= self.recovered_at)
            .filter(|o| o.failed())
            .collect();
        let failing_for = failed
            .iter()
            .map(|o| o.answered_at() - self.at)
            .max()
            .unwrap_or_default();
        Failures {
            failed,
            failing_for,
        }
    }

    /// Whether writes failed for longer than [`FAILING_AT_MOST`] after the fault ended.
    pub fn failed_too_long(&self, failures: &Failures) -> bool {
        self.at + failures.failing_for > self.ended_at + FAILING_AT_MOST
    }

    /// How long after the fault every service acknowledged writes again.
    pub fn recovered_after(&self) -> Duration {
        self.recovered_at - self.at
    }
}

impl Failures<'_> {
    /// How many failed with each status ("no answer" when none came).
    pub fn by_status(&self) -> BTreeMap<String, usize> {
        let mut statuses = BTreeMap::new();
        for outcome in &self.failed {
            let key = outcome
                .status()
                .map_or_else(|| "no answer".to_owned(), |s| s.to_string());
            *statuses.entry(key).or_default() += 1;
        }
        statuses
    }
}

/// Waits until every service has acknowledged a few more writes; returns when.
pub async fn every_service_acknowledges_again(load: &Load) -> Instant {
    for service in SERVICES {
        load.until_more_acks(service, WRITES_PER_PHASE, RECOVERY_PATIENCE)
            .await;
    }
    Instant::now()
}

/// The stream's leader once one is elected (right after a node's restart the stream may be
/// between leaders).
pub async fn wait_for_leader(system: &System, js: &async_nats::jetstream::Context) -> usize {
    let deadline = Instant::now() + RECOVERY_PATIENCE;
    loop {
        if let Some(leader) = system
            .nats_server
            .as_cluster()
            .leader_of(js, EVENT_STREAM)
            .await
        {
            return leader;
        }
        assert!(
            Instant::now() < deadline,
            "{EVENT_STREAM} has no leader within {RECOVERY_PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
