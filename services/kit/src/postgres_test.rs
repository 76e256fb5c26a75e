//! A fresh PostgreSQL database for each test (the PostgreSQL backend of issue #9, DESIGN.md
//! "Scaling past one machine"): [`FreshDatabase::create`] makes `hospital_test_<uuid>` on the
//! server at `HOSPITAL_TEST_POSTGRES_URL` and hands out its URL and a pool; [`FreshDatabase::drop`]
//! removes it (`DROP DATABASE ... WITH (FORCE)`, so connections still open do not keep it
//! alive). A database only dropped by going out of scope (a failed assertion, say) is removed
//! in the background, best effort.
//!
//! `scripts/test` makes sure a server answers (`scripts/lib/postgres.sh`: the one at the URL, or
//! one it starts). Without one, [`FreshDatabase::create`] fails the test with a message saying
//! so: a test that needs PostgreSQL never passes silently without it.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

/// The server tests make their databases on.
pub const URL_VAR: &str = "HOSPITAL_TEST_POSTGRES_URL";
/// The server when [`URL_VAR`] is not set: a local PostgreSQL with trust authentication.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The prefix of every database this harness makes.
pub const DATABASE_PREFIX: &str = "hospital_test_";

/// How long connecting to the server may take before the test fails.
const CONNECT_PATIENCE: Duration = Duration::from_secs(10);

/// The server URL the tests use: [`URL_VAR`], else [`DEFAULT_URL`].
pub fn server_url() -> String {
    std::env::var(URL_VAR)
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_owned())
}

/// Why a fresh database could not be made or dropped.
#[derive(Debug, thiserror::Error)]
pub enum FreshDatabaseError {
    #[error(
        "no PostgreSQL answers at {url} ({reason}): run the tests through scripts/test (it \
         finds or starts one), or set {URL_VAR} to a server where this user may create databases"
    )]
    NoServer { url: String, reason: String },
    #[error("the PostgreSQL at {url} refused to create database {name}: {source}")]
    Create {
        url: String,
        name: String,
        source: sqlx::Error,
    },
    #[error("cannot open the fresh database {name}: {source}")]
    Open { name: String, source: sqlx::Error },
    #[error("the PostgreSQL at {url} refused to drop database {name}: {source}")]
    Drop {
        url: String,
        name: String,
        source: sqlx::Error,
    },
}

/// A database of its own for one test, on the test server; dropped by [`FreshDatabase::drop`]
/// (or, best effort, when it goes out of scope).
pub struct FreshDatabase {
    /// `hospital_test_<uuid simple>`.
    name: String,
    /// The URL of this database (the server's URL with the database name replaced).
    url: String,
    /// Connections to this database, for the test to use.
    pool: PgPool,
    /// The server's URL, for the connection that drops the database.
    server_url: String,
    /// Set once the database is dropped, so that `Drop` leaves it alone.
    dropped: bool,
}

impl FreshDatabase {
    /// A fresh, empty database on the server at [`server_url`]. Panics, saying how to get a
    /// server, when none answers.
    pub async fn create() -> FreshDatabase {
        match Self::create_on(&server_url()).await {
            Ok(database) => database,
            Err(error) => panic!("{error}"),
        }
    }

    /// A fresh, empty database on the server at `server_url`.
    pub async fn create_on(server_url: &str) -> Result<FreshDatabase, FreshDatabaseError> {
        let name = format!("{DATABASE_PREFIX}{}", Uuid::new_v4().simple());
        let mut admin = connect(server_url).await?;
        // The name is ours (a prefix and hex digits), so it is safe to put into the statement.
        let created = sqlx::query(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .execute(&mut admin)
            .await;
        let _ = admin.close().await;
        created.map_err(|source| FreshDatabaseError::Create {
            url: crate::config::mask_url(server_url),
            name: name.clone(),
            source,
        })?;
        let url = with_database(server_url, &name);
        let opened = match PgConnectOptions::from_str(&url) {
            Ok(options) => {
                PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(CONNECT_PATIENCE)
                    .connect_with(options)
                    .await
            }
            Err(error) => Err(error),
        };
        let pool = match opened {
            Ok(pool) => pool,
            Err(source) => {
                let _ = drop_database(server_url, &name).await;
                return Err(FreshDatabaseError::Open { name, source });
            }
        };
        Ok(FreshDatabase {
            name,
            url,
            pool,
            server_url: server_url.to_owned(),
            dropped: false,
        })
    }

    /// The database's name (`hospital_test_...`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's URL, for code under test that connects by itself.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Connections to the database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A fresh database with `migrator` applied (twice, see [`Self::migrate_twice`]).
    pub async fn migrated(migrator: &Migrator) -> FreshDatabase {
        let database = FreshDatabase::create().await;
        database.migrate_twice(migrator).await;
        database
    }

    /// The tables of the public schema, sqlx's own left out, in name order.
    pub async fn tables(&self) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations' ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await
        .expect("the catalogue is readable")
    }

