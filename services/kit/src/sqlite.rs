//! Opening a service's SQLite database. SQLite is the single-node mode: WAL so readers never
//! block the writer, `synchronous = FULL` so a committed (and therefore acknowledged) change
//! survives a power cut, and a busy timeout instead of immediate `SQLITE_BUSY` errors.
//!
//! SQLite mode is one writer per database file (DESIGN.md, "Scaling past one machine"): [`open`]
//! takes an exclusive `flock` on `<db file>.lock` and holds it until the pool is closed or
//! dropped, so a second instance (or `hospital replay` while the service runs) refuses to start
//! with a message saying so. [`open_shared`] skips the lock (a test that plays a second process
//! beside the running owner); [`open_read_only`] is for readers such as `hospital verify`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{url} is not a SQLite URL (sqlite://<file>)")]
    NotSqlite { url: String },
    #[error(
        "{url} is neither a SQLite URL (sqlite://<file>) nor a PostgreSQL one (postgres://...)"
    )]
    UnknownBackend { url: String },
    #[error("invalid database URL {url:?}: {source}")]
    Url { url: String, source: sqlx::Error },
    #[error("cannot create the database directory {dir}: {source}")]
    Directory { dir: String, source: std::io::Error },
    #[error("cannot open the database: {0}")]
    Connect(sqlx::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "the database {database} is in use by another process ({lock} is locked): \
         only one instance may write a SQLite database; stop the other one first"
    )]
    Locked { database: String, lock: String },
    #[error("cannot lock the database ({lock}): {source}")]
    Lock {
        lock: String,
        source: std::io::Error,
    },
}

impl OpenError {
    /// Whether another process (or pool) holds the database's single-writer lock.
    pub fn is_locked(&self) -> bool {
        matches!(self, OpenError::Locked { .. })
    }
}

/// sqlx would take any other URL (`postgres://...`) as the path of a SQLite file and quietly
/// create one: refuse it instead, naming the URL (its password masked).
fn require_sqlite(url: &str) -> Result<(), OpenError> {
    if url.starts_with("sqlite:") {
        Ok(())
    } else {
        Err(OpenError::NotSqlite {
            url: crate::config::mask_url(url),
        })
    }
}

/// Opens (creating if needed) the database at `url`, takes its single-writer lock and applies
/// `migrator`. The lock is released when the pool is closed or dropped.
pub async fn open(url: &str, migrator: &Migrator) -> Result<SqlitePool, OpenError> {
    open_with(url, migrator, true).await
}

/// Like [`open`] but without the single-writer lock: only for a test that deliberately opens a
/// database beside the running service that owns it.
pub async fn open_shared(url: &str, migrator: &Migrator) -> Result<SqlitePool, OpenError> {
    open_with(url, migrator, false).await
}

/// Opens an existing database for reading only: no lock, no migrations, never created. WAL
/// readers do not block the running service's writer.
pub async fn open_read_only(url: &str) -> Result<SqlitePool, OpenError> {
    require_sqlite(url)?;
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|source| OpenError::Url {
            url: url.to_owned(),
            source,
        })?
        .create_if_missing(false)
        .read_only(true)
        .busy_timeout(Duration::from_secs(10));
    SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .map_err(OpenError::Connect)
}

/// The file a SQLite URL names (`None` for an in-memory database).
pub fn database_file(url: &str) -> Option<std::path::PathBuf> {
    let options = SqliteConnectOptions::from_str(url).ok()?;
    let file = options.get_filename();
    let text = file.to_string_lossy();
    (!text.is_empty() && text != ":memory:" && !text.starts_with("file:")).then(|| file.to_owned())
}

async fn open_with(url: &str, migrator: &Migrator, lock: bool) -> Result<SqlitePool, OpenError> {
    require_sqlite(url)?;
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|source| OpenError::Url {
            url: url.to_owned(),
            source,
        })?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
        // Savepoints (one per write in a group commit) journal the pages they change; in memory,
        // not in a temporary file written and read back on every write.
        .pragma("temp_store", "memory");
    let filename = options.get_filename();
    if let Some(dir) = filename.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| OpenError::Directory {
            dir: dir.display().to_string(),
            source,
        })?;
    }
    let lock = match database_file(url) {
        Some(file) if lock => Some(WriterLock::take(&file)?),
        _ => None,
    };
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .map_err(OpenError::Connect)?;
    if let Some(lock) = lock {
        // Held until the pool is closed (or its last handle dropped, which closes it too).
        let closed = pool.close_event();
        tokio::spawn(async move {
            closed.await;
            drop(lock);
        });
    }
    migrator.run(&pool).await?;
    Ok(pool)
}

/// An exclusive `flock` on `<db file>.lock`, released when dropped (the file is closed).
struct WriterLock {
    _file: std::fs::File,
}

impl WriterLock {
    fn take(database: &std::path::Path) -> Result<Self, OpenError> {
        use std::os::fd::AsRawFd;
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        let path = std::path::PathBuf::from(name);
        let failed = |source| OpenError::Lock {
            lock: path.display().to_string(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(failed)?;
        // SAFETY: flock on a descriptor this function owns; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() == std::io::ErrorKind::WouldBlock {
                return Err(OpenError::Locked {
                    database: database.display().to_string(),
                    lock: path.display().to_string(),
                });
            }
            return Err(failed(error));
        }
        Ok(WriterLock { _file: file })
    }
}

/// Begins a write transaction that takes SQLite's write lock at once. A deferred transaction
/// that reads and then writes can fail with `SQLITE_BUSY` when another writer commits in
/// between; an immediate one waits its turn (up to the busy timeout) instead.
pub async fn begin_write(
    pool: &SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

#[cfg(test)]
mod tests {
    use super::*;

    static NO_MIGRATIONS: Migrator = Migrator::DEFAULT;

    #[tokio::test]
    async fn a_second_writer_is_refused_until_the_first_closes() {
        let dir = tempfile::tempdir().unwrap();
        let url = crate::config::sqlite_url_in(dir.path(), "lock");
        let first = open(&url, &NO_MIGRATIONS).await.unwrap();
        let refused = open(&url, &NO_MIGRATIONS).await.unwrap_err();
        assert!(refused.is_locked(), "{refused}");
        assert!(refused.to_string().contains("lock.db"), "{refused}");
        // Readers and an explicit shared open are not writers that take the lock.
        open_read_only(&url).await.unwrap();
        open_shared(&url, &NO_MIGRATIONS).await.unwrap();
        first.close().await;
        for _ in 0..100 {
            if let Ok(second) = open(&url, &NO_MIGRATIONS).await {
                second.close().await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the lock was not released when the pool closed");
    }

    #[tokio::test]
    async fn a_postgres_url_is_refused_not_taken_for_a_file_name() {
        let url = "postgres://hospital:s3cret@db.example:5432/patient";
        let refused = open(url, &NO_MIGRATIONS).await.unwrap_err();
        let message = refused.to_string();
        assert!(message.contains("not a SQLite URL"), "{message}");
        assert!(
            message.contains("db.example") && !message.contains("s3cret"),
            "{message}"
        );
        assert!(matches!(
            open_read_only(url).await,
            Err(OpenError::NotSqlite { .. })
        ));
    }
}
