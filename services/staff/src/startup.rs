//! Configuration and start-up of the staff service.

use std::fmt;
use std::sync::Arc;

use kit::command::ServiceSpec;
use kit::config::{self, ConfigError, write_setting};
use kit::runtime::{BoxError, Component};
use kit::{ServiceBase, ServiceConfig};
use shared_events::subjects::service;
use tokio_util::sync::CancellationToken;

use crate::commands::{ACTIONS, StaffCommands};
use crate::login_limits::{FailedLogins, LoginLimits};
use crate::store::{MIGRATIONS, StaffStore};
use crate::{bootstrap, passwords};

pub const DATABASE_VAR: &str = "DATABASE_URL_STAFF";

#[derive(Debug, Clone)]
pub struct Config {
    /// The settings of every owning service; the database in `DATABASE_URL_STAFF` (default
    /// `sqlite://<data dir>/staff.db`; `postgres://...` for PostgreSQL).
    pub service: ServiceConfig,
    /// `HOSPITAL_ADMIN_PASSWORD`: the first administrator's password (used only when no
    /// administrator exists yet). Unset: a password is generated and printed once.
    pub admin_password: Option<String>,
    /// `HOSPITAL_LOGIN_MAX_FAILURES`, `..._PER_ADDRESS`, `HOSPITAL_LOGIN_WINDOW_MINUTES`.
    pub login_limits: LoginLimits,
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
            service: ServiceConfig::from_env(service::STAFF, DATABASE_VAR)?,
            admin_password,
            login_limits: LoginLimits::from_env()?,
        })
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.service)?;
        let admin = self
            .admin_password
            .as_deref()
            .map_or_else(|| "(unset)".to_owned(), config::mask);
        write_setting(f, "HOSPITAL_ADMIN_PASSWORD", admin)?;
        write!(f, "{}", self.login_limits)
    }
}

pub struct StaffService {
    base: ServiceBase,
    commands: Arc<StaffCommands>,
}

impl Component for StaffService {
    type Config = Config;
    const NAME: &'static str = service::STAFF;

    fn config_from_env() -> Result<Config, ConfigError> {
        Config::from_env()
    }

    async fn build(config: Config) -> Result<Self, BoxError> {
        let base = ServiceBase::start(&config.service, MIGRATIONS).await?;
        let commands = Arc::new(StaffCommands {
            store: StaffStore::new(&base.database),
            failed_logins: FailedLogins::new(&base.database, config.login_limits),
            publisher: base.publisher.clone(),
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
        Ok(StaffService { base, commands })
    }

    async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), BoxError> {
        let spec = ServiceSpec {
            name: service::STAFF,
            description: "Staff members, their roles and their login accounts",
            version: env!("CARGO_PKG_VERSION"),
            actions: ACTIONS,
        };
        self.base
            .run(spec, self.commands, Vec::new(), shutdown)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kit::nats::NatsConfig;

    #[test]
    fn the_configuration_shows_the_login_limits_and_hides_the_admin_password() {
        let config = Config {
            service: ServiceConfig::new(
                service::STAFF,
                DATABASE_VAR,
                NatsConfig::new("nats://127.0.0.1:4222"),
                "sqlite://data/staff.db?mode=rwc".into(),
            ),
            admin_password: Some("the first admin password".into()),
            login_limits: LoginLimits::default(),
        };
        let shown = config.to_string();
        for name in [
            DATABASE_VAR,
            "HOSPITAL_ADMIN_PASSWORD",
            "HOSPITAL_LOGIN_MAX_FAILURES",
            "HOSPITAL_LOGIN_MAX_FAILURES_PER_ADDRESS",
            "HOSPITAL_LOGIN_WINDOW_MINUTES",
        ] {
            assert!(shown.contains(name), "{name} missing from:\n{shown}");
        }
        assert!(!shown.contains("the first admin password"));
    }
}
