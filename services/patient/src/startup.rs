//! Configuration and start-up of the patient service.

use std::sync::Arc;

use kit::command::ServiceSpec;
use kit::config::ConfigError;
use kit::runtime::{BoxError, Component};
use kit::{ServiceBase, ServiceConfig};
use shared_events::subjects::service;
use tokio_util::sync::CancellationToken;

use crate::commands::{ACTIONS, PatientCommands};
use crate::store::{MIGRATIONS, PatientStore};

/// The patient service's settings: those of every owning service, its database in
/// `DATABASE_URL_PATIENT` (default `sqlite://<data dir>/patient.db`; `postgres://...` for
/// PostgreSQL).
pub type Config = ServiceConfig;

pub const DATABASE_VAR: &str = "DATABASE_URL_PATIENT";

/// Settings for a patient service on `nats` with its database at `database_url`.
pub fn config(nats: kit::nats::NatsConfig, database_url: String) -> Config {
    ServiceConfig::new(service::PATIENT, DATABASE_VAR, nats, database_url)
}

/// A started patient service: connected, migrated, stream provisioned.
pub struct PatientService {
    base: ServiceBase,
    store: PatientStore,
}

impl Component for PatientService {
    type Config = Config;
    const NAME: &'static str = service::PATIENT;

    fn config_from_env() -> Result<Config, ConfigError> {
        ServiceConfig::from_env(service::PATIENT, DATABASE_VAR)
    }

    async fn build(config: Config) -> Result<Self, BoxError> {
        let base = ServiceBase::start(&config, MIGRATIONS).await?;
        let store = PatientStore::new(&base.database);
        Ok(PatientService { base, store })
    }

    async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), BoxError> {
        let commands = Arc::new(PatientCommands {
            store: self.store,
            publisher: self.base.publisher.clone(),
        });
        let spec = ServiceSpec {
            name: service::PATIENT,
            description: "Patients: registration, demographics, medical record numbers",
            version: env!("CARGO_PKG_VERSION"),
            actions: ACTIONS,
        };
        self.base.run(spec, commands, Vec::new(), shutdown).await
    }
}
