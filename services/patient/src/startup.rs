//! Configuration and start-up of the patient service.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use kit::command::{ServiceSpec, serve_commands};
use kit::config::{self, ConfigError, write_setting};
use kit::nats::NatsConfig;
use kit::runtime::{BoxError, Component};
use kit::{EventPublisher, OutboxRelay};
use shared_events::subjects::service;
use tokio_util::sync::CancellationToken;

use crate::commands::{ACTIONS, PatientCommands};
use crate::store::{MIGRATOR, PatientStore};

#[derive(Debug, Clone)]
pub struct Config {
    pub nats: NatsConfig,
    /// `DATABASE_URL_PATIENT`; default `sqlite://<data dir>/patient.db`.
    pub database_url: String,
    /// `HOSPITAL_STREAM_REPLICAS`: 1 on a single server, 3 on a cluster.
    pub stream_replicas: usize,
    /// `HOSPITAL_OUTBOX_INTERVAL_MS`: how often the outbox is checked for events left behind.
    pub outbox_interval: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Config {
            nats: NatsConfig::from_env()?,
            database_url: config::database_url("DATABASE_URL_PATIENT", service::PATIENT),
            stream_replicas: kit::event_stream::replicas_from_env()?,
            outbox_interval: config::millis_or(
                "HOSPITAL_OUTBOX_INTERVAL_MS",
                Duration::from_secs(2),
            )?,
        })
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.nats)?;
        write_setting(
            f,
            "DATABASE_URL_PATIENT",
            config::mask_url(&self.database_url),
        )?;
        write_setting(f, "HOSPITAL_STREAM_REPLICAS", self.stream_replicas)?;
        write_setting(
            f,
            "HOSPITAL_OUTBOX_INTERVAL_MS",
            self.outbox_interval.as_millis(),
        )
    }
}

/// A started patient service: connected, migrated, stream provisioned.
pub struct PatientService {
    client: async_nats::Client,
    store: PatientStore,
    publisher: EventPublisher,
    outbox_interval: Duration,
}

impl PatientService {
    pub fn store(&self) -> &PatientStore {
        &self.store
    }
}

impl Component for PatientService {
    type Config = Config;
    const NAME: &'static str = service::PATIENT;

    fn config_from_env() -> Result<Config, ConfigError> {
        Config::from_env()
    }

    async fn build(config: Config) -> Result<Self, BoxError> {
        let pool = kit::sqlite::open(&config.database_url, &MIGRATOR).await?;
        let client = kit::nats::connect(&config.nats, "patient-service").await?;
        let js = kit::event_stream::provision(&client, config.stream_replicas).await;
        Ok(PatientService {
            client,
            store: PatientStore::new(pool.clone()),
            publisher: EventPublisher::new(js, pool),
            outbox_interval: config.outbox_interval,
        })
    }

    async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), BoxError> {
        let relay = OutboxRelay::new(self.publisher.clone(), self.outbox_interval);
        let relay = tokio::spawn(relay.run(shutdown.clone()));
        let commands = Arc::new(PatientCommands {
            store: self.store.clone(),
            publisher: self.publisher,
        });
        let spec = ServiceSpec {
            name: service::PATIENT,
            description: "Patients: registration, demographics, medical record numbers",
            version: env!("CARGO_PKG_VERSION"),
            actions: ACTIONS,
        };
        let served = serve_commands(self.client.clone(), spec, commands, shutdown).await;
        let _ = relay.await;
        let _ = self.client.flush().await;
        self.store.pool().close().await;
        served
    }
}
