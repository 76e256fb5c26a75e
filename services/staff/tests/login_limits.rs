//! The failed-login limits on a real SQLite file: counted per username and per client address,
//! forgiven by a success, never let past by concurrent attempts, and the table kept small.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kit::group_commit::Writer;
use staff_service::login_limits::{FailedLogins, LoginLimits};
use staff_service::store::MIGRATOR;

const WINDOW: Duration = Duration::from_secs(15 * 60);

struct Database {
    _dir: tempfile::TempDir,
    failures: FailedLogins,
}

async fn database(per_username: u32, per_address: u32, window: Duration) -> Database {
    let dir = tempfile::tempdir().unwrap();
    let url = kit::config::sqlite_url_in(dir.path(), "staff");
    let pool = kit::sqlite::open(&url, &MIGRATOR).await.unwrap();
    let limits = LoginLimits {
        per_username,
        per_address,
        window,
    };
    Database {
        failures: FailedLogins::new(pool.clone(), Writer::start(pool), limits),
        _dir: dir,
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

impl Database {
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

#[tokio::test]
async fn the_sixth_attempt_after_five_failures_waits_for_the_window() {
    let db = database(5, 5, WINDOW).await;
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
}

#[tokio::test]
async fn the_username_is_limited_from_any_address_and_the_address_for_any_username() {
    let db = database(2, 2, WINDOW).await;
    db.fail("Ada ", address("10.0.0.1"), start()).await;
    db.fail("ada", address("10.0.0.2"), start()).await;
    assert!(db.is_limited("ADA", address("10.0.0.3")).await);
    assert!(!db.is_limited("bob", address("10.0.0.3")).await);

    db.fail("carol", localhost(), start()).await;
    db.fail("dave", localhost(), start()).await;
    assert!(db.is_limited("erin", localhost()).await);
    // Without an address only the username counts.
    assert!(!db.is_limited("erin", None).await);
}

#[tokio::test]
async fn an_address_gets_its_own_higher_limit() {
    let db = database(2, 4, WINDOW).await;
    for n in 0..3 {
        db.fail(&format!("user{n}"), localhost(), start()).await;
    }
    assert!(!db.is_limited("someone", localhost()).await);
    db.fail("user3", localhost(), start()).await;
    assert!(db.is_limited("someone", localhost()).await);
}

#[tokio::test]
async fn a_success_clears_the_username_but_not_the_address() {
    let db = database(3, 2, WINDOW).await;
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
}

#[tokio::test]
async fn a_refused_attempt_writes_nothing() {
    let db = database(1, 50, WINDOW).await;
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
}

#[tokio::test]
async fn concurrent_attempts_never_let_more_than_the_limit_through() {
    let db = Arc::new(database(5, 50, WINDOW).await);
    let attempts: Vec<_> = (0..40)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                db.failures
                    .admit_at("ada", localhost(), start())
                    .await
                    .is_ok()
            })
        })
        .collect();
    let mut admitted = 0;
    for attempt in attempts {
        admitted += usize::from(attempt.await.unwrap());
    }
    assert_eq!(admitted, 5);
    assert_eq!(db.failures.rows().await.unwrap(), 5);
}

#[tokio::test]
async fn failures_that_left_the_window_are_deleted_a_batch_per_recorded_attempt() {
    let window = Duration::from_secs(60);
    let db = database(5, 50, window).await;
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
}
