//! `hospital up`: the whole system on one machine with one command.
//!
//! The orchestrator (this process) prepares the data directory and the JWT secret, provides NATS
//! (its own nats-server unless `--nats-url` is given), starts one `hospital serve <component>`
//! child per component in its own process group, waits for the gateway's `/ready`, and then
//! supervises: on Ctrl-C or SIGTERM it stops the gateway, the services and NATS in that order;
//! when a child dies on its own it stops the rest and fails. Everything that must survive a
//! restart (SQLite files, JetStream store, JWT secret, NATS passwords, NATS port) lives in the
//! data directory.

mod children;
mod nats_credentials;
mod nats_port;
mod nats_server;
mod ready;
mod secrets;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;

use crate::components::{COMPONENTS, Kind, Runnable};
use children::{Child, Fleet, describe};

/// How long the whole system may take to report ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const READY_INTERVAL: Duration = Duration::from_millis(250);
/// How long each child gets to finish its work after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Where the gateway listens for HTTP.
    #[arg(
        long,
        value_name = "ADDR",
        env = "HOSPITAL_HTTP_ADDR",
        default_value = "127.0.0.1:5000"
    )]
    http_addr: SocketAddr,

    /// Port of the embedded nats-server [default: the last run's, else 4222, else a free one].
    #[arg(long, value_name = "PORT", conflicts_with = "nats_url")]
    nats_port: Option<u16>,

    /// Use this NATS (a comma-separated server list) instead of starting a nats-server.
    #[arg(long, value_name = "URL")]
    nats_url: Option<String>,

    /// Where the databases, the JetStream store, the JWT secret, the NATS passwords and the NATS
    /// log are kept.
    #[arg(
        long,
        value_name = "DIR",
        env = "HOSPITAL_DATA_DIR",
        default_value = "./data"
    )]
    data_dir: PathBuf,
}

