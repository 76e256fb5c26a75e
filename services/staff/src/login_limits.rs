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
//! refused attempt costs a read, no write and no hash), then, in one write transaction on the
//! service's single writer, counts again and records the attempt as a failure before its
//! password is checked; [`FailedLogins::forgive`] deletes that row again when the password was
//! right. Because the count and the record are one transaction and SQLite has one writer,
//! concurrent attempts are serialised: at most `limit` attempts per username (and per address)
//! are ever let through per window, however many arrive at once. The one way past it: a
//! successful login forgives the username's failures, including attempts still being checked
//! at that moment, so when the rightful owner logs in during a burst, up to `limit - 1`
//! attempts that were in flight then are no longer counted (and the attacker does not choose
//! when that happens). On PostgreSQL (several instances) the same count-and-record must run
//! under a lock on the username and address (an advisory transaction lock, say) to keep this
//! bound.
//!
//! **Bounded table.** Every recorded attempt also deletes up to [`PURGE_BATCH`] rows that have
//! left the window, so the table holds about one window's failures, and a burst's leftovers are
//! drained by the attempts after it; refused attempts write nothing.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kit::config::{self, ConfigError, write_setting};
use kit::events::storage_failure;
use kit::group_commit::{Db, WriteError, Writer};
use shared_events::ServiceError;
use sqlx::SqlitePool;

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

/// The failed logins of this service's database.
#[derive(Clone)]
pub struct FailedLogins {
    /// Reads (the check before the write).
    pool: SqlitePool,
    /// The database's one group committer: recording and forgiving go through it.
    writer: Writer,
    limits: LoginLimits,
}

/// The `limit`-th most recent failure of one username still in the window: when there is one,
/// the username is at its limit until that failure leaves the window. Shared by the read
/// (sqlx) and the write (rusqlite); SQLite numbers `?N` parameters the same for both.
const NTH_RECENT_BY_USERNAME: &str = "SELECT failed_at FROM login_failures
     WHERE username = ?1 AND failed_at > ?2 ORDER BY failed_at DESC LIMIT 1 OFFSET ?3";
/// The same for one client address.
const NTH_RECENT_BY_ADDRESS: &str = "SELECT failed_at FROM login_failures
     WHERE address = ?1 AND failed_at > ?2 ORDER BY failed_at DESC LIMIT 1 OFFSET ?3";

impl FailedLogins {
    pub fn new(pool: SqlitePool, writer: Writer, limits: LoginLimits) -> Self {
        FailedLogins {
            pool,
            writer,
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
        let decided = self
            .writer
            .write(move |db| -> Result<_, WriteError> {
                purge_expired(db, key.cutoff_ms)?;
                // Counted again inside the write: another attempt may have been recorded since
                // the read, here or through another gateway.
                if let Some(wait) = key.wait_in(db)? {
                    return Ok(Err(wait));
                }
                db.prepare_cached(
                    "INSERT INTO login_failures (username, address, failed_at) VALUES (?1, ?2, ?3)",
                )?
                .execute((&key.username, &key.address, key.now_ms))?;
                Ok(Ok(Attempt {
                    id: db.last_insert_rowid(),
                    username: key.username,
                }))
            })
            .await
            .map_err(ServiceError::from)?;
        decided.map_err(too_many_failures)
    }

    /// The password of `attempt` was right: it was no failure, and the username's earlier
    /// failures are forgiven. The address keeps its count: one good account must not reset
    /// the count of guesses at others.
    pub async fn forgive(&self, attempt: Attempt) -> Result<(), ServiceError> {
        self.writer
            .write(move |db| -> Result<(), WriteError> {
                db.prepare_cached("DELETE FROM login_failures WHERE id = ?1")?
                    .execute([attempt.id])?;
                // Without a username or an address a row counts for no one.
                db.prepare_cached(
                    "DELETE FROM login_failures WHERE username = ?1 AND address IS NULL",
                )?
                .execute([&attempt.username])?;
                db.prepare_cached("UPDATE login_failures SET username = NULL WHERE username = ?1")?
                    .execute([&attempt.username])?;
                Ok(())
            })
            .await
            .map_err(ServiceError::from)
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
        sqlx::query_scalar("SELECT COUNT(*) FROM login_failures")
            .fetch_one(&self.pool)
            .await
            .map_err(storage_failure)
    }

    async fn wait_of(&self, key: &Key) -> Result<Option<Duration>, ServiceError> {
        let mut oldest_counted = Vec::with_capacity(2);
        for (sql, value, limit) in key.lookups() {
            let found: Option<i64> = sqlx::query_scalar(sql)
                .bind(value)
                .bind(key.cutoff_ms)
                .bind(i64::from(limit) - 1)
                .fetch_optional(&self.pool)
                .await
                .map_err(storage_failure)?;
            oldest_counted.extend(found);
        }
        Ok(key.wait_for(oldest_counted))
    }
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

    /// Each counted key: its query, its value and its limit.
    fn lookups(&self) -> impl Iterator<Item = (&'static str, &str, u32)> {
        let username = (
            NTH_RECENT_BY_USERNAME,
            self.username.as_str(),
            self.limits.per_username,
        );
        let address = self
            .address
            .as_deref()
            .map(|a| (NTH_RECENT_BY_ADDRESS, a, self.limits.per_address));
        std::iter::once(username).chain(address)
    }

    /// [`FailedLogins::wait_of`] inside a write transaction.
    fn wait_in(&self, db: &Db) -> rusqlite::Result<Option<Duration>> {
        let mut oldest_counted = Vec::with_capacity(2);
        for (sql, value, limit) in self.lookups() {
            let mut statement = db.prepare_cached(sql)?;
            let mut rows = statement.query((value, self.cutoff_ms, i64::from(limit) - 1))?;
            if let Some(row) = rows.next()? {
                oldest_counted.push(row.get(0)?);
            }
        }
        Ok(self.wait_for(oldest_counted))
    }

    /// The wait until every key at its limit has a failure leave the window (at least a
    /// second), given the oldest counted failure of each key at its limit.
    fn wait_for(&self, oldest_counted: Vec<i64>) -> Option<Duration> {
        let leaves_window = oldest_counted.into_iter().max()? + self.limits.window_ms();
        let wait_ms = u64::try_from(leaves_window - self.now_ms).unwrap_or(0);
        Some(Duration::from_millis(wait_ms).max(Duration::from_secs(1)))
    }
}

/// Deletes up to [`PURGE_BATCH`] failures that left the window at `cutoff_ms`, oldest first.
fn purge_expired(db: &Db, cutoff_ms: i64) -> rusqlite::Result<usize> {
    db.prepare_cached(
        "DELETE FROM login_failures WHERE id IN
           (SELECT id FROM login_failures WHERE failed_at <= ?1 ORDER BY failed_at LIMIT ?2)",
    )?
    .execute((cutoff_ms, PURGE_BATCH))
}

/// As logins are looked up: trimmed, lower case; and bounded.
fn normalise(username: &str) -> String {
    username
        .trim()
        .to_lowercase()
        .chars()
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
