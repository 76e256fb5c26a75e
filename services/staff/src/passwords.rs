//! Password hashing with argon2id. Hashing is deliberately slow, so it runs on the blocking
//! pool, never on an async worker, and at most one hash per core runs at a time: each takes
//! 19 MiB of memory and a core for tens of milliseconds, and a burst of logins hashed all at
//! once thrashes (measured: 64 concurrent logins went from 30/s to 5/s and the service to
//! 1.2 GB). Waiting for a turn keeps throughput at the machine's and memory bounded.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use shared_events::ServiceError;
use std::sync::OnceLock;
use tokio::sync::{Semaphore, SemaphorePermit};

/// A turn to hash: one per core.
async fn turn() -> SemaphorePermit<'static> {
    static TURNS: OnceLock<Semaphore> = OnceLock::new();
    let turns = TURNS.get_or_init(|| {
        return_large_allocations_at_once();
        Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    });
    turns
        .acquire()
        .await
        .expect("the semaphore is never closed")
}

/// glibc raises its mmap threshold after the first large free, so argon2's 19 MiB blocks would
/// then come from per-thread heaps and stay resident after every burst of logins (tens of MB
/// per blocking thread). Fixing the threshold makes each block a mapping of its own, returned
/// to the system when the hash is done.
fn return_large_allocations_at_once() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocation policy; called before any hashing.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}

pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Why a password is not acceptable, or `None`.
pub fn weakness(password: &str) -> Option<String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        Some(format!("must be at least {MIN_PASSWORD_CHARS} characters"))
    } else if chars > MAX_PASSWORD_CHARS {
        Some(format!("must be at most {MAX_PASSWORD_CHARS} characters"))
    } else {
        None
    }
}

/// An argon2id PHC string (`$argon2id$v=19$...`) with a fresh salt.
pub async fn hash(password: String) -> Result<String, ServiceError> {
    let _turn = turn().await;
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
    })
    .await
    .map_err(kit::events::storage_failure)?
    .map_err(kit::events::storage_failure)
}

/// Whether `password` matches `stored`. With no stored hash (unknown user) the password is
/// checked against a dummy hash anyway, so an unknown user costs the same time as a wrong password.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    let _turn = turn().await;
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| dummy_hash().to_owned());
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok();
        known && matches
    })
    .await
    .unwrap_or(false)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        Argon2::default()
            .hash_password(generate_password().as_bytes())
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// A random 20-character password from an alphabet without look-alikes (no 0/O, 1/l/I).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).expect("the OS random source");
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_only_its_own_password() {
        let stored = hash("correct horse battery".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("correct horse battery".into(), Some(stored.clone())).await);
        assert!(!verify("wrong horse battery".into(), Some(stored)).await);
        assert!(!verify("correct horse battery".into(), None).await);
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(weakness("short").is_some());
        assert!(weakness("twelve chars").is_none());
        assert_eq!(generate_password().len(), 20);
    }
}
