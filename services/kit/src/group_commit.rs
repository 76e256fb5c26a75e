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
//! thread switch per statement. It must not commit.

use std::panic::AssertUnwindSafe;

use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

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

async fn run(pool: SqlitePool, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let started = std::time::Instant::now();
        let writes = batch.len();
        let completions = commit_batch(&pool, &mut batch).await;
        tracing::debug!(
            writes,
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "group commit"
        );
        for (completion, outcome) in completions {
            completion(outcome);
        }
    }
}

/// Runs `batch` in one transaction; returns each write's completion with its outcome.
async fn commit_batch(
    pool: &SqlitePool,
    batch: &mut Vec<Job>,
) -> Vec<(Completion, Result<(), NotCommitted>)> {
    let mut done: Vec<Completion> = Vec::with_capacity(batch.len());
    let outcome = async {
        let mut conn = pool.acquire().await.map_err(NotCommitted::because)?;
        crate::handle::with_handle(&mut conn, |db| run_jobs(db, batch, &mut done))
            .await
            .map_err(NotCommitted::because)?
            .map_err(NotCommitted::because)
    }
    .await;
    // Writes that never ran (the batch failed before them) are dropped: their callers get
    // `NotCommitted`.
    let never_ran = batch.drain(..).count();
    if never_ran > 0 {
        tracing::warn!(never_ran, "writes dropped by a failed group transaction");
    }
    if let Err(error) = &outcome {
        tracing::warn!(%error, writes = done.len(), "group transaction failed");
    }
    done.into_iter().map(|c| (c, outcome.clone())).collect()
}

/// The transaction itself: each job in its savepoint, then the commit.
fn run_jobs(
    db: &Db,
    batch: &mut Vec<Job>,
    done: &mut Vec<Completion>,
) -> Result<(), rusqlite::Error> {
    db.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
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
        Ok(())
    })();
    if result.is_err() && !db.is_autocommit() {
        // Leave the pooled connection clean; the error reported is the first one.
        let _ = db.execute_batch("ROLLBACK");
    }
    result
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
