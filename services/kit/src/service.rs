//! What every owning service (patient, staff, appointment, record) shares from start to stop:
//! its settings ([`ServiceConfig`]) and its foundation ([`ServiceBase`]: its own database, the
//! NATS connection, the event stream, the outbox publisher), and the one way it runs: commands,
//! outbox relay and background work (read-models) until shutdown, then a clean stop.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::command::{CommandHandler, ServiceSpec, serve_commands_with_keys};
use crate::config::{self, ConfigError, write_setting};
use crate::database::{Database, Migrations};
use crate::idempotency::{self, KeyStore};
use crate::nats::NatsConfig;
use crate::runtime::BoxError;
use crate::{EventPublisher, OutboxRelay};

/// The settings of an owning service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// `patient`, `staff`, ...: names the NATS client and the default database file.
    pub service: &'static str,
    /// The variable that names the database: `DATABASE_URL_PATIENT`, ...
    pub database_var: &'static str,
    pub nats: NatsConfig,
    /// Default: `sqlite://<data dir>/<service>.db?mode=rwc`; a `postgres://` URL selects
    /// PostgreSQL (`kit::database`).
    pub database_url: String,
    /// `HOSPITAL_STREAM_REPLICAS`: 1 on a single server, 3 on a cluster.
    pub stream_replicas: usize,
    /// `HOSPITAL_OUTBOX_INTERVAL_MS`: how often the outbox is checked for events left behind.
    pub outbox_interval: Duration,
    /// `HOSPITAL_IDEMPOTENCY_RETENTION_HOURS`: how long `Idempotency-Key`s are kept (default and
    /// minimum 24 hours).
    pub idempotency_retention: Duration,
}

impl ServiceConfig {
    pub fn from_env(
        service: &'static str,
        database_var: &'static str,
    ) -> Result<Self, ConfigError> {
        Ok(ServiceConfig {
            service,
            database_var,
            nats: NatsConfig::from_env(service)?,
            database_url: config::database_url(database_var, service),
            stream_replicas: crate::event_stream::replicas_from_env()?,
            outbox_interval: config::millis_or(
                "HOSPITAL_OUTBOX_INTERVAL_MS",
                Duration::from_secs(2),
            )?,
            idempotency_retention: idempotency_retention_from_env()?,
        })
    }

    /// Explicit settings (tests, embedding): one stream replica, the default outbox interval.
    pub fn new(
        service: &'static str,
        database_var: &'static str,
        nats: NatsConfig,
        database_url: String,
    ) -> Self {
        ServiceConfig {
            service,
            database_var,
            nats,
            database_url,
            stream_replicas: 1,
            outbox_interval: Duration::from_secs(2),
            idempotency_retention: idempotency::MIN_RETENTION,
        }
    }
}

/// `HOSPITAL_IDEMPOTENCY_RETENTION_HOURS`, at least 24 (the promise to clients).
fn idempotency_retention_from_env() -> Result<Duration, ConfigError> {
    let min_hours = idempotency::MIN_RETENTION.as_secs() / 3600;
    retention_of_hours(config::parsed_or(idempotency::RETENTION_VAR, min_hours)?)
}

fn retention_of_hours(hours: u64) -> Result<Duration, ConfigError> {
    let min_hours = idempotency::MIN_RETENTION.as_secs() / 3600;
    if hours < min_hours {
        return Err(ConfigError::Invalid {
            var: idempotency::RETENTION_VAR,
            reason: format!("{hours}: keys are kept at least {min_hours} hours"),
        });
    }
    hours
        .checked_mul(3600)
        .map(Duration::from_secs)
        .ok_or_else(|| ConfigError::Invalid {
            var: idempotency::RETENTION_VAR,
            reason: format!("{hours}: too large"),
        })
}

