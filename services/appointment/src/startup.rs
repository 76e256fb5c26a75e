//! Configuration and start-up of the appointment service.

use std::sync::Arc;

use kit::command::ServiceSpec;
use kit::config::ConfigError;
use kit::directory::Directory;
use kit::read_model::ReadModelOn;
use kit::runtime::{BoxError, Component};
use kit::{ServiceBase, ServiceConfig};
use shared_events::subjects::service;
use tokio_util::sync::CancellationToken;

use crate::commands::{ACTIONS, AppointmentCommands};
use crate::read_model::{PeopleProjection, subscription};
use crate::store::{AppointmentStore, MIGRATIONS};

/// The appointment service's settings: those of every owning service, its database in
/// `DATABASE_URL_APPOINTMENT` (default `sqlite://<data dir>/appointment.db`; `postgres://...`
/// for PostgreSQL).
pub type Config = ServiceConfig;

pub const DATABASE_VAR: &str = "DATABASE_URL_APPOINTMENT";

/// Settings for an appointment service on `nats` with its database at `database_url`.
pub fn config(nats: kit::nats::NatsConfig, database_url: String) -> Config {
    ServiceConfig::new(service::APPOINTMENT, DATABASE_VAR, nats, database_url)
}

/// A started appointment service: connected, migrated, stream provisioned, read-model ready to
/// consume.
pub struct AppointmentService {
    base: ServiceBase,
    store: AppointmentStore,
    /// Consumes patient and staff events into the directory tables; runs until shutdown.
    read_model: ReadModelOn<PeopleProjection>,
    /// Reads the directory tables, waiting on the read-model when an id is new to it.
    directory: Directory,
}

impl Component for AppointmentService {
    type Config = Config;
    const NAME: &'static str = service::APPOINTMENT;

    fn config_from_env() -> Result<Config, ConfigError> {
        ServiceConfig::from_env(service::APPOINTMENT, DATABASE_VAR)
    }

    async fn build(config: Config) -> Result<Self, BoxError> {
        let base = ServiceBase::start(&config, MIGRATIONS).await?;
        let read_model = ReadModelOn::new(
            base.js.clone(),
            &base.database,
            Arc::new(PeopleProjection),
            base.publisher.clone(),
            subscription(),
        )
        .await?;
        let directory = Directory::new(&base.database, read_model.catch_up());
        let store = AppointmentStore::from_database(&base.database);
        Ok(AppointmentService {
            base,
            store,
            read_model,
            directory,
        })
    }

    async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), BoxError> {
        let read_model = tokio::spawn(self.read_model.run(shutdown.clone()));
        let commands = Arc::new(AppointmentCommands {
            store: self.store,
            directory: self.directory,
            publisher: self.base.publisher.clone(),
        });
        let spec = ServiceSpec {
            name: service::APPOINTMENT,
            description: "Appointments: booking without double-booking, check-in, cancellation",
            version: env!("CARGO_PKG_VERSION"),
            actions: ACTIONS,
        };
        self.base
            .run(spec, commands, vec![read_model], shutdown)
            .await
    }
}
