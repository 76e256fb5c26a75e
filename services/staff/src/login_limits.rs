//! Failed-login limits: after `HOSPITAL_LOGIN_MAX_FAILURES` failed logins within
//! `HOSPITAL_LOGIN_WINDOW_MINUTES` for one username, or `HOSPITAL_LOGIN_MAX_FAILURES_PER_ADDRESS`
//! from one client address, further attempts are refused (429 at the gateway, with
//! `Retry-After`) until the oldest of those failures leaves the window. A refused attempt never
//! reaches argon2, so guessing stops costing us hashing work too.
//!
//! The address limit is much higher than the username one: a whole clinic often reaches us
//! from one address (a NAT, a proxy), and a few mistyped passwords must not lock everyone out;
//! it is there to stop one machine guessing at many usernames.
//!
//! The failures live in this service's database (table `login_failures`), not in a gateway:
//! every gateway instance asks the same staff service, so the limit is the system's, not one
//! per gateway (DESIGN.md, "Scaling past one machine").
//!
//! **Check, then count, then verify.** [`FailedLogins::admit`] first reads the counts (a
//! refused attempt costs a read, no write and no hash), then, in one write transaction, counts
//! again and records the attempt as a failure before its password is checked;
//! [`FailedLogins::forgive`] deletes that row again when the password was right. The count and
//! the record are one transaction under a lock, so concurrent attempts for one username (or one
//! address) are serialised: on SQLite the service's single writer, on PostgreSQL (several
//! instances sharing the table) transaction-scoped advisory locks on the username and on the
//! address, taken in that order. So at most `limit` attempts per username (and per address) are
//! ever let through per window, however many arrive at once, through however many instances.
//! The one way past it: a successful login forgives the username's failures, including attempts
//! still being checked at that moment, so when the rightful owner logs in during a burst, up to
//! `limit - 1` attempts that were in flight then are no longer counted (and the attacker does
//! not choose when that happens).
//!
//! Each backend's statements are in its submodule, `sqlite` and `postgres`; the limits, the keys
//! and the waits are shared.
//!
//! **Bounded table.** Every recorded attempt also deletes up to [`PURGE_BATCH`] rows that have
//! left the window, so the table holds about one window's failures, and a burst's leftovers are
//! drained by the attempts after it; refused attempts write nothing.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kit::config::{self, ConfigError, write_setting};
use kit::database::Database;
use shared_events::ServiceError;

mod postgres;
mod sqlite;

pub const MAX_FAILURES_VAR: &str = "HOSPITAL_LOGIN_MAX_FAILURES";
pub const MAX_FAILURES_PER_ADDRESS_VAR: &str = "HOSPITAL_LOGIN_MAX_FAILURES_PER_ADDRESS";
pub const WINDOW_VAR: &str = "HOSPITAL_LOGIN_WINDOW_MINUTES";

pub const DEFAULT_MAX_FAILURES: u32 = 5;
pub const DEFAULT_MAX_FAILURES_PER_ADDRESS: u32 = 50;
pub const DEFAULT_WINDOW_MINUTES: u64 = 15;
/// Longest window we accept: a day.
pub const MAX_WINDOW_MINUTES: u64 = 24 * 60;

/// Expired rows deleted by each recorded attempt: more than the one row it adds, so a backlog
/// shrinks, and few enough that recording stays a small, bounded write.
pub const PURGE_BATCH: i64 = 32;

/// Usernames are counted as logins are looked up (trimmed, lower case), and cut to this many
/// characters: a real username has at most 64, and a megabyte-long guess must not be stored
/// as such.
const MAX_USERNAME_CHARS: usize = 128;

/// The limits, from the staff service's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// `HOSPITAL_LOGIN_MAX_FAILURES`: failed logins per username within the window.
    pub per_username: u32,
    /// `HOSPITAL_LOGIN_MAX_FAILURES_PER_ADDRESS`: failed logins per client address.
    pub per_address: u32,
    /// `HOSPITAL_LOGIN_WINDOW_MINUTES`: how long a failure counts.
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_username: DEFAULT_MAX_FAILURES,
            per_address: DEFAULT_MAX_FAILURES_PER_ADDRESS,
            window: Duration::from_secs(DEFAULT_WINDOW_MINUTES * 60),
        }
    }
}

