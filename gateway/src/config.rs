//! The gateway's settings, from the environment (and `.env`). Each bad setting fails start-up
//! with the variable's name; `Display` prints them all with the secret masked.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use kit::config::{self, ConfigError};
use kit::nats::NatsConfig;

const HTTP_ADDR_VAR: &str = "HOSPITAL_HTTP_ADDR";
const SECRET_VAR: &str = "JWT_SECRET_KEY";
const TTL_VAR: &str = "JWT_TTL_MINUTES";
const FRONTEND_VAR: &str = "HOSPITAL_FRONTEND_DIR";
const LOGIN_FAILURES_VAR: &str = "HOSPITAL_LOGIN_MAX_FAILURES";
const LOGIN_WINDOW_VAR: &str = "HOSPITAL_LOGIN_WINDOW_MINUTES";
const AUDIT_RETENTION_VAR: &str = "HOSPITAL_AUDIT_RETENTION_DAYS";

/// HS256 needs a key at least as long as its hash.
pub const MIN_SECRET_BYTES: usize = 32;
/// Default listen address: the original system's port, on loopback.
pub const DEFAULT_HTTP_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 5000);
pub const DEFAULT_TTL_MINUTES: u64 = 15;
/// Longest token lifetime we accept: a working day.
pub const MAX_TTL_MINUTES: u64 = 24 * 60;
pub const DEFAULT_LOGIN_MAX_FAILURES: usize = 5;
pub const DEFAULT_LOGIN_WINDOW_MINUTES: u64 = 15;

/// Everything the gateway needs to start.
#[derive(Clone)]
pub struct Config {
    pub nats: NatsConfig,
    /// `HOSPITAL_HTTP_ADDR`; port 0 picks a free port (tests).
    pub http_addr: SocketAddr,
    /// `JWT_SECRET_KEY`, at least 32 bytes.
    pub jwt_secret: String,
    /// `JWT_TTL_MINUTES`: how long an access token is valid.
    pub token_ttl: Duration,
    /// `HOSPITAL_FRONTEND_DIR`: the static files served at `/`.
    pub frontend_dir: PathBuf,
    /// `HOSPITAL_LOGIN_MAX_FAILURES` failed logins within `HOSPITAL_LOGIN_WINDOW_MINUTES`, per
    /// username or client address, and the next attempt waits (429).
    pub login_max_failures: usize,
    pub login_window: Duration,
    /// `HOSPITAL_AUDIT_RETENTION_DAYS`: how long audit entries are kept; zero (the default)
    /// keeps them for ever. Only applies when the gateway creates the audit stream.
    pub audit_retention: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let nats = NatsConfig::from_env(kit::nats_users::GATEWAY)?;
        let http_addr = config::parsed_or(HTTP_ADDR_VAR, DEFAULT_HTTP_ADDR)?;
        let jwt_secret = check_secret(config::required(SECRET_VAR)?)?;
        let token_ttl = ttl_from_minutes(config::parsed_or(TTL_VAR, DEFAULT_TTL_MINUTES)?)?;
        let frontend_dir = match config::optional(FRONTEND_VAR) {
            Some(dir) => check_frontend_dir(PathBuf::from(dir))?,
            None => default_frontend_dir(),
        };
        let login_max_failures = config::parsed_or(LOGIN_FAILURES_VAR, DEFAULT_LOGIN_MAX_FAILURES)?;
        if login_max_failures == 0 {
            return Err(ConfigError::Invalid {
                var: LOGIN_FAILURES_VAR,
                reason: "must be at least 1".into(),
            });
        }
        let window_minutes = config::parsed_or(LOGIN_WINDOW_VAR, DEFAULT_LOGIN_WINDOW_MINUTES)?;
        if !(1..=24 * 60).contains(&window_minutes) {
            return Err(ConfigError::Invalid {
                var: LOGIN_WINDOW_VAR,
                reason: format!("{window_minutes} is not between 1 and 1440 minutes"),
            });
        }
        let retention_days: u64 = config::parsed_or(AUDIT_RETENTION_VAR, 0)?;
        Ok(Config {
            nats,
            http_addr,
            jwt_secret,
            token_ttl,
            frontend_dir,
            login_max_failures,
            login_window: Duration::from_secs(window_minutes * 60),
            audit_retention: Duration::from_secs(retention_days.saturating_mul(24 * 3600)),
        })
    }
}

fn check_secret(secret: String) -> Result<String, ConfigError> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(ConfigError::Invalid {
            var: SECRET_VAR,
            reason: format!(
                "it is {} bytes long; use at least {MIN_SECRET_BYTES} random bytes",
                secret.len()
            ),
        });
    }
    Ok(secret)
}

fn ttl_from_minutes(minutes: u64) -> Result<Duration, ConfigError> {
    if !(1..=MAX_TTL_MINUTES).contains(&minutes) {
        return Err(ConfigError::Invalid {
            var: TTL_VAR,
            reason: format!("{minutes} is not between 1 and {MAX_TTL_MINUTES} minutes"),
        });
    }
    Ok(Duration::from_secs(minutes * 60))
}

