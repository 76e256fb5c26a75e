//! What every owning service (patient, staff, appointment, record) shares from start to stop:
//! its settings ([`ServiceConfig`]) and its foundation ([`ServiceBase`]: its own database, the
//! NATS connection, the event stream, the outbox publisher), and the one way it runs: commands,
//! outbox relay and background work (read-models) until shutdown, then a clean stop.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::command::{CommandHandler, ServiceSpec, serve_commands};
use crate::config::{self, ConfigError, write_setting};
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
    /// Default: `sqlite://<data dir>/<service>.db?mode=rwc`.
    pub database_url: String,
    /// `HOSPITAL_STREAM_REPLICAS`: 1 on a single server, 3 on a cluster.
    pub stream_replicas: usize,
    /// `HOSPITAL_OUTBOX_INTERVAL_MS`: how often the outbox is checked for events left behind.
    pub outbox_interval: Duration,
}

impl ServiceConfig {
    pub fn from_env(
        service: &'static str,
        database_var: &'static str,
    ) -> Result<Self, ConfigError> {
        Ok(ServiceConfig {
            service,
            database_var,
            nats: NatsConfig::from_env()?,
            database_url: config::database_url(database_var, service),
            stream_replicas: crate::event_stream::replicas_from_env()?,
            outbox_interval: config::millis_or(
                "HOSPITAL_OUTBOX_INTERVAL_MS",
                Duration::from_secs(2),
            )?,
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
        }
    }
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
        )
    }
}

/// A started service's foundation: migrated database, NATS connection, provisioned stream.
pub struct ServiceBase {
    pub client: async_nats::Client,
    /// The service's own database (its tables, outbox and read-models).
    pub pool: SqlitePool,
    pub js: jetstream::Context,
    /// Publishes committed outbox rows; shared by the handlers, the relay and read-models.
    pub publisher: EventPublisher,
    outbox_interval: Duration,
}

impl ServiceBase {
    /// Opens and migrates the database, connects to NATS (waiting for it if it is not up yet)
    /// and makes sure the event stream exists.
    pub async fn start(config: &ServiceConfig, migrator: &Migrator) -> Result<Self, BoxError> {
        let pool = crate::sqlite::open(&config.database_url, migrator).await?;
        let client =
            crate::nats::connect(&config.nats, &format!("{}-service", config.service)).await?;
        let js = crate::event_stream::provision(&client, config.stream_replicas).await;
        let publisher = EventPublisher::new(js.clone(), pool.clone());
        Ok(ServiceBase {
            client,
            pool,
            js,
            publisher,
            outbox_interval: config.outbox_interval,
        })
    }

    /// Serves `handler`'s commands and runs the outbox relay until `shutdown`; `background`
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
        let served = serve_commands(self.client.clone(), spec, handler, shutdown).await;
        for task in background {
            let _ = task.await;
        }
        let _ = relay.await;
        let _ = self.client.flush().await;
        self.pool.close().await;
        served
    }
}
