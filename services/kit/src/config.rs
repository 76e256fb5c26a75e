//! Configuration from the environment. Every binary reads its settings through these helpers, so
//! each missing or malformed setting fails fast with the variable's name.

use std::path::PathBuf;
use std::time::Duration;

/// A setting that is missing or malformed, naming the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is not set")]
    Missing { var: &'static str },
    #[error("{var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

/// Reads `.env` from the working directory (or a parent), if there is one. Variables already in
/// the environment win.
pub fn load_dotenv() {
    let _ = dotenvy::dotenv();
}

/// The variable's value, or `None` when it is unset or empty.
pub fn optional(var: &'static str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

pub fn required(var: &'static str) -> Result<String, ConfigError> {
    optional(var).ok_or(ConfigError::Missing { var })
}

/// Parses the variable with `FromStr`, or returns `default` when it is unset.
pub fn parsed_or<T>(var: &'static str, default: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match optional(var) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid {
                var,
                reason: format!("{raw:?}: {e}"),
            }),
    }
}

/// A duration given in milliseconds.
pub fn millis_or(var: &'static str, default: Duration) -> Result<Duration, ConfigError> {
    parsed_or(var, default.as_millis() as u64).map(Duration::from_millis)
}

/// The data directory (`HOSPITAL_DATA_DIR`, default `./data`), where the default SQLite files live.
pub fn data_dir() -> PathBuf {
    optional("HOSPITAL_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("data"))
}

/// The database URL of one service: `DATABASE_URL_<SERVICE>`, or a SQLite file in the data
/// directory.
pub fn database_url(var: &'static str, service: &str) -> String {
    optional(var).unwrap_or_else(|| sqlite_url_in(&data_dir(), service))
}

/// `sqlite://<dir>/<service>.db?mode=rwc` (`rwc` creates the file on first start).
pub fn sqlite_url_in(dir: &std::path::Path, service: &str) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        dir.join(format!("{service}.db")).display()
    )
}

/// Writes one line of a component's effective configuration: `  NAME   value`. Every binary
/// prints its settings this way at start.
pub fn write_setting(
    f: &mut std::fmt::Formatter<'_>,
    name: &str,
    value: impl std::fmt::Display,
) -> std::fmt::Result {
    // Wide enough for the longest name (HOSPITAL_LOGIN_MAX_FAILURES_PER_ADDRESS).
    writeln!(f, "  {name:<40} {value}")
}

/// Hides a secret for printing: its length only.
pub fn mask(secret: &str) -> String {
    format!("<{} bytes, hidden>", secret.len())
}

/// Hides the password in a URL such as `postgres://user:pw@host/db`.
pub fn mask_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_masked() {
        assert_eq!(
            mask_url("postgres://app:s3cret@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(
            mask_url("sqlite://data/patient.db?mode=rwc"),
            "sqlite://data/patient.db?mode=rwc"
        );
        assert_eq!(mask("abcd"), "<4 bytes, hidden>");
    }

    #[test]
    fn sqlite_url_names_the_service_file() {
        let url = sqlite_url_in(std::path::Path::new("/tmp/d"), "staff");
        assert_eq!(url, "sqlite:///tmp/d/staff.db?mode=rwc");
    }
}