impl fmt::Display for ServiceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.nats)?;
        write_setting(f, self.database_var, config::mask_url(&self.database_url))?;
        write_setting(f, "HOSPITAL_STREAM_REPLICAS", self.stream_replicas)?;
        write_setting(
            f,
            "HOSPITAL_OUTBOX_INTERVAL_MS",
            self.outbox_interval.as_millis(),
        )?;
        write_setting(
            f,
            idempotency::RETENTION_VAR,
            self.idempotency_retention.as_secs() / 3600,
        )
    }
}

/// A started service's foundation: migrated database, NATS connection, provisioned stream.
pub struct ServiceBase {
    pub client: async_nats::Client,
    /// The service's own database (its tables, outbox and read-models), on SQLite with its one
    /// group committer, which the store writes through and the publisher deletes published
    /// outbox rows through.
    pub database: Database,
    pub js: jetstream::Context,
    /// Publishes committed outbox rows; shared by the handlers, the relay and read-models.
    pub publisher: EventPublisher,
    outbox_interval: Duration,
    idempotency_retention: Duration,
}

impl ServiceBase {
    /// Opens and migrates the database, connects to NATS (waiting for it if it is not up yet)
    /// and makes sure the event stream exists.
    pub async fn start(config: &ServiceConfig, migrations: Migrations) -> Result<Self, BoxError> {
        let database = Database::open(&config.database_url, migrations).await?;
        let client =
            crate::nats::connect(&config.nats, &format!("{}-service", config.service)).await?;
        let js = crate::event_stream::provision(&client, config.stream_replicas).await;
        let publisher = EventPublisher::new(js.clone(), database.clone());
        Ok(ServiceBase {
            client,
            database,
            js,
            publisher,
            outbox_interval: config.outbox_interval,
            idempotency_retention: config.idempotency_retention,
        })
    }

    /// Serves `handler`'s commands (honouring `Idempotency-Key`s with the keys in its database),
    /// runs the outbox relay and purges expired keys until `shutdown`; `background`
    /// tasks (read-models) must stop on the same token. Then waits for all of them, flushes
    /// NATS and closes the database.
    pub async fn run<H: CommandHandler>(
        self,
        spec: ServiceSpec,
        handler: Arc<H>,
        background: Vec<JoinHandle<()>>,
        shutdown: CancellationToken,
    ) -> Result<(), BoxError> {
        let relay = OutboxRelay::new(self.publisher.clone(), self.outbox_interval);
        let relay = tokio::spawn(relay.run(shutdown.clone()));
        let keys = KeyStore::new(self.database.clone());
        let purge = tokio::spawn(
            keys.clone()
                .run_purge(self.idempotency_retention, shutdown.clone()),
        );
        let served =
            serve_commands_with_keys(self.client.clone(), spec, handler, keys, shutdown).await;
        for task in background {
            let _ = task.await;
        }
        let _ = relay.await;
        let _ = purge.await;
        let _ = self.client.flush().await;
        self.database.close().await;
        served
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_kept_at_least_a_day() {
        assert_eq!(retention_of_hours(24).unwrap(), idempotency::MIN_RETENTION);
        assert_eq!(
            retention_of_hours(72).unwrap(),
            Duration::from_secs(72 * 3600)
        );
        let error = retention_of_hours(1).unwrap_err().to_string();
        assert!(
            error.contains("HOSPITAL_IDEMPOTENCY_RETENTION_HOURS") && error.contains("at least 24"),
            "{error}"
        );
        assert!(retention_of_hours(u64::MAX).is_err());
    }

    #[test]
    fn the_retention_is_printed_with_the_configuration() {
        let config = ServiceConfig::new(
            "patient",
            "DATABASE_URL_PATIENT",
            NatsConfig::new("nats://127.0.0.1:4222"),
            "sqlite://data/patient.db?mode=rwc".into(),
        );
        let printed = config.to_string();
        assert!(
            printed
                .lines()
                .any(|l| l.contains("HOSPITAL_IDEMPOTENCY_RETENTION_HOURS") && l.ends_with(" 24")),
            "{printed}"
        );
    }
}