    /// Applies `migrator`, then applies it again and checks that the second run changed
    /// nothing: the same migrations recorded (none run twice), the same tables, columns,
    /// constraints, indexes and triggers. Panics otherwise.
    pub async fn migrate_twice(&self, migrator: &Migrator) {
        migrator
            .run(&self.pool)
            .await
            .unwrap_or_else(|error| panic!("the migrations do not apply: {error}"));
        let first = self.schema().await;
        let applied: i64 =
            sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await
                .expect("sqlx records the migrations it ran");
        assert_eq!(
            applied,
            migrator.iter().count() as i64,
            "every migration is recorded once"
        );
        migrator
            .run(&self.pool)
            .await
            .unwrap_or_else(|error| panic!("the migrations do not apply a second time: {error}"));
        assert_eq!(
            self.schema().await,
            first,
            "applying the migrations again changed the database"
        );
    }

    /// What the database holds, as lines of text: the migrations sqlx recorded (with when they
    /// ran), every column, constraint, index and trigger of the public schema.
    pub async fn schema(&self) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT 'migration ' || version || ' ' || description || ' ' || installed_on
                 FROM _sqlx_migrations
             UNION ALL
             SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type
                    || ' ' || is_nullable || ' ' || coalesce(column_default, '')
                 FROM information_schema.columns WHERE table_schema = 'public'
             UNION ALL
             SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' '
                    || pg_get_constraintdef(oid)
                 FROM pg_constraint WHERE connamespace = 'public'::regnamespace
             UNION ALL
             SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
             UNION ALL
             SELECT 'trigger ' || tgrelid::regclass || ' ' || tgname FROM pg_trigger
                 WHERE NOT tgisinternal
             ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await
        .expect("the catalogue is readable")
    }

    /// Closes the pool and drops the database, with whatever connections are still open to it.
    /// Panics when the server refuses: a test's database is never left behind silently.
    pub async fn drop(mut self) {
        self.dropped = true;
        self.pool.close().await;
        if let Err(error) = drop_database(&self.server_url, &self.name).await {
            panic!("could not drop the test database {}: {error}", self.name);
        }
    }
}

impl Drop for FreshDatabase {
    /// Best effort, for a database not dropped explicitly (a test that failed half way): drops
    /// it on a thread of its own, so a runtime is never blocked. Inside a runtime the thread is
    /// not waited for (a test process that ends at once may leave the database behind);
    /// outside one it is.
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        self.dropped = true;
        let (server_url, name) = (self.server_url.clone(), self.name.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("could not drop the test database {name}: {error}");
                    return;
                }
            };
            if let Err(error) = runtime.block_on(drop_database(&server_url, &name)) {
                eprintln!("could not drop the test database {name}: {error}");
            }
        });
        if tokio::runtime::Handle::try_current().is_err() {
            let _ = cleanup.join();
        }
    }
}

async fn connect(server_url: &str) -> Result<PgConnection, FreshDatabaseError> {
    let no_server = |reason: String| FreshDatabaseError::NoServer {
        url: crate::config::mask_url(server_url),
        reason,
    };
    let options = PgConnectOptions::from_str(server_url).map_err(|e| no_server(e.to_string()))?;
    match tokio::time::timeout(CONNECT_PATIENCE, PgConnection::connect_with(&options)).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(error)) => Err(no_server(error.to_string())),
        Err(_) => Err(no_server(format!(
            "no answer within {} s",
            CONNECT_PATIENCE.as_secs()
        ))),
    }
}

