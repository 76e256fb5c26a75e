//! Group commit: many writes, one SQLite transaction, one fsync.
//!
//! With `synchronous = FULL` every commit waits for an fsync, and SQLite has one writer at a
//! time: one transaction per request caps a service at one fsync per write. The [`Writer`]
//! instead runs every write that is waiting when the previous commit ends in one immediate
//! transaction, each write inside its own savepoint (so a write that fails is rolled back alone
//! and the others still commit), and answers each write only after the commit: a write is
//! acknowledged only once it is on disk, as before, but a burst of writes shares the fsync.
//!
//! A write is a closure over the connection. It must not commit, and it should only use the
//! connection it is given (no awaiting anything else that could wait for another write).

use std::sync::Arc;

use futures::future::BoxFuture;
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

/// The most writes one transaction takes, so one commit never grows without bound.
const MAX_BATCH: usize = 256;

/// What happens after the commit: the write's caller learns how it ended.
type Completion = Box<dyn FnOnce(Result<(), Arc<sqlx::Error>>) + Send>;

/// One queued write: runs on the connection, says whether it succeeded, and how to answer.
type Job =
    Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, (bool, Completion)> + Send>;

/// The error of a write whose own work succeeded but whose transaction did not commit.
#[derive(Debug, thiserror::Error)]
#[error("the write was not committed: {0}")]
pub struct NotCommitted(pub Arc<sqlx::Error>);

impl From<NotCommitted> for sqlx::Error {
    fn from(error: NotCommitted) -> Self {
        sqlx::Error::Protocol(error.to_string())
    }
}

impl From<NotCommitted> for shared_events::ServiceError {
    fn from(error: NotCommitted) -> Self {
        crate::events::storage_failure(error)
    }
}

/// Queues writes for the service's one writing task. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts the writing task on `pool`. It ends when every `Writer` is dropped.
    pub fn start(pool: SqlitePool) -> Writer {
        let (queue, jobs) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, jobs));
        Writer { queue }
    }

    /// Runs `write` in the next group transaction and returns its result once that transaction
    /// has committed. An `Err` from `write` rolls back its own changes only.
    pub async fn write<T, E, F>(&self, write: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<NotCommitted> + Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = write(conn).await;
                let ok = result.is_ok();
                let completion: Completion = Box::new(move |committed| {
                    let outcome = match (result, committed) {
                        (Ok(value), Ok(())) => Ok(value),
                        (Ok(_), Err(error)) => Err(E::from(NotCommitted(error))),
                        (Err(error), _) => Err(error),
                    };
                    let _ = answer.send(outcome);
                });
                (ok, completion)
            })
        });
        if self.queue.send(job).is_err() {
            return Err(E::from(NotCommitted(Arc::new(sqlx::Error::PoolClosed))));
        }
        answered
            .await
            .unwrap_or_else(|_| Err(E::from(NotCommitted(Arc::new(sqlx::Error::WorkerCrashed)))))
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
) -> Vec<(Completion, Result<(), Arc<sqlx::Error>>)> {
    let mut done: Vec<Completion> = Vec::with_capacity(batch.len());
    let outcome = async {
        let mut conn = pool.acquire().await?;
        // Statements are sent in pairs where they can be: each round trip to SQLite's
        // connection thread costs more than the statement itself.
        sqlx::raw_sql("BEGIN IMMEDIATE; SAVEPOINT write")
            .execute(&mut *conn)
            .await?;
        let result = async {
            let count = batch.len();
            for (index, job) in batch.drain(..).enumerate() {
                let (ok, completion) = job(&mut conn).await;
                done.push(completion);
                let last = index + 1 == count;
                let next = match (ok, last) {
                    (true, false) => "RELEASE write; SAVEPOINT write",
                    (true, true) => "RELEASE write; COMMIT",
                    (false, false) => "ROLLBACK TO write; RELEASE write; SAVEPOINT write",
                    (false, true) => "ROLLBACK TO write; RELEASE write; COMMIT",
                };
                sqlx::raw_sql(next).execute(&mut *conn).await?;
            }
            Ok::<_, sqlx::Error>(())
        }
        .await;
        if result.is_err() {
            // Leave the pooled connection clean; the error reported is the first one.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        }
        result
    }
    .await
    .map_err(Arc::new);
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

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::migrate::Migrator;

    static NO_MIGRATIONS: Migrator = Migrator::DEFAULT;

    #[derive(Debug)]
    enum Failure {
        Sql(#[allow(dead_code)] sqlx::Error),
        Refused,
        NotCommitted,
    }
    impl From<NotCommitted> for Failure {
        fn from(_: NotCommitted) -> Self {
            Failure::NotCommitted
        }
    }
    impl From<sqlx::Error> for Failure {
        fn from(error: sqlx::Error) -> Self {
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

    fn insert(
        n: i64,
    ) -> impl for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<i64, Failure>> {
        move |conn| {
            Box::pin(async move {
                sqlx::query("INSERT INTO t (n) VALUES ($1)")
                    .bind(n)
                    .execute(&mut *conn)
                    .await?;
                if n % 10 == 3 {
                    return Err(Failure::Refused);
                }
                Ok(n)
            })
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
    async fn a_write_after_the_database_is_closed_is_not_committed() {
        let (_dir, pool) = database().await;
        let writer = Writer::start(pool.clone());
        pool.close().await;
        let result = writer.write(insert(5)).await;
        assert!(matches!(result, Err(Failure::NotCommitted)), "{result:?}");
    }
}