fn check_frontend_dir(dir: PathBuf) -> Result<PathBuf, ConfigError> {
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(ConfigError::Invalid {
            var: FRONTEND_VAR,
            reason: format!("{} is not a directory", dir.display()),
        })
    }
}

/// The repository's `frontend/` when running from a checkout, else `./frontend`.
fn default_frontend_dir() -> PathBuf {
    let in_repository = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../frontend"));
    if in_repository.is_dir() {
        // Tidier in the start-up report than `gateway/../frontend`.
        in_repository
            .canonicalize()
            .unwrap_or_else(|_| in_repository.to_path_buf())
    } else {
        PathBuf::from("frontend")
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        config::write_setting(f, HTTP_ADDR_VAR, self.http_addr)?;
        write!(f, "{}", self.nats)?;
        config::write_setting(f, SECRET_VAR, config::mask(&self.jwt_secret))?;
        config::write_setting(f, TTL_VAR, self.token_ttl.as_secs() / 60)?;
        config::write_setting(f, FRONTEND_VAR, self.frontend_dir.display())?;
        config::write_setting(f, LOGIN_FAILURES_VAR, self.login_max_failures)?;
        config::write_setting(f, LOGIN_WINDOW_VAR, self.login_window.as_secs() / 60)?;
        config::write_setting(
            f,
            AUDIT_RETENTION_VAR,
            self.audit_retention.as_secs() / (24 * 3600),
        )
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("nats_url", &config::mask_url(&self.nats.url))
            .field("nats_request_timeout", &self.nats.request_timeout)
            .field("nats_credentials", &self.nats.credentials)
            .field("http_addr", &self.http_addr)
            .field("jwt_secret", &config::mask(&self.jwt_secret))
            .field("token_ttl", &self.token_ttl)
            .field("frontend_dir", &self.frontend_dir)
            .field("login_max_failures", &self.login_max_failures)
            .field("login_window", &self.login_window)
            .field("audit_retention", &self.audit_retention)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Config {
        Config {
            nats: NatsConfig::new("nats://app:pw@127.0.0.1:4222").with_credentials(
                kit::nats::Credentials::new("gateway", "nats-password-of-the-gateway"),
            ),
            http_addr: DEFAULT_HTTP_ADDR,
            jwt_secret: "s".repeat(40),
            token_ttl: Duration::from_secs(15 * 60),
            frontend_dir: PathBuf::from("frontend"),
            login_max_failures: DEFAULT_LOGIN_MAX_FAILURES,
            login_window: Duration::from_secs(15 * 60),
            audit_retention: Duration::ZERO,
        }
    }

    #[test]
    fn a_short_secret_is_refused_naming_the_variable() {
        let error = check_secret("short".into()).unwrap_err();
        assert!(
            error.to_string().starts_with("JWT_SECRET_KEY is invalid"),
            "{error}"
        );
        assert!(check_secret("x".repeat(MIN_SECRET_BYTES)).is_ok());
    }

    #[test]
    fn the_token_lifetime_must_be_sensible() {
        assert_eq!(ttl_from_minutes(15).unwrap(), Duration::from_secs(900));
        for bad in [0, MAX_TTL_MINUTES + 1] {
            let error = ttl_from_minutes(bad).unwrap_err();
            assert!(error.to_string().starts_with("JWT_TTL_MINUTES"), "{error}");
        }
    }

    #[test]
    fn a_missing_frontend_dir_is_refused_naming_the_variable() {
        let error = check_frontend_dir(PathBuf::from("/no/such/dir")).unwrap_err();
        assert!(
            error.to_string().starts_with("HOSPITAL_FRONTEND_DIR"),
            "{error}"
        );
    }

    #[test]
    fn printing_shows_every_setting_and_hides_secrets() {
        let shown = example().to_string();
        for name in [
            "HOSPITAL_HTTP_ADDR",
            "NATS_URL",
            "NATS_REQUEST_TIMEOUT_MS",
            "NATS_USER",
            "NATS_PASSWORD",
            "JWT_SECRET_KEY",
            "JWT_TTL_MINUTES",
            "HOSPITAL_FRONTEND_DIR",
            "HOSPITAL_LOGIN_MAX_FAILURES",
            "HOSPITAL_LOGIN_WINDOW_MINUTES",
            "HOSPITAL_AUDIT_RETENTION_DAYS",
        ] {
            assert!(shown.contains(name), "{name} missing from:\n{shown}");
        }
        assert!(!shown.contains(&"s".repeat(40)));
        assert!(!shown.contains(":pw@"));
        assert!(!shown.contains("nats-password-of-the-gateway"));
        let debug = format!("{:?}", example());
        assert!(!debug.contains(&"s".repeat(40)));
        assert!(!debug.contains("nats-password-of-the-gateway"), "{debug}");
    }
}
