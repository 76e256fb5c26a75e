//! The NATS connection every component uses.

use std::time::Duration;

use crate::config::{self, ConfigError};

/// A NATS user and its password. The password never appears in `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    password: String,
}

impl Credentials {
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// The prefix of this user's reply inboxes: `nats.conf` lets each user subscribe only to
    /// its own, so no component can read another's replies.
    pub fn inbox_prefix(&self) -> String {
        format!("_INBOX_{}", self.user)
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &config::mask(&self.password))
            .finish()
    }
}

/// How a component reaches NATS.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// One server or a comma-separated list (`nats://a:4222,nats://b:4222`).
    pub url: String,
    /// How long a request waits for its reply.
    pub request_timeout: Duration,
    /// Who connects (`nats.conf` refuses anonymous clients). `None` only for a NATS without
    /// authentication (unit tests that never connect).
    pub credentials: Option<Credentials>,
}

/// The variables a component's NATS user comes from.
pub const USER_VAR: &str = "NATS_USER";
pub const PASSWORD_VAR: &str = "NATS_PASSWORD";
pub const PASSWORD_FILE_VAR: &str = "NATS_PASSWORD_FILE";

impl NatsConfig {
    pub const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

    /// `NATS_URL` (default `nats://127.0.0.1:4222`), `NATS_REQUEST_TIMEOUT_MS` (default 5000),
    /// and the component's user: `NATS_USER` (default `default_user`, the component's name in
    /// `nats.conf`) with `NATS_PASSWORD`, or `NATS_PASSWORD_FILE` naming a file that holds it
    /// (a secret mounted outside the repository). A missing password is an error.
    pub fn from_env(default_user: &str) -> Result<Self, ConfigError> {
        let url = config::optional("NATS_URL").unwrap_or_else(|| Self::DEFAULT_URL.to_owned());
        if server_list(&url).is_empty() {
            return Err(ConfigError::Invalid {
                var: "NATS_URL",
                reason: "no server given".into(),
            });
        }
        let request_timeout = config::millis_or("NATS_REQUEST_TIMEOUT_MS", Duration::from_secs(5))?;
        let user = config::optional(USER_VAR).unwrap_or_else(|| default_user.to_owned());
        let password = password_from_env(&user)?;
        Ok(NatsConfig {
            url,
            request_timeout,
            credentials: Some(Credentials::new(user, password)),
        })
    }

    /// A configuration without credentials, for a NATS that does not ask for them.
    pub fn new(url: impl Into<String>) -> Self {
        NatsConfig {
            url: url.into(),
            request_timeout: Duration::from_secs(5),
            credentials: None,
        }
    }

    /// The same, connecting as `credentials`.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }
}

/// `NATS_PASSWORD`, else the contents of the file `NATS_PASSWORD_FILE` names (trimmed).
pub fn password_from_env(user: &str) -> Result<String, ConfigError> {
    if let Some(password) = config::optional(PASSWORD_VAR) {
        return Ok(password);
    }
    let Some(path) = config::optional(PASSWORD_FILE_VAR) else {
        return Err(ConfigError::Invalid {
            var: PASSWORD_VAR,
            reason: format!(
                "not set (nor {PASSWORD_FILE_VAR}): the password of NATS user {user:?} is needed"
            ),
        });
    };
    let text = std::fs::read_to_string(&path).map_err(|error| ConfigError::Invalid {
        var: PASSWORD_FILE_VAR,
        reason: format!("{path}: {error}"),
    })?;
    let password = text.trim();
    if password.is_empty() {
        return Err(ConfigError::Invalid {
            var: PASSWORD_FILE_VAR,
            reason: format!("{path} is empty"),
        });
    }
    Ok(password.to_owned())
}

impl std::fmt::Display for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        config::write_setting(f, "NATS_URL", config::mask_url(&self.url))?;
        config::write_setting(
            f,
            "NATS_REQUEST_TIMEOUT_MS",
            self.request_timeout.as_millis(),
        )?;
        match &self.credentials {
            Some(credentials) => {
                config::write_setting(f, USER_VAR, &credentials.user)?;
                config::write_setting(f, PASSWORD_VAR, config::mask(&credentials.password))
            }
            None => config::write_setting(f, USER_VAR, "(none: anonymous)"),
        }
    }
}

