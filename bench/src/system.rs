//! The system under test: `hospital up` (release build) on free ports with its own data
//! directory, and the processes it runs, for their memory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The administrator password the bench's system starts with.
pub const ADMIN_PASSWORD: &str = "bench-admin-password-0001";

pub struct System {
    child: tokio::process::Child,
    pub base_url: String,
}

/// One process of the running system.
#[derive(Debug, Clone)]
pub struct Process {
    /// `hospital up`, `nats-server`, `gateway`, `patient`, ...
    pub name: String,
    pub pid: u32,
}

impl System {
    /// Starts `hospital up` with `data_dir` (which may hold seeded databases) and waits until the
    /// gateway is ready.
    pub async fn start(hospital: &Path, data_dir: &Path) -> anyhow::Result<System> {
        Self::start_on(hospital, data_dir, None).await
    }

    /// [`Self::start`], on the three-node `cluster` when given (`--nats-url`, every stream
    /// kept by its three nodes) instead of an embedded nats-server.
    pub async fn start_on(
        hospital: &Path,
        data_dir: &Path,
        cluster: Option<&kit::nats_server::TestNatsCluster>,
    ) -> anyhow::Result<System> {
        std::fs::create_dir_all(data_dir)?;
        let http_port = kit::nats_server::free_port();
        let log = std::fs::File::create(data_dir.join("hospital-up.log"))?;
        let mut command = tokio::process::Command::new(hospital);
        command
            .arg("up")
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{http_port}"));
        match cluster {
            Some(cluster) => {
                // `hospital up --nats-url` reads the users' passwords from the data directory.
                cluster
                    .passwords()
                    .save(&data_dir.join(kit::nats_users::FILE_NAME))?;
                command
                    .arg("--nats-url")
                    .arg(cluster.url())
                    .env("HOSPITAL_STREAM_REPLICAS", "3");
            }
            None => {
                command
                    .arg("--nats-port")
                    .arg(kit::nats_server::free_port().to_string());
            }
        }
        let child = command
            .arg("--data-dir")
            .arg(data_dir)
            .env("HOSPITAL_ADMIN_PASSWORD", ADMIN_PASSWORD)
            // A login attempt counts against its username's and its address's limits until its
            // password is checked, so the login scenario's 64 concurrent logins of one user from
            // one address would mostly be refused (429) at the defaults (5 and 50): measured is
            // the login path, not the limiter.
            .env("HOSPITAL_LOGIN_MAX_FAILURES", "1000")
            .env("HOSPITAL_LOGIN_MAX_FAILURES_PER_ADDRESS", "1000")
            // No file in the working directory may change what is measured.
            .current_dir(data_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", hospital.display()))?;
        let mut system = System {
            child,
            base_url: format!("http://127.0.0.1:{http_port}"),
        };
        system.wait_ready(data_dir).await?;
        Ok(system)
    }

    async fn wait_ready(&mut self, data_dir: &Path) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "hospital up exited ({status}); see {}",
                    data_dir.join("hospital-up.log").display()
                );
            }
            if let Ok(answer) = client.get(format!("{}/ready", self.base_url)).send().await
                && answer.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the system was not ready within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The orchestrator and every process it started.
    pub fn processes(&self) -> Vec<Process> {
        let Some(root) = self.child.id() else {
            return Vec::new();
        };
        let mut processes = vec![Process {
            name: "hospital up".into(),
            pid: root,
        }];
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return processes;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if parent_of(pid) == Some(root) {
                processes.push(Process {
                    name: component_name(pid),
                    pid,
                });
            }
        }
        processes.sort_by(|a, b| a.name.cmp(&b.name));
        processes
    }

    /// Stops the system as Ctrl-C would, and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            // SAFETY: sending a signal to our own child process.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => self.child.kill().await?,
        }
        Ok(())
    }
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: read after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// `nats-server`, or the component of `hospital serve <component>`.
fn component_name(pid: u32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    match args.iter().position(|a| a == "serve") {
        Some(i) if i + 1 < args.len() => args[i + 1].clone(),
        _ => args
            .first()
            .map(|a| {
                Path::new(a)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .map(|name| {
                if name.starts_with("nats-server") {
                    "nats-server".into()
                } else {
                    name
                }
            })
            .unwrap_or_else(|| format!("pid {pid}")),
    }
}

/// Proportional memory of a process, in bytes (`Pss`): its private pages plus its share of
/// pages it shares with others. The components are one `hospital` binary run five times, so
/// its code is in every process's RSS but in memory once; PSS counts it once in the sum.
pub fn proportional_bytes(pid: u32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = rollup.lines().find(|l| l.starts_with("Pss:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Resident memory of a process, in bytes (`VmRSS`).
pub fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The `hospital` binary beside this one (both are built into the same target directory).
pub fn hospital_binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me.with_file_name("hospital");
    if !path.exists() {
        bail!(
            "{} is missing: build it with `cargo build --release -p hospital-cli`",
            path.display()
        );
    }
    Ok(path)
}
