//! Which port the embedded nats-server listens on, and remembering it in `<data-dir>/nats-port`
//! so operators' `nats --server` commands stay valid across restarts.

use std::fmt;
use std::path::{Path, PathBuf};

use kit::nats_server::{free_port, port_is_free};

/// The file in the data directory that remembers the port of the last run.
pub const FILE_NAME: &str = "nats-port";
/// NATS' well-known port, taken when free.
pub const DEFAULT_PORT: u16 = 4222;

/// What the operator asked for and what is known from earlier runs.
#[derive(Debug, Clone, Copy)]
pub struct Preferences {
    /// `--nats-port`: must be free, or the run fails.
    pub requested: Option<u16>,
    /// The port of the last run, preferred when free.
    pub remembered: Option<u16>,
    /// [`DEFAULT_PORT`]; a parameter so tests need not depend on who holds 4222.
    pub default: u16,
}

/// The port chosen and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Requested(u16),
    Remembered(u16),
    Default(u16),
    /// Neither the remembered nor the default port was free; `taken` lists them.
    Fallback {
        port: u16,
        taken: Vec<u16>,
    },
}

impl Choice {
    pub fn port(&self) -> u16 {
        match self {
            Choice::Requested(port) | Choice::Remembered(port) | Choice::Default(port) => *port,
            Choice::Fallback { port, .. } => *port,
        }
    }
}

/// `--nats-port` names a port something else already listens on.
#[derive(Debug, PartialEq, Eq)]
pub struct PortTaken {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for PortTaken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "--nats-port {port}: {host}:{port} is already in use; choose another port, \
             or leave the option out to let `hospital up` pick a free one",
            host = self.host,
            port = self.port
        )
    }
}

impl std::error::Error for PortTaken {}

/// Chooses the port: the requested one (which must be free), else the remembered one, else the
/// default, else any free port.
pub fn choose(host: &str, preferences: Preferences) -> Result<Choice, PortTaken> {
    if let Some(port) = preferences.requested {
        return if port_is_free(host, port) {
            Ok(Choice::Requested(port))
        } else {
            Err(PortTaken {
                host: host.to_owned(),
                port,
            })
        };
    }
    let mut taken = Vec::new();
    if let Some(port) = preferences.remembered {
        if port_is_free(host, port) {
            return Ok(Choice::Remembered(port));
        }
        taken.push(port);
    }
    if !taken.contains(&preferences.default) {
        if port_is_free(host, preferences.default) {
            return Ok(Choice::Default(preferences.default));
        }
        taken.push(preferences.default);
    }
    Ok(Choice::Fallback {
        port: free_port(),
        taken,
    })
}

/// The port remembered from the last run, if any (a damaged file is ignored).
pub fn remembered(data_dir: &Path) -> Option<u16> {
    std::fs::read_to_string(path(data_dir))
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|port| *port != 0)
}

/// Remembers `port` for the next run.
pub fn remember(data_dir: &Path, port: u16) -> std::io::Result<()> {
    std::fs::write(path(data_dir), format!("{port}\n"))
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    const HOST: &str = "127.0.0.1";

    fn occupied() -> (TcpListener, u16) {
        let listener = TcpListener::bind((HOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        (listener, port)
    }

    fn prefer(requested: Option<u16>, remembered: Option<u16>, default: u16) -> Preferences {
        Preferences {
            requested,
            remembered,
            default,
        }
    }

    #[test]
    fn a_requested_port_that_is_taken_fails_with_a_clear_message() {
        let (_holder, port) = occupied();
        let error = choose(HOST, prefer(Some(port), None, DEFAULT_PORT)).unwrap_err();
        assert_eq!(error.port, port);
        assert!(error.to_string().contains("already in use"), "{error}");
    }

    #[test]
    fn a_free_requested_port_is_used() {
        let (holder, port) = occupied();
        drop(holder);
        assert_eq!(
            choose(HOST, prefer(Some(port), None, DEFAULT_PORT)),
            Ok(Choice::Requested(port))
        );
    }

    #[test]
    fn the_default_port_is_taken_when_free() {
        let (holder, default) = occupied();
        drop(holder);
        assert_eq!(
            choose(HOST, prefer(None, None, default)),
            Ok(Choice::Default(default))
        );
    }

    #[test]
    fn a_taken_default_port_falls_back_to_a_free_one() {
        let (_holder, default) = occupied();
        let choice = choose(HOST, prefer(None, None, default)).unwrap();
        let Choice::Fallback { port, taken } = choice else {
            panic!("expected a fallback, got {choice:?}");
        };
        assert_ne!(port, default);
        assert_eq!(taken, vec![default]);
        assert!(port_is_free(HOST, port));
    }

    #[test]
    fn the_remembered_port_is_preferred_when_free() {
        let (_default_holder, default) = occupied();
        let (holder, remembered) = occupied();
        drop(holder);
        assert_eq!(
            choose(HOST, prefer(None, Some(remembered), default)),
            Ok(Choice::Remembered(remembered))
        );
    }

    #[test]
    fn a_taken_remembered_port_falls_back_to_the_default() {
        let (_holder, remembered) = occupied();
        let (default_holder, default) = occupied();
        drop(default_holder);
        assert_eq!(
            choose(HOST, prefer(None, Some(remembered), default)),
            Ok(Choice::Default(default))
        );
    }

    #[test]
    fn the_port_is_remembered_in_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(remembered(dir.path()), None);
        remember(dir.path(), 4333).unwrap();
        assert_eq!(remembered(dir.path()), Some(4333));
        std::fs::write(dir.path().join(FILE_NAME), "not a port").unwrap();
        assert_eq!(remembered(dir.path()), None);
    }
}