/// Runs the system until Ctrl-C (exit 0) or until something fails (exit 1).
pub async fn run(args: UpArgs) -> ExitCode {
    // First of all, so a Ctrl-C during start-up stops what was started instead of killing us.
    let shutdown = kit::runtime::shutdown_on_signal();
    match up(args, shutdown).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("hospital up: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn up(args: UpArgs, shutdown: CancellationToken) -> anyhow::Result<ExitCode> {
    let data_dir = &args.data_dir;
    create_private_dir(data_dir)?;
    let (jwt_secret, origin) = secrets::jwt_secret(kit::config::optional(secrets::VAR), data_dir)?;
    eprintln!(
        "hospital: data directory {}; JWT secret {} {origin}",
        data_dir.display(),
        kit::config::mask(&jwt_secret)
    );
    if std::net::TcpListener::bind(args.http_addr).is_err() {
        bail!(
            "--http-addr {}: the address is already in use (another `hospital up`?); \
             choose another one",
            args.http_addr
        );
    }
    if args.nats_url.is_none() && kit::config::optional("NATS_URL").is_some() {
        eprintln!(
            "hospital: NATS_URL from the environment is not used; pass --nats-url to use an \
             existing NATS instead of the embedded one"
        );
    }
    let exe = std::env::current_exe().context("cannot find this program's own path")?;

    let passwords = match &args.nats_url {
        None => {
            let (passwords, origin) =
                nats_credentials::for_embedded(data_dir, nats_credentials::environment)?;
            eprintln!(
                "hospital: NATS users {} with passwords {origin}",
                kit::nats_users::USERS.join(", ")
            );
            passwords
        }
        Some(_) => nats_credentials::for_external(data_dir, nats_credentials::environment)?,
    };
    let nats = nats_server::provide(data_dir, args.nats_url, args.nats_port, &passwords).await?;
    let mut fleet = Fleet::default();
    if let Some(server) = nats.server {
        fleet.push(server);
    }
    let settings = Settings {
        exe: &exe,
        nats_url: &nats.url,
        data_dir,
        http_addr: args.http_addr,
        jwt_secret: &jwt_secret,
        passwords: &passwords,
    };
    if let Err(error) = start_components(&settings, &mut fleet) {
        fleet.stop_all(STOP_GRACE).await;
        return Err(error);
    }

    let gateway = probe_addr(args.http_addr);
    let ready_line = format!(
        "Smart Healthcare System is up: http://{gateway} (NATS {}, data {}). \
         Press Ctrl-C to stop.",
        nats.url,
        data_dir.display()
    );
    let ending = supervise(&mut fleet, gateway, &shutdown, &ready_line).await;
    let code = ending.report(gateway);
    eprintln!("hospital: stopping {}", fleet.stop_order().join(", "));
    fleet.stop_all(STOP_GRACE).await;
    eprintln!("hospital: stopped");
    Ok(code)
}

/// Starts one `hospital serve <component>` per component, in [`COMPONENTS`] order.
fn start_components(settings: &Settings<'_>, fleet: &mut Fleet) -> anyhow::Result<()> {
    let mut started = Vec::new();
    for component in COMPONENTS {
        let child = Child::spawn(component.name, settings.command_for(component))
            .with_context(|| format!("cannot start {}", component.name))?;
        started.push(format!("{} (pid {})", child.name, child.pid().unwrap_or(0)));
        fleet.push(child);
    }
    eprintln!("hospital: started {}", started.join(", "));
    Ok(())
}

/// Waits for the gateway's `/ready`, prints `ready_line` to stdout, then runs until a stop is
/// requested or a child exits; at start-up a timeout ends the run too.
async fn supervise(
    fleet: &mut Fleet,
    gateway: SocketAddr,
    shutdown: &CancellationToken,
    ready_line: &str,
) -> Ending {
    let early_end = tokio::select! {
        () = shutdown.cancelled() => Some(Ending::StopRequested),
        (name, status) = fleet.first_exit() => Some(Ending::Exited { name, status }),
        ready = ready::wait_until_ready(gateway, "/ready", READY_TIMEOUT, READY_INTERVAL) => {
            ready.err().map(Ending::NotReady)
        }
    };
    if let Some(ending) = early_end {
        return ending;
    }
    println!("{ready_line}");
    tokio::select! {
        () = shutdown.cancelled() => Ending::StopRequested,
        (name, status) = fleet.first_exit() => Ending::Exited { name, status },
    }
}

/// Why a run ends.
enum Ending {
    StopRequested,
    Exited {
        name: &'static str,
        status: std::io::Result<std::process::ExitStatus>,
    },
    NotReady(ready::Probe),
}

impl Ending {
    /// Says on stderr why the run ends; the exit code: 0 only when the operator asked.
    fn report(self, gateway: SocketAddr) -> ExitCode {
        match self {
            Ending::StopRequested => ExitCode::SUCCESS,
            Ending::Exited { name, status } => {
                let status = status.map(describe).unwrap_or_else(|e| e.to_string());
                eprintln!("hospital up: {name} exited on its own ({status})");
                ExitCode::FAILURE
            }
            Ending::NotReady(last) => {
                eprintln!(
                    "hospital up: the system did not come up within {} s: the gateway's \
                     http://{gateway}/ready last said {last}",
                    READY_TIMEOUT.as_secs()
                );
                ExitCode::FAILURE
            }
        }
    }
}

/// What every child is told, beyond the environment it inherits.
struct Settings<'a> {
    exe: &'a Path,
    nats_url: &'a str,
    data_dir: &'a Path,
    http_addr: SocketAddr,
    jwt_secret: &'a str,
    passwords: &'a kit::nats_users::Passwords,
}

