//! The NATS of an embedded run: the operator's (`--nats-url`), or a nats-server of our own with
//! the project's `nats.conf`, its JetStream store and log in the data directory.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use kit::nats_server::{NATS_CONF, NatsServerBinary, wait_until_listening};
use kit::nats_users::Passwords;

use super::children::{Child, describe};
use super::nats_port::{self, Choice, Preferences};

/// The embedded server listens on loopback only: the services run on this machine.
const HOST: &str = "127.0.0.1";
/// JetStream recovers its store at start, which takes a moment on a big one.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);
/// The file in the data directory naming the NATS in use, for later operator commands.
pub const URL_FILE: &str = "nats-url";

/// The NATS the components are given.
pub struct Nats {
    /// `NATS_URL` for the components (one server or a comma-separated list).
    pub url: String,
    /// Our own nats-server, when we started one.
    pub server: Option<Child>,
}

/// Uses `external` when given; otherwise starts a nats-server on a port chosen from `requested`
/// and the data directory's memory, and waits until it listens.
pub async fn provide(
    data_dir: &Path,
    external: Option<String>,
    requested: Option<u16>,
    passwords: &Passwords,
) -> anyhow::Result<Nats> {
    let nats = match external {
        Some(url) => {
            eprintln!("hospital: using NATS at {url} (no nats-server started)");
            Nats { url, server: None }
        }
        None => start(data_dir, requested, passwords).await?,
    };
    let url_file = data_dir.join(URL_FILE);
    std::fs::write(&url_file, format!("{}\n", nats.url))
        .with_context(|| format!("cannot write {}", url_file.display()))?;
    Ok(nats)
}

async fn start(
    data_dir: &Path,
    requested: Option<u16>,
    passwords: &Passwords,
) -> anyhow::Result<Nats> {
    let binary = NatsServerBinary::locate()?;
    let config = data_dir.join("nats.conf");
    // Rewritten every run, so an upgraded binary brings its configuration along.
    std::fs::write(&config, NATS_CONF)
        .with_context(|| format!("cannot write {}", config.display()))?;

    let choice = nats_port::choose(
        HOST,
        Preferences {
            requested,
            remembered: nats_port::remembered(data_dir),
            default: nats_port::DEFAULT_PORT,
        },
    )?;
    if let Choice::Fallback { port, taken } = &choice {
        let taken: Vec<_> = taken.iter().map(u16::to_string).collect();
        eprintln!(
            "hospital: NATS port {} is taken (on this project's machines an old nats-server \
             holds 4222), so the embedded nats-server uses port {port}",
            taken.join(" and ")
        );
    }
    let port = choice.port();
    nats_port::remember(data_dir, port).with_context(|| {
        format!(
            "cannot write {}",
            data_dir.join(nats_port::FILE_NAME).display()
        )
    })?;

    let store = data_dir.join("nats");
    let log = data_dir.join("nats-server.log");
    eprintln!(
        "hospital: starting nats-server {} ({}) on {HOST}:{port}, store {}, log {}",
        binary.version,
        binary.path.display(),
        store.display(),
        log.display()
    );
    let mut command = binary.command(&config, HOST, port, &store, &log);
    // nats.conf reads every user's password from nats-server's environment.
    command.envs(passwords.server_env());
    let mut server = Child::spawn("nats-server", command)
        .with_context(|| format!("cannot run {}", binary.path.display()))?;

    // Watch the process while waiting, so a server that dies at once (bad store, port taken
    // meanwhile) is reported at once instead of after the timeout.
    tokio::select! {
        listening = wait_until_listening(HOST, port, LISTEN_TIMEOUT) => {
            if !listening {
                server.stop(Duration::from_secs(5)).await;
                bail!(
                    "nats-server did not listen on {HOST}:{port} within {} s; see {}",
                    LISTEN_TIMEOUT.as_secs(),
                    log.display()
                );
            }
        }
        status = server.exited() => {
            let status = status.map(describe).unwrap_or_else(|e| e.to_string());
            bail!("nats-server exited at start ({status}); see {}", log.display());
        }
    }
    Ok(Nats {
        url: format!("nats://{HOST}:{port}"),
        server: Some(server),
    })
}
