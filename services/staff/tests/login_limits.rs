//! The failed-login limits on both backends, a real SQLite file and a fresh PostgreSQL database:
//! counted per username and per client address, forgiven by a success, never let past by
//! concurrent attempts (on PostgreSQL, not even through two service instances), and the table
//! kept small. Every test runs on both (`sqlite` and `postgres` in a module named after it).

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kit::postgres_test::FreshDatabase;
use staff_service::login_limits::{FailedLogins, LoginLimits};

mod common;
use common::{Backend, TestDatabase, on_both_backends, open};

const WINDOW: Duration = Duration::from_secs(15 * 60);

on_both_backends!(
    the_sixth_attempt_after_five_failures_waits_for_the_window,
    the_username_is_limited_from_any_address_and_the_address_for_any_username,
    an_address_gets_its_own_higher_limit,
    a_success_clears_the_username_but_not_the_address,
    a_refused_attempt_writes_nothing,
    concurrent_attempts_never_let_more_than_the_limit_through,
    failures_that_left_the_window_are_deleted_a_batch_per_recorded_attempt,
    a_username_with_a_nul_is_counted_like_any_other,
);

/// The failed logins of one fresh database.
struct Limits {
    failures: FailedLogins,
    db: TestDatabase,
}

fn limits(per_username: u32, per_address: u32, window: Duration) -> LoginLimits {
    LoginLimits {
        per_username,
        per_address,
        window,
    }
}

async fn database(
    backend: Backend,
    per_username: u32,
    per_address: u32,
    window: Duration,
) -> Limits {
    let db = TestDatabase::fresh(backend).await;
    Limits {
        failures: FailedLogins::new(&db.database, limits(per_username, per_address, window)),
        db,
    }
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    rfc3339.parse().unwrap()
}

fn start() -> DateTime<Utc> {
    at("2026-12-01T09:00:00Z")
}

fn after(time: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    time + chrono::Duration::from_std(wait).unwrap()
}

fn address(text: &str) -> Option<IpAddr> {
    Some(text.parse().unwrap())
}

fn localhost() -> Option<IpAddr> {
    address("127.0.0.1")
}

impl Limits {
    async fn close(self) {
        self.db.close().await;
    }

    /// An attempt that turns out to be a failure (it is never forgiven).
    async fn fail(&self, username: &str, address: Option<IpAddr>, now: DateTime<Utc>) {
        let _failed = self
            .failures
            .admit_at(username, address, now)
            .await
            .unwrap_or_else(|e| panic!("{username} from {address:?} is refused: {e}"));
    }

    async fn is_limited(&self, username: &str, address: Option<IpAddr>) -> bool {
        let wait = self.failures.wait_at(username, address, start()).await;
        wait.unwrap().is_some()
    }
}

async fn the_sixth_attempt_after_five_failures_waits_for_the_window(backend: Backend) {
    let db = database(backend, 5, 5, WINDOW).await;
    for _ in 0..5 {
        db.fail("ada", localhost(), start()).await;
    }
    let later = after(start(), Duration::from_secs(60));
    assert_eq!(
        db.failures
            .wait_at("ada", localhost(), later)
            .await
            .unwrap(),
        Some(WINDOW - Duration::from_secs(60))
    );
    let refused = db
        .failures
        .admit_at("ada", localhost(), later)
        .await
        .unwrap_err();
    assert_eq!(refused.code.http_status(), 429);
    assert_eq!(refused.retry_after_secs, Some(14 * 60));
    assert_eq!(
        refused.message,
        "too many failed logins; try again in 14 minutes"
    );
    // Once the failures leave the window, attempts are let through again.
    let end = after(start(), WINDOW);
    assert_eq!(
        db.failures.wait_at("ada", localhost(), end).await.unwrap(),
        None
    );
    db.fail("ada", localhost(), end).await;
    db.close().await;
}

async fn the_username_is_limited_from_any_address_and_the_address_for_any_username(
    backend: Backend,
) {
    let db = database(backend, 2, 2, WINDOW).await;
    db.fail("Ada ", address("10.0.0.1"), start()).await;
    db.fail("ada", address("10.0.0.2"), start()).await;
    assert!(db.is_limited("ADA", address("10.0.0.3")).await);
    assert!(!db.is_limited("bob", address("10.0.0.3")).await);

    db.fail("carol", localhost(), start()).await;
    db.fail("dave", localhost(), start()).await;
    assert!(db.is_limited("erin", localhost()).await);
    // Without an address only the username counts.
    assert!(!db.is_limited("erin", None).await);
    db.close().await;
}

async fn an_address_gets_its_own_higher_limit(backend: Backend) {
    let db = database(backend, 2, 4, WINDOW).await;
    for n in 0..3 {
        db.fail(&format!("user{n}"), localhost(), start()).await;
    }
    assert!(!db.is_limited("someone", localhost()).await);
    db.fail("user3", localhost(), start()).await;
    assert!(db.is_limited("someone", localhost()).await);
    db.close().await;
}

