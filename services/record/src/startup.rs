//! Configuration and start-up of the record service.

use std::sync::Arc;

use kit::command::ServiceSpec;
use kit::config::ConfigError;
use kit::directory::Directory;
use kit::read_model::ReadModelOn;
use kit::runtime::{BoxError, Component};
use kit::{ServiceBase, ServiceConfig};
use shared_events::subjects::service;
use tokio_util::sync::CancellationToken;

use crate::commands::{ACTIONS, RecordCommands};
use crate::read_model::{self, KnownAppointments, RecordReadModel};
use crate::store::{MIGRATIONS, RecordStore};

/// The record service's settings: those of every owning service, its database in
/// `DATABASE_URL_RECORD` (default `sqlite://<data dir>/record.db`; `postgres://...` for
/// PostgreSQL).
pub type Config = ServiceConfig;

pub const DATABASE_VAR: &str = "DATABASE_URL_RECORD";

/// Settings for a record service on `nats` with its database at `database_url`.
pub fn config(nats: kit::nats::NatsConfig, database_url: String) -> Config {
    ServiceConfig::new(service::RECORD, DATABASE_VAR, nats, database_url)
}

/// A started record service: connected, migrated, stream provisioned, read-model ready to run.
pub struct RecordService {
    base: ServiceBase,
    store: RecordStore,
    /// Feeds the directory and the known appointments; runs until shutdown.
    read_model: ReadModelOn<RecordReadModel>,
    directory: Directory,
    appointments: KnownAppointments,
}

impl Component for RecordService {
    type Config = Config;
    const NAME: &'static str = service::RECORD;

    fn config_from_env() -> Result<Config, ConfigError> {
        ServiceConfig::from_env(service::RECORD, DATABASE_VAR)
    }

    async fn build(config: Config) -> Result<Self, BoxError> {
        let base = ServiceBase::start(&config, MIGRATIONS).await?;
        let read_model = ReadModelOn::new(
            base.js.clone(),
            &base.database,
            Arc::new(RecordReadModel),
            base.publisher.clone(),
            read_model::subscription(),
        )
        .await?;
        Ok(RecordService {
            store: RecordStore::from_database(&base.database),
            directory: Directory::new(&base.database, read_model.catch_up()),
            appointments: KnownAppointments::new(&base.database, read_model.catch_up()),
            read_model,
            base,
        })
    }

    async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), BoxError> {
        let read_model = tokio::spawn(self.read_model.run(shutdown.clone()));
        let commands = Arc::new(RecordCommands {
            store: self.store,
            publisher: self.base.publisher.clone(),
            directory: self.directory,
            appointments: self.appointments,
        });
        let spec = ServiceSpec {
            name: service::RECORD,
            description: "Medical records: notes, diagnoses, vitals; amendments with full history",
            version: env!("CARGO_PKG_VERSION"),
            actions: ACTIONS,
        };
        self.base
            .run(spec, commands, vec![read_model], shutdown)
            .await
    }
}
