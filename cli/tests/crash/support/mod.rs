//! What the crash tests share: the system as processes ([`system`]), the writing clients
//! ([`load`]), the checks of what survived ([`checks`]) and the faults the cluster tests inject
//! ([`faults`]).

pub mod checks;
pub mod faults;
pub mod load;
pub mod system;

/// Held for the whole of each test, so the tests of this binary run one after another.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}
