//! Failed-login limits: after `per_username` failed logins within `window` for one username,
//! or `per_address` from one client address, further attempts are refused with 429 and
//! `Retry-After` until the oldest of those failures leaves the window. A refused attempt never
//! reaches the staff service, so guessing stops costing us argon2 work too.
//!
//! The address limit is much higher than the username one: a whole clinic often reaches us
//! from one address (a NAT, a proxy), and a few mistyped passwords must not lock everyone out;
//! it is there to stop one machine guessing at many usernames.
//!
//! Counted per gateway instance, in memory: with several instances an attacker gets the limit
//! once per instance, which still turns millions of guesses into a handful.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Whose failures are counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Username(String),
    Address(IpAddr),
}

#[derive(Debug)]
pub struct LoginThrottle {
    per_username: usize,
    per_address: usize,
    window: Duration,
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

impl LoginThrottle {
    pub fn new(per_username: usize, per_address: usize, window: Duration) -> Self {
        LoginThrottle {
            per_username: per_username.max(1),
            per_address: per_address.max(1),
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` when this username or address must wait before trying again.
    pub fn check(&self, username: &str, address: Option<IpAddr>) -> Result<(), Duration> {
        self.check_at(username, address, Instant::now())
    }

    pub fn record_failure(&self, username: &str, address: Option<IpAddr>) {
        self.record_failure_at(username, address, Instant::now());
    }

    /// A successful login clears the username's failures (not the address's: one good
    /// account must not reset the count of guesses at others).
    pub fn record_success(&self, username: &str) {
        self.failures
            .lock()
            .expect("lock")
            .remove(&Key::Username(normalise(username)));
    }

    fn keys(username: &str, address: Option<IpAddr>) -> Vec<Key> {
        let mut keys = vec![Key::Username(normalise(username))];
        keys.extend(address.map(Key::Address));
        keys
    }

    fn limit(&self, key: &Key) -> usize {
        match key {
            Key::Username(_) => self.per_username,
            Key::Address(_) => self.per_address,
        }
    }

    fn check_at(
        &self,
        username: &str,
        address: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), Duration> {
        let failures = self.failures.lock().expect("lock");
        let wait = Self::keys(username, address)
            .iter()
            .filter_map(|key| Some((self.limit(key), failures.get(key)?)))
            .filter_map(|(limit, times)| {
                let recent: Vec<&Instant> = times
                    .iter()
                    .filter(|t| now.duration_since(**t) < self.window)
                    .collect();
                (recent.len() >= limit)
                    .then(|| self.window.saturating_sub(now.duration_since(*recent[0])))
            })
            .max();
        match wait {
            Some(wait) => Err(wait.max(Duration::from_secs(1))),
            None => Ok(()),
        }
    }

    fn record_failure_at(&self, username: &str, address: Option<IpAddr>, now: Instant) {
        let mut failures = self.failures.lock().expect("lock");
        for key in Self::keys(username, address) {
            let limit = self.limit(&key);
            let times = failures.entry(key).or_default();
            times.push_back(now);
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= self.window)
                || times.len() > limit
            {
                times.pop_front();
            }
        }
        // Forget keys whose failures have all left the window, so memory follows the attack
        // rate rather than its history.
        if failures.len() > 1024 {
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
    }
}

/// Usernames are compared as the staff service stores them: trimmed, lower case.
fn normalise(username: &str) -> String {
    username.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(15 * 60);

    fn localhost() -> Option<IpAddr> {
        Some("127.0.0.1".parse().unwrap())
    }

    #[test]
    fn the_sixth_attempt_after_five_failures_waits_for_the_window() {
        let throttle = LoginThrottle::new(5, 5, WINDOW);
        let start = Instant::now();
        for i in 0..5 {
            assert_eq!(
                throttle.check_at("ada", localhost(), start),
                Ok(()),
                "attempt {i}"
            );
            throttle.record_failure_at("ada", localhost(), start);
        }
        let later = start + Duration::from_secs(60);
        assert_eq!(
            throttle.check_at("ada", localhost(), later),
            Err(WINDOW - Duration::from_secs(60))
        );
        assert_eq!(
            throttle.check_at("ada", localhost(), start + WINDOW),
            Ok(())
        );
    }

    #[test]
    fn the_username_is_limited_from_any_address_and_the_address_for_any_username() {
        let throttle = LoginThrottle::new(2, 2, WINDOW);
        let now = Instant::now();
        throttle.record_failure_at("Ada ", Some("10.0.0.1".parse().unwrap()), now);
        throttle.record_failure_at("ada", Some("10.0.0.2".parse().unwrap()), now);
        assert!(
            throttle
                .check_at("ADA", Some("10.0.0.3".parse().unwrap()), now)
                .is_err()
        );
        assert!(
            throttle
                .check_at("bob", Some("10.0.0.3".parse().unwrap()), now)
                .is_ok()
        );

        throttle.record_failure_at("carol", localhost(), now);
        throttle.record_failure_at("dave", localhost(), now);
        assert!(throttle.check_at("erin", localhost(), now).is_err());
    }

    #[test]
    fn an_address_gets_its_own_higher_limit() {
        let throttle = LoginThrottle::new(2, 4, WINDOW);
        let now = Instant::now();
        for n in 0..3 {
            throttle.record_failure_at(&format!("user{n}"), localhost(), now);
        }
        assert!(throttle.check_at("someone", localhost(), now).is_ok());
        throttle.record_failure_at("user3", localhost(), now);
        assert!(throttle.check_at("someone", localhost(), now).is_err());
    }

    #[test]
    fn a_success_clears_the_username_but_not_the_address() {
        let throttle = LoginThrottle::new(2, 2, WINDOW);
        let now = Instant::now();
        throttle.record_failure_at("ada", localhost(), now);
        throttle.record_failure_at("ada", localhost(), now);
        throttle.record_success("ada");
        assert!(throttle.check_at("ada", None, now).is_ok());
        assert!(throttle.check_at("ada", localhost(), now).is_err());
    }

    #[test]
    fn memory_is_bounded_by_recent_failures() {
        let throttle = LoginThrottle::new(5, 50, Duration::from_secs(1));
        let start = Instant::now();
        for i in 0..2000 {
            throttle.record_failure_at(&format!("user{i}"), None, start);
        }
        throttle.record_failure_at("last", None, start + Duration::from_secs(2));
        assert!(throttle.failures.lock().unwrap().len() < 10);
    }
}