fn server_list(url: &str) -> Vec<String> {
    url.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The longest pause between two reconnect attempts.
///
/// async-nats' default back-off doubles up to 4 s, so after an outage of a few seconds a
/// component could sit idle for up to 4 s after NATS is back; the front desk would see 503s
/// for that long. One attempt per second per client is no load on a server (on a cluster each
/// attempt tries the next server of `NATS_URL`).
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// The pause before reconnect attempt `attempts` (counted from 1 since the last success): none
/// for the first, then 50 ms doubling up to [`MAX_RECONNECT_DELAY`].
pub fn reconnect_delay(attempts: usize) -> Duration {
    if attempts <= 1 {
        return Duration::ZERO;
    }
    let doublings = u32::try_from(attempts - 2).unwrap_or(u32::MAX).min(16);
    (Duration::from_millis(50) * 2u32.pow(doublings)).min(MAX_RECONNECT_DELAY)
}

/// Connects to NATS as the configured user, with that user's own reply-inbox prefix. With `retry_on_initial_connect` a component started before NATS waits for
/// it instead of dying; reconnects are unlimited, at most [`MAX_RECONNECT_DELAY`] apart, and a
/// ping every 10 s notices a dead link (a server that dies outright is noticed at once: its
/// socket closes).
pub async fn connect(
    config: &NatsConfig,
    client_name: &str,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    let mut options = async_nats::ConnectOptions::new();
    if let Some(credentials) = &config.credentials {
        options = options
            .user_and_password(credentials.user.clone(), credentials.password.clone())
            .custom_inbox_prefix(credentials.inbox_prefix());
    }
    let user = config
        .credentials
        .as_ref()
        .map(|c| c.user.clone())
        .unwrap_or_default();
    options
        .name(client_name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(reconnect_delay)
        .ping_interval(Duration::from_secs(10))
        .request_timeout(Some(config.request_timeout))
        .event_callback(move |event| {
            let user = user.clone();
            async move {
                match event {
                    async_nats::Event::Connected => tracing::info!(%user, "connected to NATS"),
                    async_nats::Event::Disconnected => tracing::warn!("disconnected from NATS"),
                    // Something nats.conf does not allow this user: a deployment error.
                    async_nats::Event::ServerError(error) => {
                        tracing::error!(%user, %error, "NATS refused an operation: nats.conf does not allow it to this user")
                    }
                    // A wrong user or password. The client keeps trying (the server's password
                    // may be the one to fix), saying at each attempt what to check.
                    async_nats::Event::ClientError(error)
                        if error.to_string().contains("authorization violation") =>
                    {
                        tracing::error!(%user, %error, "NATS refused the connection: check NATS_USER and NATS_PASSWORD (or NATS_PASSWORD_FILE)")
                    }
                    other => tracing::debug!(event = %other, "NATS event"),
                }
            }
        })
        .connect(server_list(&config.url))
        .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_list_splits_on_commas() {
        assert_eq!(
            super::server_list("nats://a:1, nats://b:2,"),
            vec!["nats://a:1", "nats://b:2"]
        );
    }

    #[test]
    fn the_password_is_never_printed() {
        let config = super::NatsConfig::new("nats://127.0.0.1:4222").with_credentials(
            super::Credentials::new("patient", "Secret0fThePatientService"),
        );
        let shown = format!("{config}{config:?}");
        assert!(!shown.contains("Secret0fThePatientService"), "{shown}");
        assert!(
            shown.contains("NATS_USER") && shown.contains("patient"),
            "{shown}"
        );
        assert!(shown.contains("<25 bytes, hidden>"), "{shown}");
        let credentials = config.credentials.unwrap();
        assert_eq!(credentials.inbox_prefix(), "_INBOX_patient");
    }

    #[test]
    fn reconnect_attempts_back_off_to_at_most_a_second() {
        use super::{MAX_RECONNECT_DELAY, reconnect_delay};
        use std::time::Duration;
        assert_eq!(reconnect_delay(1), Duration::ZERO);
        assert_eq!(reconnect_delay(2), Duration::from_millis(50));
        assert_eq!(reconnect_delay(3), Duration::from_millis(100));
        assert_eq!(reconnect_delay(6), Duration::from_millis(800));
        assert_eq!(reconnect_delay(7), MAX_RECONNECT_DELAY);
        assert_eq!(reconnect_delay(usize::MAX), MAX_RECONNECT_DELAY);
    }
}
