//! Group commit: many writes, one SQLite transaction, one fsync.
//!
//! With `synchronous = FULL` every commit waits for an fsync, and SQLite has one writer at a
//! time: one transaction per request caps a service at one fsync per write. The [`Writer`]
//! instead runs every write that is waiting when the previous commit ends in one immediate
//! transaction, each write inside its own savepoint (so a write that fails is rolled back alone
//! and the others still commit), and answers each write only after the commit: a write is
//! acknowledged only once it is on disk, as before, but a burst of writes shares the fsync.
//!
//! A write is a synchronous closure over the connection ([`Db`], sqlx's handle borrowed through
//! rusqlite, see [`crate::handle`]): the whole batch runs on the writer's own thread without a
//! thread switch per statement. It must not commit. The writer keeps one pooled connection for
//! as long as it serves, with a larger page cache, so what writes touch stays in memory; it hands
//! the connection back when the pool is closed.

use std::panic::AssertUnwindSafe;

use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use crate::handle::BorrowedDb;
pub use crate::handle::{Db, NotCommitted, WriteError};

/// The most writes one transaction takes, so one commit never grows without bound.
const MAX_BATCH: usize = 256;

/// What happens after the commit: the write's caller learns how it ended.
type Completion = Box<dyn FnOnce(Result<(), NotCommitted>) + Send>;

/// One queued write: runs on the connection, says whether it succeeded, and how to answer.
type Job = Box<dyn FnOnce(&Db) -> (bool, Completion) + Send>;

/// Queues writes for the service's one writing thread. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts the writing thread on `pool`. It ends when every `Writer` is dropped.
    pub fn start(pool: SqlitePool) -> Writer {
        let (queue, jobs) = mpsc::unbounded_channel();
        // Its own thread (and a one-thread runtime for sqlx's acquire and lock): a batch runs
        // its statements back to back, never queued behind the service's request tasks.
        std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the group commit thread's runtime");
                runtime.block_on(run(pool, jobs));
            })
            .expect("the group commit thread");
        Writer { queue }
    }

    /// Runs `write` in the next group transaction and returns its result once that transaction
    /// has committed. An `Err` from `write` rolls back its own changes only.
    pub async fn write<T, E, F>(&self, write: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<NotCommitted> + Send + 'static,
        F: FnOnce(&Db) -> Result<T, E> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |db| {
            let result = write(db);
            let ok = result.is_ok();
            let completion: Completion = Box::new(move |committed| {
                let outcome = match (result, committed) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Ok(_), Err(error)) => Err(E::from(error)),
                    (Err(error), _) => Err(error),
                };
                let _ = answer.send(outcome);
            });
            (ok, completion)
        });
        if self.queue.send(job).is_err() {
            return Err(E::from(NotCommitted::because("the writer has stopped")));
        }
        answered
            .await
            .unwrap_or_else(|_| Err(E::from(NotCommitted::because("the write was abandoned"))))
    }
}

/// The page cache of the writer's connection, in KiB: the B-tree pages writes touch (a table's
/// and its indexes' paths) stay in memory from batch to batch instead of being read again.
const WRITER_CACHE_KIB: u32 = 32 * 1024;

/// How a run of batches on one connection ended.
enum Ended {
    /// Every `Writer` was dropped.
    Stopped,
    /// The pool was closed: the connection has been handed back.
    Closed,
    /// The connection could not be had, or a batch failed on it: try a fresh one.
    Failed(String),
}

