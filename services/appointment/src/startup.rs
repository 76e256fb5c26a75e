//! Configuration and start-up of the appointment service.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use kit::command::{ServiceSpec, serve_commands};
use kit::config::{self, ConfigError, write_setting};
use kit::directory::Directory;
use kit::nats::NatsConfig;
use kit::read_model::ReadModel;
use kit::runtime::{BoxError, Component};
use kit::{EventPublisher, OutboxRelay};
use shared_events::subjects::service;
use tokio_util::sync::CancellationToken;

use crate::commands::{ACTIONS, AppointmentCommands};
use crate::read_model::{PeopleProjection, subscription};
use crate::store::{AppointmentStore, MIGRATOR};

#[derive(Debug, Clone)]
pub struct Config {
    pub nats: NatsConfig,
    /// `DATABASE_URL_APPOINTMENT`; default `sqlite://<data dir>/appointment.db`.
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
            database_url: config::database_url("DATABASE_URL_APPOINTMENT", service::APPOINTMENT),
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
            "DATABASE_URL_APPOINTMENT",
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

/// A started appointment service: connected, migrated, stream provisioned, read-model ready to
/// consume.
pub struct AppointmentService {
    client: async_nats::Client,
    store: AppointmentStore,
    publisher: EventPublisher,
    /// Consumes patient and staff events into the directory tables; runs until shutdown.
    read_model: ReadModel<PeopleProjection>,
    /// Reads the directory tables, waiting on the read-model when an id is new to it.
    directory: Directory,
    outbox_interval: Duration,
}

impl AppointmentService {
    pub fn store(&self) -> &AppointmentStore {
        &self.store
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }
}

impl Component for AppointmentService {
    type Config = Config;
    const NAME: &'static str = service::APPOINTMENT;

    fn config_from_env() -> Result<Config, ConfigError> {
        Config::from_env()
    }

    async fn build(config: Config) -> Result<Self, BoxError> {
        let pool = kit::sqlite::open(&config.database_url, &MIGRATOR).await?;
        let client = kit::nats::connect(&config.nats, "appointment-service").await?;
        let js = kit::event_stream::provision(&client, config.stream_replicas).await;
        let publisher = EventPublisher::new(js.clone(), pool.clone());
        let read_model = ReadModel::new(
            js,
            pool.clone(),
            Arc::new(PeopleProjection),
            publisher.clone(),
            subscription(),
        )
        .await?;
        let directory = Directory::new(pool.clone(), read_model.catch_up());
        Ok(AppointmentService {
            client,
            store: AppointmentStore::new(pool),
            publisher,
            read_model,
            directory,
            outbox_interval: config.outbox_interval,
        })
    }

    async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), BoxError> {
        let relay = OutboxRelay::new(self.publisher.clone(), self.outbox_interval);
        let relay = tokio::spawn(relay.run(shutdown.clone()));
        let read_model = tokio::spawn(self.read_model.run(shutdown.clone()));
        let commands = Arc::new(AppointmentCommands {
            store: self.store.clone(),
            directory: self.directory,
            publisher: self.publisher,
        });
        let spec = ServiceSpec {
            name: service::APPOINTMENT,
            description: "Appointments: booking without double-booking, check-in, cancellation",
            version: env!("CARGO_PKG_VERSION"),
            actions: ACTIONS,
        };
        let served = serve_commands(self.client.clone(), spec, commands, shutdown).await;
        let _ = read_model.await;
        let _ = relay.await;
        let _ = self.client.flush().await;
        self.store.pool().close().await;
        served
    }
}