impl Settings<'_> {
    /// `hospital serve <component>` with the environment that component needs.
    fn command_for(&self, component: &Runnable) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(self.exe);
        command
            .args(["serve", component.name])
            .env("NATS_URL", self.nats_url)
            .env("HOSPITAL_DATA_DIR", self.data_dir);
        // Each component connects as its own NATS user and knows only its own password.
        for user in kit::nats_users::USERS {
            command.env_remove(kit::nats_users::password_var(user));
        }
        command
            .env_remove(kit::nats::PASSWORD_FILE_VAR)
            .env(kit::nats::USER_VAR, component.name)
            .env(
                kit::nats::PASSWORD_VAR,
                self.passwords.password(component.name).unwrap_or_default(),
            );
        match component.kind {
            Kind::Service { database_var } => {
                if kit::config::optional(database_var).is_none() {
                    let url = kit::config::sqlite_url_in(self.data_dir, component.name);
                    command.env(database_var, url);
                }
                // Only the gateway signs tokens.
                command.env_remove(secrets::VAR);
            }
            Kind::Gateway => {
                command
                    .env(secrets::VAR, self.jwt_secret)
                    .env("HOSPITAL_HTTP_ADDR", self.http_addr.to_string());
            }
        }
        command
    }
}

/// The data directory, created readable by its owner only (it holds the JWT secret).
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))
}

/// Where to reach a gateway listening on `addr`: its loopback when it listens on every address.
fn probe_addr(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_on_every_address_is_probed_on_loopback() {
        let probe = |addr: &str| probe_addr(addr.parse().unwrap()).to_string();
        assert_eq!(probe("0.0.0.0:5000"), "127.0.0.1:5000");
        assert_eq!(probe("[::]:5000"), "[::1]:5000");
        assert_eq!(probe("192.168.1.7:8080"), "192.168.1.7:8080");
    }

    fn env_of(command: &tokio::process::Command) -> Vec<(String, Option<String>)> {
        let text = |s: &std::ffi::OsStr| s.to_string_lossy().into_owned();
        command
            .as_std()
            .get_envs()
            .map(|(k, v)| (text(k), v.map(text)))
            .collect()
    }

    #[test]
    fn only_the_gateway_is_given_the_jwt_secret_and_the_listen_address() {
        let passwords = kit::nats_users::Passwords::generate().unwrap();
        let settings = Settings {
            exe: Path::new("/bin/hospital"),
            nats_url: "nats://127.0.0.1:4223",
            data_dir: Path::new("./data"),
            http_addr: "127.0.0.1:5000".parse().unwrap(),
            jwt_secret: "s3cret-s3cret-s3cret-s3cret-s3cret",
            passwords: &passwords,
        };
        for component in COMPONENTS {
            let command = settings.command_for(component);
            let args: Vec<_> = command.as_std().get_args().collect();
            assert_eq!(args, ["serve", component.name]);
            let env = env_of(&command);
            let value = |var: &str| env.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone());
            assert_eq!(
                value("NATS_URL"),
                Some(Some("nats://127.0.0.1:4223".into()))
            );
            assert_eq!(value("HOSPITAL_DATA_DIR"), Some(Some("./data".into())));
            // Its own NATS user and password, and no one else's.
            assert_eq!(value("NATS_USER"), Some(Some(component.name.into())));
            let own = passwords.password(component.name).unwrap();
            assert_eq!(value("NATS_PASSWORD"), Some(Some(own.into())));
            for user in kit::nats_users::USERS {
                assert_eq!(value(&kit::nats_users::password_var(user)), Some(None));
            }
            match component.kind {
                Kind::Gateway => {
                    assert_eq!(value(secrets::VAR), Some(Some(settings.jwt_secret.into())));
                    assert_eq!(
                        value("HOSPITAL_HTTP_ADDR"),
                        Some(Some("127.0.0.1:5000".into()))
                    );
                }
                Kind::Service { database_var } => {
                    assert_eq!(
                        value(secrets::VAR),
                        Some(None),
                        "removed for {}",
                        component.name
                    );
                    if kit::config::optional(database_var).is_none() {
                        let file = format!("sqlite://./data/{}.db?mode=rwc", component.name);
                        assert_eq!(value(database_var), Some(Some(file)));
                    }
                }
            }
        }
    }

    #[test]
    fn the_data_directory_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("nested/data");
        create_private_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
