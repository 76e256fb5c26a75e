//! Configuration and start-up of the staff service.

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

use crate::commands::{ACTIONS, StaffCommands};
use crate::store::{MIGRATOR, StaffStore};
use crate::{bootstrap, passwords};

#[derive(Debug, Clone)]
pub struct Config {
    pub nats: NatsConfig,
    /// `DATABASE_URL_STAFF`; default `sqlite://<data dir>/staff.db`.
    pub database_url: String,
    pub stream_replicas: usize,
    pub outbox_interval: Duration,
    /// `HOSPITAL_ADMIN_PASSWORD`: the first administrator's password (used only when no
    /// administrator exists yet). Unset: a password is generated and printed once.
    pub admin_password: Option<String>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let admin_password = config::optional("HOSPITAL_ADMIN_PASSWORD");
        if let Some(problem) = admin_password.as_deref().and_then(passwords::weakness) {
            return Err(ConfigError::Invalid {
                var: "HOSPITAL_ADMIN_PASSWORD",
                reason: problem,
            });
        }
        Ok(Config {
            nats: NatsConfig::from_env()?,
            database_url: config::database_url("DATABASE_URL_STAFF", service::STAFF),
            stream_replicas: kit::event_stream::replicas_from_env()?,
            outbox_interval: config::millis_or(
                "HOSPITAL_OUTBOX_INTERVAL_MS",
                Duration::from_secs(2),
            )?,
            admin_password,
        })
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.nats)?;
        write_setting(
            f,
            "DATABASE_URL_STAFF",
            config::mask_url(&self.database_url),
        )?;
        write_setting(f, "HOSPITAL_STREAM_REPLICAS", self.stream_replicas)?;
        write_setting(
            f,
            "HOSPITAL_OUTBOX_INTERVAL_MS",
            self.outbox_interval.as_millis(),
        )?;
        let admin = self
            .admin_password
            .as_deref()
            .map_or_else(|| "(unset)".to_owned(), config::mask);
        write_setting(f, "HOSPITAL_ADMIN_PASSWORD", admin)
    }
}

pub struct StaffService {
    client: async_nats::Client,
    commands: Arc<StaffCommands>,
    outbox_interval: Duration,
}

impl Component for StaffService {
    type Config = Config;
    const NAME: &'static str = service::STAFF;

    fn config_from_env() -> Result<Config, ConfigError> {
        Config::from_env()
    }

    async fn build(config: Config) -> Result<Self, BoxError> {
        let pool = kit::sqlite::open(&config.database_url, &MIGRATOR).await?;
        let client = kit::nats::connect(&config.nats, "staff-service").await?;
        let js = kit::event_stream::provision(&client, config.stream_replicas).await;
        let commands = Arc::new(StaffCommands {
            store: StaffStore::new(pool.clone()),
            publisher: EventPublisher::new(js, pool),
        });
        if let Some(password) =
            bootstrap::ensure_admin(&commands, config.admin_password.as_deref()).await?
        {
            // Printed once, on stdout, for the operator who started the system.
            println!(
                "Created the first administrator account: username \"{}\", password \"{password}\" \
                 (shown only this once; set HOSPITAL_ADMIN_PASSWORD to choose it)",
                bootstrap::ADMIN_USERNAME
            );
        }
        Ok(StaffService {
            client,
            commands,
            outbox_interval: config.outbox_interval,
        })
    }

    async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), BoxError> {
        let relay = OutboxRelay::new(self.commands.publisher.clone(), self.outbox_interval);
        let relay = tokio::spawn(relay.run(shutdown.clone()));
        let spec = ServiceSpec {
            name: service::STAFF,
            description: "Staff members, their roles and their login accounts",
            version: env!("CARGO_PKG_VERSION"),
            actions: ACTIONS,
        };
        let pool = self.commands.store.pool().clone();
        let served = serve_commands(self.client.clone(), spec, self.commands, shutdown).await;
        let _ = relay.await;
        let _ = self.client.flush().await;
        pool.close().await;
        served
    }
}