async fn run(pool: SqlitePool, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut closed = std::pin::pin!(pool.close_event());
    loop {
        match serve(&pool, &mut jobs, &mut batch, closed.as_mut()).await {
            Ended::Stopped => return,
            Ended::Closed => break,
            Ended::Failed(error) => {
                tracing::warn!(%error, "the group committer starts again on a fresh connection");
                // Writes waiting now are refused (dropped: their callers get `NotCommitted`)
                // rather than kept waiting for a connection that may not come back soon.
                while jobs.try_recv().is_ok() {}
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    // The database is closed: every write from now on is refused.
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        batch.clear();
    }
}

/// Commits batch after batch on one connection, whose handle it holds for as long as that
/// connection serves (so rusqlite's prepared statements and SQLite's page cache stay warm).
async fn serve(
    pool: &SqlitePool,
    jobs: &mut mpsc::UnboundedReceiver<Job>,
    batch: &mut Vec<Job>,
    mut closed: std::pin::Pin<&mut sqlx::pool::CloseEvent>,
) -> Ended {
    let failed = |error: &dyn std::fmt::Display| Ended::Failed(error.to_string());
    let mut conn = tokio::select! {
        biased;
        () = closed.as_mut() => return Ended::Closed,
        conn = pool.acquire() => match conn {
            Ok(conn) => conn,
            Err(error) => return failed(&error),
        },
    };
    let mut locked = match conn.lock_handle().await {
        Ok(locked) => locked,
        Err(error) => return failed(&error),
    };
    let db = match BorrowedDb::new(&mut locked) {
        Ok(db) => db,
        Err(error) => return failed(&error),
    };
    if let Err(error) = db.execute_batch(&format!("PRAGMA cache_size = -{WRITER_CACHE_KIB}")) {
        return failed(&error);
    }
    loop {
        tokio::select! {
            biased;
            () = closed.as_mut() => return Ended::Closed,
            received = jobs.recv_many(batch, MAX_BATCH) => if received == 0 {
                return Ended::Stopped;
            },
        }
        let started = std::time::Instant::now();
        let writes = batch.len();
        let (done, outcome) = run_jobs(&db, batch);
        tracing::debug!(
            writes,
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "group commit"
        );
        if let Err(error) = &outcome {
            tracing::warn!(%error, writes = done.len(), "group transaction failed");
        }
        for completion in done {
            completion(outcome.clone());
        }
        if let Err(error) = outcome {
            return Ended::Failed(error.to_string());
        }
    }
}

/// The transaction itself: each job in its savepoint, then the commit. Returns the completions
/// of the writes that ran, and how the transaction ended (writes a failure stopped before are
/// dropped: their callers get `NotCommitted`).
fn run_jobs(db: &Db, batch: &mut Vec<Job>) -> (Vec<Completion>, Result<(), NotCommitted>) {
    let mut done: Vec<Completion> = Vec::with_capacity(batch.len());
    let result = (|| {
        db.execute_batch("BEGIN IMMEDIATE")?;
        for job in batch.drain(..) {
            db.execute_batch("SAVEPOINT write")?;
            // A panicking write is a failed write (its caller sees it abandoned), not the end
            // of the writer and of every write after it.
            let ok = match std::panic::catch_unwind(AssertUnwindSafe(|| job(db))) {
                Ok((ok, completion)) => {
                    done.push(completion);
                    ok
                }
                Err(_) => {
                    tracing::error!("a write panicked; rolled back alone");
                    false
                }
            };
            db.execute_batch(if ok {
                "RELEASE write"
            } else {
                "ROLLBACK TO write; RELEASE write"
            })?;
        }
        let committing = std::time::Instant::now();
        db.execute_batch("COMMIT")?;
        tracing::debug!(
            commit_ms = committing.elapsed().as_secs_f64() * 1000.0,
            "group commit fsync"
        );
        Ok::<_, rusqlite::Error>(())
    })();
    batch.clear();
    if result.is_err() && !db.is_autocommit() {
        // Leave the connection clean; the error reported is the first one.
        let _ = db.execute_batch("ROLLBACK");
    }
    (done, result.map_err(NotCommitted::because))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::migrate::Migrator;

    static NO_MIGRATIONS: Migrator = Migrator::DEFAULT;

    #[derive(Debug)]
    enum Failure {
        Sql(#[allow(dead_code)] rusqlite::Error),
        Refused,
        NotCommitted,
    }
    impl From<NotCommitted> for Failure {
        fn from(_: NotCommitted) -> Self {
            Failure::NotCommitted
        }
    }
    impl From<rusqlite::Error> for Failure {
        fn from(error: rusqlite::Error) -> Self {
            Failure::Sql(error)
        }
    }

    async fn database() -> (tempfile::TempDir, SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let url = crate::config::sqlite_url_in(dir.path(), "group");
        let pool = crate::sqlite::open(&url, &NO_MIGRATIONS).await.unwrap();
        sqlx::query("CREATE TABLE t (n INTEGER PRIMARY KEY)")
            .execute(&pool)
            .await
            .unwrap();
        (dir, pool)
    }

    fn insert(n: i64) -> impl FnOnce(&Db) -> Result<i64, Failure> {
        move |db| {
            db.prepare_cached("INSERT INTO t (n) VALUES (?1)")?
                .execute([n])?;
            if n % 10 == 3 {
                return Err(Failure::Refused);
            }
            Ok(n)
        }
    }

    #[tokio::test]
    async fn concurrent_writes_commit_together_and_a_failed_one_alone_is_rolled_back() {
        let (_dir, pool) = database().await;
        let writer = Writer::start(pool.clone());
        let results = futures::future::join_all((0..100).map(|n| writer.write(insert(n)))).await;
        for (n, result) in results.iter().enumerate() {
            match result {
                Ok(value) => assert_eq!(*value, n as i64),
                Err(Failure::Refused) => assert_eq!(n % 10, 3),
                Err(other) => panic!("write {n}: {other:?}"),
            }
        }
        let stored: Vec<i64> = sqlx::query_scalar("SELECT n FROM t ORDER BY n")
            .fetch_all(&pool)
            .await
            .unwrap();
        let expected: Vec<i64> = (0..100).filter(|n| n % 10 != 3).collect();
        assert_eq!(stored, expected);
    }

    #[tokio::test]
    async fn a_failed_statement_does_not_undo_the_writes_before_it() {
        let (_dir, pool) = database().await;
        let writer = Writer::start(pool.clone());
        let (first, duplicate) = tokio::join!(writer.write(insert(1)), writer.write(insert(1)));
        assert_eq!(first.unwrap(), 1);
        assert!(matches!(duplicate, Err(Failure::Sql(_))), "{duplicate:?}");
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(count, 1);
    }

    #[tokio::test]
    async fn a_panicking_write_is_abandoned_and_the_writer_goes_on() {
        let (_dir, pool) = database().await;
        let writer = Writer::start(pool.clone());
        let panicked = writer
            .write(|db: &Db| -> Result<(), Failure> {
                db.execute("INSERT INTO t (n) VALUES (7)", [])?;
                panic!("a bug in a write");
            })
            .await;
        assert!(
            matches!(panicked, Err(Failure::NotCommitted)),
            "{panicked:?}"
        );
        assert_eq!(writer.write(insert(8)).await.unwrap(), 8);
        let stored: Vec<i64> = sqlx::query_scalar("SELECT n FROM t")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(stored, vec![8], "the panicked write was rolled back");
    }

    #[tokio::test]
    async fn a_write_after_the_database_is_closed_is_not_committed() {
        let (_dir, pool) = database().await;
        let writer = Writer::start(pool.clone());
        pool.close().await;
        let result = writer.write(insert(5)).await;
        assert!(matches!(result, Err(Failure::NotCommitted)), "{result:?}");
    }
}