impl LoginLimits {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::checked(
            config::parsed_or(MAX_FAILURES_VAR, DEFAULT_MAX_FAILURES)?,
            config::parsed_or(
                MAX_FAILURES_PER_ADDRESS_VAR,
                DEFAULT_MAX_FAILURES_PER_ADDRESS,
            )?,
            config::parsed_or(WINDOW_VAR, DEFAULT_WINDOW_MINUTES)?,
        )
    }

    /// The limits, each refused naming its variable when it makes no sense.
    pub fn checked(
        per_username: u32,
        per_address: u32,
        window_minutes: u64,
    ) -> Result<Self, ConfigError> {
        for (var, limit) in [
            (MAX_FAILURES_VAR, per_username),
            (MAX_FAILURES_PER_ADDRESS_VAR, per_address),
        ] {
            if limit == 0 {
                return Err(ConfigError::Invalid {
                    var,
                    reason: "must be at least 1".into(),
                });
            }
        }
        if !(1..=MAX_WINDOW_MINUTES).contains(&window_minutes) {
            return Err(ConfigError::Invalid {
                var: WINDOW_VAR,
                reason: format!(
                    "{window_minutes} is not between 1 and {MAX_WINDOW_MINUTES} minutes"
                ),
            });
        }
        Ok(LoginLimits {
            per_username,
            per_address,
            window: Duration::from_secs(window_minutes * 60),
        })
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX)
    }
}

impl fmt::Display for LoginLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_setting(f, MAX_FAILURES_VAR, self.per_username)?;
        write_setting(f, MAX_FAILURES_PER_ADDRESS_VAR, self.per_address)?;
        write_setting(f, WINDOW_VAR, self.window.as_secs() / 60)
    }
}

/// An attempt let through by [`FailedLogins::admit`]: counted as a failure until
/// [`FailedLogins::forgive`] says its password was right.
#[derive(Debug)]
#[must_use = "a successful login must be forgiven, or it counts as a failure"]
pub struct Attempt {
    id: i64,
    username: String,
}

/// The failed logins of this service's database, on either backend. Cheap to clone.
#[derive(Clone)]
pub struct FailedLogins {
    /// On SQLite, reads use its pool and recording and forgiving go through its one group
    /// committer; on PostgreSQL, each write is its own transaction.
    database: Database,
    limits: LoginLimits,
}

impl FailedLogins {
    pub fn new(database: &Database, limits: LoginLimits) -> Self {
        FailedLogins {
            database: database.clone(),
            limits,
        }
    }

    pub fn limits(&self) -> LoginLimits {
        self.limits
    }

    /// Lets a login attempt through, recorded as a failure until [`Self::forgive`], or refuses
    /// it with [`ErrorCode::TooManyRequests`](shared_events::ErrorCode::TooManyRequests) and
    /// how long to wait. `username` as the client typed it.
    pub async fn admit(
        &self,
        username: &str,
        address: Option<IpAddr>,
    ) -> Result<Attempt, ServiceError> {
        self.admit_at(username, address, Utc::now()).await
    }

