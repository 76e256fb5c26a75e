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
const AUDIT_RETENTION_VAR: &str = "HOSPITAL_AUDIT_RETENTION_DAYS";

/// HS256 needs a key at least as long as its hash.
pub const MIN_SECRET_BYTES: usize = 32;
/// Default listen address: the original system's port, on loopback.
pub const DEFAULT_HTTP_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 5000);
pub const DEFAULT_TTL_MINUTES: u64 = 15;
/// Longest token lifetime we accept: a working day.
pub const MAX_TTL_MINUTES: u64 = 24 * 60;

/// Everything the gateway needs to start.
#[derive(Clone)]
pub struct Config {
    pub nats: NatsConfig,
    /// `HOSPITAL_STREAM_REPLICAS`: how many NATS servers keep `HOSPITAL_AUDIT` and the
    /// revoked-tokens bucket, the same count the services give `HOSPITAL_EVENTS` (1 on a single
    /// server, 3 on a cluster). Only applies when the gateway creates them.
    pub stream_replicas: usize,
    /// `HOSPITAL_HTTP_ADDR`; port 0 picks a free port (tests).
    pub http_addr: SocketAddr,
    /// `JWT_SECRET_KEY`, at least 32 bytes.
    pub jwt_secret: String,
    /// `JWT_TTL_MINUTES`: how long an access token is valid.
    pub token_ttl: Duration,
    /// `HOSPITAL_FRONTEND_DIR`: the static files served at `/`.
    pub frontend_dir: PathBuf,
    /// `HOSPITAL_AUDIT_RETENTION_DAYS`: how long audit entries are kept; zero (the default)
    /// keeps them for ever. Only applies when the gateway creates the audit stream.
    pub audit_retention: Duration,
    /// CORS allowlist and time limits of HTTP requests (see [`HttpSettings`]).
    pub http: HttpSettings,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let nats = NatsConfig::from_env(kit::nats_users::GATEWAY)?;
        let stream_replicas = kit::event_stream::replicas_from_env()?;
        let http_addr = config::parsed_or(HTTP_ADDR_VAR, DEFAULT_HTTP_ADDR)?;
        let jwt_secret = check_secret(config::required(SECRET_VAR)?)?;
        let token_ttl = ttl_from_minutes(config::parsed_or(TTL_VAR, DEFAULT_TTL_MINUTES)?)?;
        let frontend_dir = match config::optional(FRONTEND_VAR) {
            Some(dir) => check_frontend_dir(PathBuf::from(dir))?,
            None => default_frontend_dir(),
        };
        let retention_days: u64 = config::parsed_or(AUDIT_RETENTION_VAR, 0)?;
        Ok(Config {
            nats,
            stream_replicas,
            http_addr,
            jwt_secret,
            token_ttl,
            frontend_dir,
            audit_retention: Duration::from_secs(retention_days.saturating_mul(24 * 3600)),
            http: HttpSettings::from_env()?,
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
        config::write_setting(f, kit::event_stream::REPLICAS_VAR, self.stream_replicas)?;
        config::write_setting(f, SECRET_VAR, config::mask(&self.jwt_secret))?;
        config::write_setting(f, TTL_VAR, self.token_ttl.as_secs() / 60)?;
        config::write_setting(f, FRONTEND_VAR, self.frontend_dir.display())?;
        config::write_setting(
            f,
            AUDIT_RETENTION_VAR,
            self.audit_retention.as_secs() / (24 * 3600),
        )?;
        write!(f, "{}", self.http)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("nats_url", &config::mask_url(&self.nats.url))
            .field("nats_request_timeout", &self.nats.request_timeout)
            .field("nats_credentials", &self.nats.credentials)
            .field("stream_replicas", &self.stream_replicas)
            .field("http_addr", &self.http_addr)
            .field("jwt_secret", &config::mask(&self.jwt_secret))
            .field("token_ttl", &self.token_ttl)
            .field("frontend_dir", &self.frontend_dir)
            .field("audit_retention", &self.audit_retention)
            .field("http", &self.http)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP hardening (issue #5): who may call from another origin, and how long a request may take.
// Kept together here so the rest of `Config` can grow without touching it.

const CORS_ORIGINS_VAR: &str = "HOSPITAL_CORS_ORIGINS";
const REQUEST_TIMEOUT_VAR: &str = "HOSPITAL_HTTP_REQUEST_TIMEOUT_SECS";
const BODY_TIMEOUT_VAR: &str = "HOSPITAL_HTTP_BODY_TIMEOUT_SECS";

pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest request time limit we accept: anything longer is no limit at all.
pub const MAX_REQUEST_TIMEOUT_SECS: u64 = 3600;

/// The HTTP limits and the CORS allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// `HOSPITAL_CORS_ORIGINS`: the exact origins (`https://host[:port]`) a browser may call the
    /// API from besides the gateway's own; empty (the default) means CORS is off.
    pub cors_origins: Vec<String>,
    /// `HOSPITAL_HTTP_REQUEST_TIMEOUT_SECS`: a request still unanswered after this is 503
    /// (the live feed excepted).
    pub request_timeout: Duration,
    /// `HOSPITAL_HTTP_BODY_TIMEOUT_SECS`: a request body not received within this is 408.
    /// Shorter than the request limit, or the 408 could never be seen.
    pub body_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            cors_origins: Vec::new(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

impl HttpSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let cors_origins = match config::optional(CORS_ORIGINS_VAR) {
            Some(raw) => parse_origins(&raw)?,
            None => Vec::new(),
        };
        let request_secs =
            config::parsed_or(REQUEST_TIMEOUT_VAR, DEFAULT_REQUEST_TIMEOUT.as_secs())?;
        let body_secs = config::parsed_or(BODY_TIMEOUT_VAR, DEFAULT_BODY_TIMEOUT.as_secs())?;
        let (request_timeout, body_timeout) = check_timeouts(request_secs, body_secs)?;
        Ok(HttpSettings {
            cors_origins,
            request_timeout,
            body_timeout,
        })
    }
}

fn check_timeouts(request_secs: u64, body_secs: u64) -> Result<(Duration, Duration), ConfigError> {
    if !(1..=MAX_REQUEST_TIMEOUT_SECS).contains(&request_secs) {
        return Err(ConfigError::Invalid {
            var: REQUEST_TIMEOUT_VAR,
            reason: format!(
                "{request_secs} is not between 1 and {MAX_REQUEST_TIMEOUT_SECS} seconds"
            ),
        });
    }
    if body_secs == 0 || body_secs >= request_secs {
        return Err(ConfigError::Invalid {
            var: BODY_TIMEOUT_VAR,
            reason: format!(
                "{body_secs} must be at least 1 and shorter than {REQUEST_TIMEOUT_VAR} ({request_secs})"
            ),
        });
    }
    Ok((
        Duration::from_secs(request_secs),
        Duration::from_secs(body_secs),
    ))
}

/// A comma-separated list of exact origins, as browsers send them in `Origin`: `http` or
/// `https`, a host, an optional port, nothing else. No wildcard: an allowlist that allows
/// everyone is not an allowlist. Default ports are dropped and case folded, since a browser
/// never sends them otherwise.
pub fn parse_origins(raw: &str) -> Result<Vec<String>, ConfigError> {
    let mut origins = Vec::new();
    for item in raw
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let origin = parse_origin(item).map_err(|reason| ConfigError::Invalid {
            var: CORS_ORIGINS_VAR,
            reason: format!("{item:?} {reason}"),
        })?;
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    Ok(origins)
}

fn parse_origin(item: &str) -> Result<String, &'static str> {
    let lower = item.to_ascii_lowercase();
    let (scheme, rest) = lower
        .split_once("://")
        .ok_or("is not an origin such as https://clinic.example.org")?;
    let default_port: u16 = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return Err("must start with http:// or https://"),
    };
    if rest.contains(['/', '?', '#', '@', '*']) {
        return Err("must be scheme://host[:port] only (no path, no wildcard, no user)");
    }
    let (host, port) = match rest.rsplit_once(':') {
        // An IPv6 literal has colons of its own: only a colon after `]` starts the port.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[') && host.ends_with(']')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
    if !host_ok {
        return Err("has no valid host");
    }
    let port = match port {
        None => return Ok(format!("{scheme}://{host}")),
        Some(port) if port.bytes().all(|b| b.is_ascii_digit()) => port.parse::<u16>().ok(),
        Some(_) => None,
    };
    match port {
        Some(0) | None => Err("has a port that is not a number from 1 to 65535"),
        Some(port) if port == default_port => Ok(format!("{scheme}://{host}")),
        Some(port) => Ok(format!("{scheme}://{host}:{port}")),
    }
}

impl fmt::Display for HttpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.cors_origins.is_empty() {
            config::write_setting(f, CORS_ORIGINS_VAR, "(none: CORS off, same origin only)")?;
        } else {
            config::write_setting(f, CORS_ORIGINS_VAR, self.cors_origins.join(","))?;
        }
        config::write_setting(f, REQUEST_TIMEOUT_VAR, self.request_timeout.as_secs())?;
        config::write_setting(f, BODY_TIMEOUT_VAR, self.body_timeout.as_secs())
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
            stream_replicas: 3,
            http_addr: DEFAULT_HTTP_ADDR,
            jwt_secret: "s".repeat(40),
            token_ttl: Duration::from_secs(15 * 60),
            frontend_dir: PathBuf::from("frontend"),
            audit_retention: Duration::ZERO,
            http: HttpSettings::default(),
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
            "HOSPITAL_STREAM_REPLICAS",
            "JWT_SECRET_KEY",
            "JWT_TTL_MINUTES",
            "HOSPITAL_FRONTEND_DIR",
            "HOSPITAL_AUDIT_RETENTION_DAYS",
            "HOSPITAL_CORS_ORIGINS",
            "HOSPITAL_HTTP_REQUEST_TIMEOUT_SECS",
            "HOSPITAL_HTTP_BODY_TIMEOUT_SECS",
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

    #[test]
    fn printing_shows_the_stream_replicas() {
        let shown = example().to_string();
        assert!(
            shown.lines().any(|line| line
                .split_whitespace()
                .eq(["HOSPITAL_STREAM_REPLICAS", "3"])),
            "{shown}"
        );
    }

    #[test]
    fn cors_origins_are_exact_origins() {
        assert_eq!(parse_origins("").unwrap(), Vec::<String>::new());
        assert_eq!(
            parse_origins(" https://Clinic.example.org , http://localhost:8080,https://clinic.example.org:443,http://[::1]:3000")
                .unwrap(),
            vec![
                "https://clinic.example.org",
                "http://localhost:8080",
                "http://[::1]:3000"
            ]
        );
        for bad in [
            "*",
            "clinic.example.org",
            "ftp://clinic.example.org",
            "https://clinic.example.org/",
            "https://clinic.example.org/app",
            "https://*.example.org",
            "https://user@clinic.example.org",
            "https://:8080",
            "https://clinic.example.org:http",
            "https://clinic.example.org:70000",
            "null",
        ] {
            let error = parse_origins(bad).unwrap_err().to_string();
            assert!(
                error.starts_with("HOSPITAL_CORS_ORIGINS is invalid"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn the_time_limits_must_be_sensible() {
        assert_eq!(
            check_timeouts(30, 10).unwrap(),
            (Duration::from_secs(30), Duration::from_secs(10))
        );
        let error = check_timeouts(0, 10).unwrap_err().to_string();
        assert!(
            error.starts_with("HOSPITAL_HTTP_REQUEST_TIMEOUT_SECS"),
            "{error}"
        );
        for (request, body) in [(30, 0), (30, 30), (5, 10)] {
            let error = check_timeouts(request, body).unwrap_err().to_string();
            assert!(
                error.starts_with("HOSPITAL_HTTP_BODY_TIMEOUT_SECS"),
                "{error}"
            );
        }
    }

    #[test]
    fn printing_says_when_cors_is_off_and_lists_the_origins_when_on() {
        assert!(example().to_string().contains("CORS off"));
        let mut config = example();
        config.http.cors_origins = vec!["https://a.example".into(), "https://b.example".into()];
        assert!(
            config
                .to_string()
                .contains("https://a.example,https://b.example")
        );
    }
}