async fn drop_database(server_url: &str, name: &str) -> Result<(), FreshDatabaseError> {
    let mut admin = connect(server_url).await?;
    let dropped = sqlx::query(sqlx::AssertSqlSafe(format!(
        r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
    )))
    .execute(&mut admin)
    .await;
    let _ = admin.close().await;
    dropped
        .map(|_| ())
        .map_err(|source| FreshDatabaseError::Drop {
            url: crate::config::mask_url(server_url),
            name: name.to_owned(),
            source,
        })
}

/// The SQLSTATEs and refusals the stores tell apart, which the schema tests expect too.
pub use crate::postgres::{refusal, sqlstate};

/// The SQLSTATE and constraint of a write the database refused; fails the test when the write
/// was accepted or failed otherwise.
pub fn refused(result: Result<(), sqlx::Error>) -> (String, Option<String>) {
    let error = result.expect_err("the database accepted the write");
    refusal(&error).unwrap_or_else(|| panic!("not a refusal by the database: {error}"))
}

/// `url` with its database (the path) replaced by `database`, its user, host and parameters
/// kept: `postgres://u@h:5432/postgres?sslmode=disable` → `postgres://u@h:5432/<database>?sslmode=disable`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |at| at + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |at| authority_start + at);
    let mut result = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        result.push('?');
        result.push_str(query);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_replaces_the_path_only() {
        for (server, expected) in [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/db",
            ),
            ("postgres://u:p@h:1", "postgres://u:p@h:1/db"),
            ("postgres://u@h/", "postgres://u@h/db"),
            (
                "postgresql://u@h:5/x?sslmode=disable&application_name=t",
                "postgresql://u@h:5/db?sslmode=disable&application_name=t",
            ),
            (
                "postgres:///postgres?host=/var/run/postgresql",
                "postgres:///db?host=/var/run/postgresql",
            ),
        ] {
            assert_eq!(with_database(server, "db"), expected, "{server}");
        }
    }

    #[tokio::test]
    async fn without_a_server_the_error_says_how_to_get_one() {
        // Port 1 on the loopback: nothing listens there.
        let error = FreshDatabase::create_on("postgres://postgres:secret@127.0.0.1:1/postgres")
            .await
            .err()
            .expect("no server answers on port 1");
        let message = error.to_string();
        assert!(
            matches!(error, FreshDatabaseError::NoServer { .. }),
            "{message}"
        );
        assert!(message.contains("scripts/test"), "{message}");
        assert!(message.contains(URL_VAR), "{message}");
        assert!(message.contains("127.0.0.1:1"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }

    async fn exists(name: &str) -> bool {
        let mut admin = connect(&server_url()).await.unwrap();
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
            .bind(name)
            .fetch_optional(&mut admin)
            .await
            .unwrap();
        found.is_some()
    }

    #[tokio::test]
    async fn a_fresh_database_is_empty_and_gone_after_drop_even_with_connections_open() {
        let database = FreshDatabase::create().await;
        let name = database.name().to_owned();
        assert!(name.starts_with(DATABASE_PREFIX), "{name}");
        assert!(database.url().ends_with(&name), "{}", database.url());
        let current: String = sqlx::query_scalar("SELECT current_database()::text")
            .fetch_one(database.pool())
            .await
            .unwrap();
        assert_eq!(current, name);
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_one(database.pool())
        .await
        .unwrap();
        assert_eq!(tables, 0);
        // A connection of the code under test's own, still open at the drop.
        let mut other = PgConnection::connect(database.url()).await.unwrap();
        sqlx::query("SELECT 1").execute(&mut other).await.unwrap();

        database.drop().await;
        assert!(!exists(&name).await, "{name} is still there");
    }

    #[tokio::test]
    async fn a_database_left_to_go_out_of_scope_is_dropped_in_the_background() {
        let database = FreshDatabase::create().await;
        let name = database.name().to_owned();
        std::mem::drop(database);
        for _ in 0..100 {
            if !exists(&name).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{name} was not dropped within 5 s");
    }
}