    /// [`Self::admit`] as at `now`.
    pub async fn admit_at(
        &self,
        username: &str,
        address: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> Result<Attempt, ServiceError> {
        let key = Key::new(username, address, now, self.limits);
        // Refused on a read: an attempt over the limit writes nothing.
        if let Some(wait) = self.wait_of(&key).await? {
            return Err(too_many_failures(wait));
        }
        // Counted again inside the write: another attempt may have been recorded since the
        // read, here or through another gateway (or, on PostgreSQL, another instance).
        let decided = match &self.database {
            Database::Sqlite { writer, .. } => sqlite::record(writer, key).await?,
            Database::Postgres(pool) => postgres::record(pool, key).await?,
        };
        decided.map_err(too_many_failures)
    }

    /// The password of `attempt` was right: it was no failure, and the username's earlier
    /// failures are forgiven. The address keeps its count: one good account must not reset
    /// the count of guesses at others.
    pub async fn forgive(&self, attempt: Attempt) -> Result<(), ServiceError> {
        match &self.database {
            Database::Sqlite { writer, .. } => sqlite::forgive(writer, attempt).await,
            Database::Postgres(pool) => postgres::forgive(pool, attempt).await,
        }
    }

    /// How long `username` or `address` must wait before an attempt is let through, as at
    /// `now`; `None` when one would be.
    pub async fn wait_at(
        &self,
        username: &str,
        address: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> Result<Option<Duration>, ServiceError> {
        self.wait_of(&Key::new(username, address, now, self.limits))
            .await
    }

    /// How many rows the table holds (expired ones included): for tests and diagnostics.
    pub async fn rows(&self) -> Result<i64, ServiceError> {
        match &self.database {
            Database::Sqlite { pool, .. } => sqlite::rows(pool).await,
            Database::Postgres(pool) => postgres::rows(pool).await,
        }
    }

    async fn wait_of(&self, key: &Key) -> Result<Option<Duration>, ServiceError> {
        match &self.database {
            Database::Sqlite { pool, .. } => sqlite::wait_of(pool, key).await,
            Database::Postgres(pool) => postgres::wait_of(pool, key).await,
        }
    }
}

/// A backend's two queries for the `limit`-th most recent failure of one username (or one
/// address) still in the window: when there is one, the key is at its limit until that failure
/// leaves the window. Parameters: the value, the cutoff in milliseconds, `limit - 1`.
struct NthRecent {
    by_username: &'static str,
    by_address: &'static str,
}

/// One attempt's keys and times.
struct Key {
    username: String,
    address: Option<String>,
    limits: LoginLimits,
    now_ms: i64,
    /// Failures at or before this no longer count.
    cutoff_ms: i64,
}

impl Key {
    fn new(
        username: &str,
        address: Option<IpAddr>,
        now: DateTime<Utc>,
        limits: LoginLimits,
    ) -> Self {
        let now_ms = now.timestamp_millis();
        Key {
            username: normalise(username),
            address: address.map(|a| a.to_string()),
            limits,
            now_ms,
            cutoff_ms: now_ms.saturating_sub(limits.window_ms()),
        }
    }

    /// Each counted key: its query (of `queries`), its value and its limit.
    fn lookups(&self, queries: &NthRecent) -> impl Iterator<Item = (&'static str, &str, u32)> {
        let username = (
            queries.by_username,
            self.username.as_str(),
            self.limits.per_username,
        );
        let address = self
            .address
            .as_deref()
            .map(|a| (queries.by_address, a, self.limits.per_address));
        std::iter::once(username).chain(address)
    }

    /// The wait until every key at its limit has a failure leave the window (at least a
    /// second), given the oldest counted failure of each key at its limit.
    fn wait_for(&self, oldest_counted: Vec<i64>) -> Option<Duration> {
        let leaves_window = oldest_counted.into_iter().max()? + self.limits.window_ms();
        let wait_ms = u64::try_from(leaves_window - self.now_ms).unwrap_or(0);
        Some(Duration::from_millis(wait_ms).max(Duration::from_secs(1)))
    }
}

/// As logins are looked up: trimmed, lower case; and bounded. A NUL (which PostgreSQL text
/// cannot hold, and no username has) is counted as U+FFFD, so both backends count the same key.
fn normalise(username: &str) -> String {
    username
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| {
            if c == '\0' {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            }
        })
        .take(MAX_USERNAME_CHARS)
        .collect()
}

fn too_many_failures(wait: Duration) -> ServiceError {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    ServiceError::too_many_requests(
        format!("too many failed logins; try again in {minutes} {unit}"),
        wait,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_that_make_no_sense_are_refused_naming_the_variable() {
        assert_eq!(
            LoginLimits::checked(5, 50, 15).unwrap(),
            LoginLimits::default()
        );
        for (per_username, per_address, window, var) in [
            (0, 50, 15, MAX_FAILURES_VAR),
            (5, 0, 15, MAX_FAILURES_PER_ADDRESS_VAR),
            (5, 50, 0, WINDOW_VAR),
            (5, 50, MAX_WINDOW_MINUTES + 1, WINDOW_VAR),
        ] {
            let error = LoginLimits::checked(per_username, per_address, window)
                .unwrap_err()
                .to_string();
            assert!(error.starts_with(&format!("{var} is invalid")), "{error}");
        }
    }

    #[test]
    fn the_limits_are_printed_with_their_variables() {
        let shown = LoginLimits::default().to_string();
        for (var, value) in [
            (MAX_FAILURES_VAR, "5"),
            (MAX_FAILURES_PER_ADDRESS_VAR, "50"),
            (WINDOW_VAR, "15"),
        ] {
            assert!(
                shown
                    .lines()
                    .any(|line| line.trim_start().starts_with(&format!("{var} "))
                        && line.ends_with(&format!(" {value}"))),
                "{var} {value} missing from:\n{shown}"
            );
        }
    }

    #[test]
    fn usernames_are_counted_as_logins_are_looked_up_and_bounded() {
        assert_eq!(normalise("  Ada.Lovelace "), "ada.lovelace");
        assert_eq!(normalise(&"x".repeat(10_000)).len(), MAX_USERNAME_CHARS);
        assert_eq!(normalise("Ada\0"), "ada\u{FFFD}");
    }

    #[test]
    fn the_refusal_says_how_many_minutes_to_wait() {
        let one = too_many_failures(Duration::from_secs(30));
        assert_eq!(one.message, "too many failed logins; try again in 1 minute");
        assert_eq!(one.retry_after_secs, Some(30));
        let many = too_many_failures(Duration::from_secs(14 * 60 + 1));
        assert_eq!(
            many.message,
            "too many failed logins; try again in 15 minutes"
        );
    }
}
