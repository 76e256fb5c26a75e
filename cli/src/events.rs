//! `hospital events`: read the event stream and its consumers from the command line, without the
//! `nats` tool (which cannot be installed on this project's machines).
//!
//! - `hospital events tail` prints events as they arrive, or from a sequence or a time.
//! - `hospital events stats` prints the stream's size, counts per aggregate and verb, and the lag
//!   of every durable consumer.

mod stats;
mod tail;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use async_nats::ConnectErrorKind;
use kit::nats::{Credentials, NatsConfig};
use kit::nats_users::{self, Passwords, PasswordsError};

/// How long one connection attempt may take; an operator command fails fast instead of waiting.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    command: EventsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum EventsCommand {
    /// Print events as they arrive (by default only new ones), until Ctrl-C or --limit.
    Tail(tail::TailArgs),
    /// Print the stream's size, event counts per aggregate and verb, and consumer lag.
    Stats(Target),
}

/// Which NATS to read from (and, for the commands that open databases, which data directory).
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// NATS URL (a comma-separated server list) [default: <data-dir>/nats-url, else
    /// nats://127.0.0.1:4222].
    #[arg(long, value_name = "URL", env = "NATS_URL")]
    nats_url: Option<String>,

    /// The data directory of `hospital up`, whose `nats-url` file names its NATS.
    #[arg(
        long,
        value_name = "DIR",
        env = "HOSPITAL_DATA_DIR",
        default_value = "./data"
    )]
    pub(crate) data_dir: PathBuf,
}

impl Target {
    /// A service's database: `DATABASE_URL_<SERVICE>`, else `<data-dir>/<service>.db` (as
    /// `hospital up` configures its services).
    pub(crate) fn database_url(&self, var: &'static str, service: &str) -> String {
        kit::config::optional(var)
            .unwrap_or_else(|| kit::config::sqlite_url_in(&self.data_dir, service))
    }

    /// `--nats-url`, else `NATS_URL`, else what `hospital up` wrote, else the default port.
    pub(crate) fn url(&self) -> String {
        if let Some(url) = self.nats_url.as_deref().filter(|u| !u.trim().is_empty()) {
            return url.to_owned();
        }
        url_from_data_dir(&self.data_dir).unwrap_or_else(|| NatsConfig::DEFAULT_URL.to_owned())
    }

    /// Who to connect as: `NATS_USER` (default `user`) with `NATS_PASSWORD` or
    /// `NATS_PASSWORD_FILE` when a password is in the environment, else `user`'s password kept
    /// in the data directory by `hospital up`, else no one (a NATS without authentication).
    pub(crate) fn credentials(&self, user: &str) -> anyhow::Result<Option<Credentials>> {
        let in_environment = [kit::nats::PASSWORD_VAR, kit::nats::PASSWORD_FILE_VAR]
            .into_iter()
            .any(|var| kit::config::optional(var).is_some());
        if in_environment {
            let user = kit::config::optional(kit::nats::USER_VAR).unwrap_or_else(|| user.into());
            let password = kit::nats::password_from_env(&user)?;
            return Ok(Some(Credentials::new(user, password)));
        }
        let file = self.data_dir.join(nats_users::FILE_NAME);
        match Passwords::load(&file) {
            Ok(passwords) => Ok(passwords.credentials(user)),
            Err(PasswordsError::Io { error, .. })
                if error.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(None)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Connects once as the operator user, without retrying: an operator wants an error, not
    /// a hang.
    pub(crate) async fn connect(&self) -> anyhow::Result<async_nats::Client> {
        self.connect_as(nats_users::OPERATOR).await
    }

    /// Connects once as `user` (see [`Self::credentials`]).
    pub(crate) async fn connect_as(&self, user: &str) -> anyhow::Result<async_nats::Client> {
        let credentials = self.credentials(user)?;
        let url = self.url();
        let servers: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let mut options = async_nats::ConnectOptions::new();
        if let Some(credentials) = &credentials {
            options = options
                .user_and_password(credentials.user.clone(), credentials.password().to_owned())
                .custom_inbox_prefix(credentials.inbox_prefix());
        }
        let connecting = options
            .name("hospital-events")
            .connection_timeout(CONNECT_TIMEOUT)
            .connect(servers);
        // The overall bound covers a server list, where each address gets its own attempt.
        match tokio::time::timeout(CONNECT_TIMEOUT * 2, connecting).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(error)) if error.kind() == ConnectErrorKind::AuthorizationViolation => {
                let who = match &credentials {
                    Some(credentials) => format!("user {:?}", credentials.user),
                    None => "a client without credentials".to_owned(),
                };
                Err(error).with_context(|| {
                    format!(
                        "NATS at {} refused {who}: set NATS_USER and NATS_PASSWORD (or \
                         NATS_PASSWORD_FILE) to the {user:?} user's, or pass the --data-dir of \
                         `hospital up` (it keeps them in {})",
                        kit::config::mask_url(&url),
                        self.data_dir.join(nats_users::FILE_NAME).display()
                    )
                })
            }
            Ok(Err(error)) => Err(error).with_context(|| unreachable(&url)),
            Err(_) => Err(anyhow::anyhow!("timed out")).with_context(|| unreachable(&url)),
        }
    }
}

fn unreachable(url: &str) -> String {
    format!(
        "cannot connect to NATS at {} (is `hospital up` running? pass --nats-url)",
        kit::config::mask_url(url)
    )
}

fn url_from_data_dir(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join("nats-url")).ok()?;
    let url = text.trim();
    (!url.is_empty()).then(|| url.to_owned())
}

pub async fn run(args: EventsArgs) -> ExitCode {
    let result = match args.command {
        EventsCommand::Tail(args) => tail::run(args).await,
        EventsCommand::Stats(target) => stats::run(&target).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hospital events: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_comes_from_the_flag_then_the_data_dir_then_the_default() {
        let dir = tempfile_dir();
        let target = |url: Option<&str>| Target {
            nats_url: url.map(str::to_owned),
            data_dir: dir.clone(),
        };
        assert_eq!(target(None).url(), NatsConfig::DEFAULT_URL);
        std::fs::write(dir.join("nats-url"), "nats://127.0.0.1:4999\n").unwrap();
        assert_eq!(target(None).url(), "nats://127.0.0.1:4999");
        assert_eq!(target(Some("nats://x:1")).url(), "nats://x:1");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hospital-events-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