async fn a_success_clears_the_username_but_not_the_address(backend: Backend) {
    let db = database(backend, 3, 2, WINDOW).await;
    db.fail("ada", localhost(), start()).await;
    db.fail("ada", localhost(), start()).await;
    // Ada, elsewhere, types her password right.
    let attempt = db
        .failures
        .admit_at("ada", address("10.0.0.9"), start())
        .await
        .unwrap();
    db.failures.forgive(attempt).await.unwrap();
    assert!(!db.is_limited("ada", None).await);
    assert!(!db.is_limited("ada", address("10.0.0.9")).await);
    // The two guesses from localhost still count against localhost.
    assert!(db.is_limited("ada", localhost()).await);
    assert!(db.is_limited("someone", localhost()).await);
    db.close().await;
}

async fn a_refused_attempt_writes_nothing(backend: Backend) {
    let db = database(backend, 1, 50, WINDOW).await;
    db.fail("ada", localhost(), start()).await;
    for _ in 0..10 {
        assert!(
            db.failures
                .admit_at("ada", localhost(), start())
                .await
                .is_err()
        );
    }
    assert_eq!(db.failures.rows().await.unwrap(), 1);
    db.close().await;
}

async fn concurrent_attempts_never_let_more_than_the_limit_through(backend: Backend) {
    let db = database(backend, 5, 50, WINDOW).await;
    let admitted = burst(std::slice::from_ref(&db.failures), |_| "ada".to_owned()).await;
    assert_eq!(admitted, 5);
    assert_eq!(db.failures.rows().await.unwrap(), 5);
    db.close().await;
}

/// Two staff service instances on one PostgreSQL database (each with its own pool, as two
/// processes have) share one bound: the advisory locks serialise their counts and records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgres_never_let_more_than_the_limit_through_together() {
    let database = FreshDatabase::create().await;
    let limits = limits(5, 7, WINDOW);
    let instances = [
        FailedLogins::new(&open(database.url()).await, limits),
        FailedLogins::new(&open(database.url()).await, limits),
    ];
    let admitted = burst(&instances, |_| "ada".to_owned()).await;
    assert_eq!(admitted, 5, "one username");
    assert_eq!(instances[0].rows().await.unwrap(), 5);
    // A guesser at many usernames from one address: bound by the address's limit.
    let admitted = burst(&instances, |n| format!("user{n}")).await;
    assert_eq!(
        admitted,
        7 - 5,
        "one address (5 of its 7 already used by ada)"
    );
    assert_eq!(instances[1].rows().await.unwrap(), 7);
    database.drop().await;
}

/// 40 attempts from localhost at once, the `n`th for `username(n)` through instance `n` modulo
/// the number of instances. Returns how many were let through; every other one must be refused
/// as too many (429), not fail.
async fn burst(instances: &[FailedLogins], username: fn(usize) -> String) -> usize {
    let attempts: Vec<_> = (0..40)
        .map(|n| {
            let failures = instances[n % instances.len()].clone();
            tokio::spawn(async move {
                failures
                    .admit_at(&username(n), localhost(), start())
                    .await
                    .map(|_failed| ())
            })
        })
        .collect();
    let mut admitted = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(()) => admitted += 1,
            Err(refused) => assert_eq!(refused.code.http_status(), 429, "{refused:?}"),
        }
    }
    admitted
}

async fn failures_that_left_the_window_are_deleted_a_batch_per_recorded_attempt(backend: Backend) {
    let window = Duration::from_secs(60);
    let db = database(backend, 5, 50, window).await;
    for i in 0..100 {
        db.fail(&format!("user{i}"), None, start()).await;
    }
    assert_eq!(db.failures.rows().await.unwrap(), 100);
    let later = after(start(), 2 * window);
    // Each recorded attempt deletes up to 32 expired rows and adds its own.
    let mut rows = Vec::new();
    for i in 0..4 {
        db.fail(&format!("later{i}"), None, later).await;
        rows.push(db.failures.rows().await.unwrap());
    }
    assert_eq!(rows, [69, 38, 7, 4]);
    db.close().await;
}

/// PostgreSQL text cannot hold NUL: such a username is counted (as U+FFFD) like any other,
/// never a storage failure.
async fn a_username_with_a_nul_is_counted_like_any_other(backend: Backend) {
    let db = database(backend, 1, 50, WINDOW).await;
    db.fail("ada\0", localhost(), start()).await;
    assert!(db.is_limited("ADA\0", None).await);
    assert!(!db.is_limited("ada", None).await);
    assert_eq!(db.failures.rows().await.unwrap(), 1);
    db.close().await;
}
