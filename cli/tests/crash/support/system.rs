//! The whole system as OS processes: a nats-server of our own (free port, temporary store), or a
//! three-node cluster of them (`deploy/nats/cluster.conf`, streams with three replicas), and
//! `hospital serve <component>` processes with the environment `hospital up` gives its children
//! (`cli/src/up.rs`, `Settings::command_for`), on a fresh data directory.
//!
//! By default one process per component, each service on a SQLite file in the data directory.
//! A [`Layout`] can ask for several instances of each service sharing one database (PostgreSQL:
//! SQLite refuses a second writer) and several gateways on their own ports. Processes are named
//! by instance: the first instance of a component is named like it (`patient`, `gateway`), the
//! others `<component>.<n>` (`patient.2`). Any instance can be killed with SIGKILL, frozen
//! (SIGSTOP/SIGCONT), stopped with SIGTERM and started again.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use kit::nats::Credentials;
use kit::nats_server::{TestNatsCluster, TestNatsServer, free_port};

pub const ADMIN_PASSWORD: &str = "correct horse battery staple";
pub const JWT_SECRET: &str = "a-crash-test-secret-that-is-long-enough-0123456789";

/// The owning services, in the order `hospital up` starts them.
pub const SERVICES: [&str; 4] = ["patient", "staff", "appointment", "record"];
/// Every component: the services, then the gateway.
pub const COMPONENTS: [&str; 5] = ["patient", "staff", "appointment", "record", "gateway"];

/// How long a component may take to answer after it was started.
const START_PATIENCE: Duration = Duration::from_secs(30);

/// How many processes run, on which databases.
pub struct Layout {
    /// Instances of each service (more than one needs a database several may share).
    pub instances: usize,
    /// Gateway processes, each on a port of its own, all with [`JWT_SECRET`].
    pub gateways: usize,
    /// `DATABASE_URL_<SERVICE>` of the services named here; the others get a SQLite file in the
    /// data directory, as `hospital up` gives them.
    pub databases: BTreeMap<&'static str, String>,
}

impl Default for Layout {
    /// What `hospital up` runs: one process per component, SQLite.
    fn default() -> Self {
        Layout {
            instances: 1,
            gateways: 1,
            databases: BTreeMap::new(),
        }
    }
}

/// The name of instance `n` (from 1) of `component`: `patient`, `patient.2`, ...
pub fn instance_name(component: &str, n: usize) -> String {
    if n == 1 {
        component.to_owned()
    } else {
        format!("{component}.{n}")
    }
}

/// The component an instance name belongs to.
fn component_of(name: &str) -> &'static str {
    COMPONENTS
        .into_iter()
        .find(|c| name == *c || name.strip_prefix(c).is_some_and(|n| n.starts_with('.')))
        .unwrap_or_else(|| panic!("no component runs as {name}"))
}

/// The NATS the system runs on.
pub enum Nats {
    Single(TestNatsServer),
    /// Three nodes; every component gets `HOSPITAL_STREAM_REPLICAS=3`.
    Cluster(TestNatsCluster),
}

impl Nats {
    /// `NATS_URL`: one server, or every node comma-separated.
    pub fn url(&self) -> String {
        match self {
            Nats::Single(server) => server.url(),
            Nats::Cluster(cluster) => cluster.url(),
        }
    }

    fn credentials(&self, user: &str) -> Credentials {
        match self {
            Nats::Single(server) => server.credentials(user),
            Nats::Cluster(cluster) => cluster.credentials(user),
        }
    }

    fn passwords(&self) -> &kit::nats_users::Passwords {
        match self {
            Nats::Single(server) => server.passwords(),
            Nats::Cluster(cluster) => cluster.passwords(),
        }
    }

    fn stream_replicas(&self) -> usize {
        match self {
            Nats::Single(_) => 1,
            Nats::Cluster(_) => kit::nats_server::cluster::NODES,
        }
    }

    /// The single server (a test of a single server's outage).
    pub fn single(&mut self) -> &mut TestNatsServer {
        match self {
            Nats::Single(server) => server,
            Nats::Cluster(_) => panic!("the system runs on a cluster"),
        }
    }

    /// The cluster (a test of a node's failure).
    pub fn cluster(&mut self) -> &mut TestNatsCluster {
        match self {
            Nats::Cluster(cluster) => cluster,
            Nats::Single(_) => panic!("the system runs on a single nats-server"),
        }
    }

    pub fn as_cluster(&self) -> &TestNatsCluster {
        match self {
            Nats::Cluster(cluster) => cluster,
            Nats::Single(_) => panic!("the system runs on a single nats-server"),
        }
    }
}

pub struct System {
    pub nats_server: Nats,
    /// An observer's NATS client as the operator user (reconnecting, as an operator's tool
    /// would).
    pub nats: async_nats::Client,
    pub data_dir: tempfile::TempDir,
    /// The first gateway: `http://127.0.0.1:<port>`.
    pub gateway: String,
    /// Every gateway, the first first.
    pub gateways: Vec<String>,
    layout: Layout,
    /// Each gateway instance's listening address.
    http_addrs: BTreeMap<String, SocketAddr>,
    processes: BTreeMap<String, tokio::process::Child>,
}

impl System {
    /// nats-server, the four services and the gateway, each a process; returns once the
    /// gateway's `/ready` says every service answers.
    pub async fn start() -> System {
        Self::start_on(Nats::Single(TestNatsServer::start().await)).await
    }

    /// As [`Self::start`], on a three-node NATS cluster with replicated streams.
    pub async fn start_on_cluster() -> System {
        Self::start_on(Nats::Cluster(TestNatsCluster::start().await)).await
    }

    async fn start_on(nats_server: Nats) -> System {
        Self::start_with(nats_server, Layout::default()).await
    }

    /// The system as `layout` says, on `nats_server`; returns once every gateway's `/ready`
    /// says every service answers and every service instance answers discovery.
    pub async fn start_with(nats_server: Nats, layout: Layout) -> System {
        let observer = kit::nats::NatsConfig::new(nats_server.url())
            .with_credentials(nats_server.credentials(kit::nats_users::OPERATOR));
        let nats = kit::nats::connect(&observer, "observer")
            .await
            .expect("connect the observer to the test nats-server");
        let data_dir = tempfile::tempdir().expect("temporary data directory");
        std::fs::create_dir_all(data_dir.path().join("logs")).expect("log directory");
        // Kept where `hospital up` keeps them, for `hospital verify --data-dir`.
        nats_server
            .passwords()
            .save(&data_dir.path().join(kit::nats_users::FILE_NAME))
            .expect("keep the NATS passwords");
        let http_addrs: BTreeMap<String, SocketAddr> = (1..=layout.gateways)
            .map(|n| {
                let addr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
                (instance_name("gateway", n), addr)
            })
            .collect();
        let gateways: Vec<String> = (1..=layout.gateways)
            .map(|n| format!("http://{}", http_addrs[&instance_name("gateway", n)]))
            .collect();
        let mut system = System {
            nats_server,
            nats,
            data_dir,
            gateway: gateways[0].clone(),
            gateways,
            layout,
            http_addrs,
            processes: BTreeMap::new(),
        };
        for name in system.instance_names() {
            system.spawn(&name);
        }
        system
            .wait_until_ready(START_PATIENCE)
            .await
            .unwrap_or_else(|last| panic!("the system did not come up: /ready said {last}"));
        if system.layout.instances > 1 {
            for service in SERVICES {
                system.wait_until_discovered(service, START_PATIENCE).await;
            }
        }
        system
    }

    /// Every process the layout runs, services first, in the order `hospital up` starts them.
    pub fn instance_names(&self) -> Vec<String> {
        COMPONENTS
            .into_iter()
            .flat_map(|component| self.instances_of(component))
            .collect()
    }

    /// The instances of `component` the layout runs (running or not).
    pub fn instances_of(&self, component: &str) -> Vec<String> {
        let count = if component == "gateway" {
            self.layout.gateways
        } else {
            self.layout.instances
        };
        (1..=count).map(|n| instance_name(component, n)).collect()
    }

    /// How many instances of `component` are running.
    fn running(&self, component: &str) -> usize {
        self.processes
            .keys()
            .filter(|name| component_of(name) == component)
            .count()
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// Where a component's stdout and stderr go (appended across restarts).
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.data_dir().join("logs").join(format!("{name}.log"))
    }

    /// A service's SQLite file (when it runs on SQLite).
    pub fn database_path(&self, service: &str) -> PathBuf {
        self.data_dir().join(format!("{service}.db"))
    }

    /// A service's `DATABASE_URL_<SERVICE>`: the layout's, else its SQLite file.
    pub fn database_url(&self, service: &str) -> String {
        self.layout
            .databases
            .get(service)
            .cloned()
            .unwrap_or_else(|| kit::config::sqlite_url_in(self.data_dir(), service))
    }

    /// `DATABASE_URL_<SERVICE>` and its value, for each service: what an operator's command
    /// (`hospital verify`, `hospital replay`) needs to find the databases.
    pub fn database_vars(&self) -> Vec<(String, String)> {
        SERVICES
            .into_iter()
            .map(|service| (database_var(service), self.database_url(service)))
            .collect()
    }

    /// `hospital serve <component>` for instance `name` with what `hospital up` sets for it:
    /// `NATS_URL`, the component's NATS user (`NATS_USER`, `NATS_PASSWORD`), `HOSPITAL_DATA_DIR`,
    /// the service's `DATABASE_URL_<SERVICE>` ([`Self::database_url`]), and for a gateway only
    /// `JWT_SECRET_KEY` and `HOSPITAL_HTTP_ADDR` (its own). The staff service also gets the first
    /// administrator's password, as an operator would set it.
    fn command(&self, name: &str) -> tokio::process::Command {
        let component = component_of(name);
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_hospital"));
        command
            .args(["serve", component])
            // No `.env` of the checkout is read: the data directory has none.
            .current_dir(self.data_dir())
            .env("NATS_URL", self.nats_server.url())
            .env("NATS_USER", component)
            .env(
                "NATS_PASSWORD",
                self.nats_server.credentials(component).password(),
            )
            .env_remove("NATS_PASSWORD_FILE")
            .env("HOSPITAL_DATA_DIR", self.data_dir())
            .env(
                "HOSPITAL_STREAM_REPLICAS",
                self.nats_server.stream_replicas().to_string(),
            )
            .env("RUST_LOG", "info");
        if component == "gateway" {
            command
                .env("JWT_SECRET_KEY", JWT_SECRET)
                .env("HOSPITAL_HTTP_ADDR", self.http_addrs[name].to_string());
        } else {
            command
                .env(database_var(component), self.database_url(component))
                .env_remove("JWT_SECRET_KEY");
            if component == "staff" {
                command.env("HOSPITAL_ADMIN_PASSWORD", ADMIN_PASSWORD);
            }
        }
        command
    }

    /// Starts the instance's process (it must not be running).
    pub fn spawn(&mut self, name: &str) {
        assert!(
            !self.processes.contains_key(name),
            "{name} is already running"
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(name))
            .expect("open the component's log");
        let child = self
            .command(name)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start hospital serve {name}: {e}"));
        self.processes.insert(name.to_owned(), child);
    }

    pub fn pid(&self, name: &str) -> i32 {
        let child = self.processes.get(name).expect("a running component");
        child.id().expect("not yet reaped") as i32
    }

    /// `kill -9`: no shutdown, no flush, nothing finishes. Returns once the process is gone.
    pub async fn kill9(&mut self, name: &str) {
        let mut child = self.processes.remove(name).expect("a running component");
        child.start_kill().expect("SIGKILL");
        let status = child.wait().await.expect("reap the killed process");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL),
            "{name} died of SIGKILL"
        );
        let component = component_of(name);
        // With another instance left, nothing tells when nats-server has stopped routing to the
        // dead one; what it still routes there is part of losing an instance.
        if component != "gateway" && self.running(component) == 0 {
            self.wait_until_nats_forgets(component).await;
        }
    }

    /// SIGTERM, as an operator stops a component, and waits until it has exited (SIGKILL after
    /// [`START_PATIENCE`]).
    pub async fn stop(&mut self, name: &str) {
        let mut child = self.processes.remove(name).expect("a running component");
        let pid = child.id().expect("not yet reaped") as i32;
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own live child.
        assert_eq!(
            unsafe { libc::kill(pid, libc::SIGTERM) },
            0,
            "SIGTERM to {name}"
        );
        if tokio::time::timeout(START_PATIENCE, child.wait())
            .await
            .is_err()
        {
            child.kill().await.expect("SIGKILL");
            panic!(
                "{name} did not stop within {START_PATIENCE:?} of SIGTERM; see {}",
                self.log_path(name).display()
            );
        }
    }

    /// Waits until nats-server has noticed the dead service's closed connection: until then a
    /// request can still be routed to its subscription and waits out the request timeout,
    /// which is the race of a kill, not what the test is about.
    async fn wait_until_nats_forgets(&self, service: &str) {
        let subject = format!("$SRV.PING.{service}");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let asked = tokio::time::timeout(
                Duration::from_millis(500),
                self.nats.request(subject.clone(), "".into()),
            )
            .await;
            if let Ok(Err(error)) = &asked
                && error.kind() == async_nats::client::RequestErrorKind::NoResponders
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server still routes to the killed {service}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Sends `signal` (SIGSTOP, SIGCONT) to the component's process.
    pub fn signal(&self, name: &str, signal: libc::c_int) {
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own live child.
        let result = unsafe { libc::kill(self.pid(name), signal) };
        assert_eq!(result, 0, "signal {signal} to {name}");
    }

    /// Starts a killed instance again and waits until it answers.
    pub async fn restart(&mut self, name: &str) -> Duration {
        let started = Instant::now();
        self.spawn(name);
        self.wait_until_answering(name, START_PATIENCE).await;
        started.elapsed()
    }

    /// A service answers the service API's `$SRV.PING.<service>` (with several instances: as
    /// many answer as run); a gateway answers `/health`.
    pub async fn wait_until_answering(&mut self, name: &str, patience: Duration) {
        let component = component_of(name);
        if component != "gateway" && self.layout.instances > 1 {
            self.wait_until_discovered(component, patience).await;
            return;
        }
        let deadline = Instant::now() + patience;
        let http = reqwest::Client::new();
        while Instant::now() < deadline {
            self.fail_if_exited(name);
            let answering = if component == "gateway" {
                http.get(format!("http://{}/health", self.http_addrs[name]))
                    .timeout(Duration::from_millis(500))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            } else {
                let request = async_nats::Request::new()
                    .payload("".into())
                    .timeout(Some(Duration::from_millis(500)));
                self.nats
                    .send_request(format!("$SRV.PING.{component}"), request)
                    .await
                    .is_ok()
            };
            if answering {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{name} did not answer within {patience:?}; see {}",
            self.log_path(name).display()
        );
    }

    /// Waits until every running instance of `service` answers `$SRV.PING.<service>`.
    async fn wait_until_discovered(&mut self, service: &str, patience: Duration) {
        let deadline = Instant::now() + patience;
        let wanted = self.running(service);
        loop {
            for name in self.instances_of(service) {
                self.fail_if_exited(&name);
            }
            let answered = self.discovered(service).await;
            if answered == wanted {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{answered} of {wanted} {service} instances answered within {patience:?}; see {}",
                self.log_path(service).display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How many instances of `service` answer `$SRV.PING.<service>` within 300 ms.
    async fn discovered(&self, service: &str) -> usize {
        let inbox = self.nats.new_inbox();
        let Ok(mut answers) = self.nats.subscribe(inbox.clone()).await else {
            return 0;
        };
        if self
            .nats
            .publish_with_reply(format!("$SRV.PING.{service}"), inbox, "".into())
            .await
            .is_err()
        {
            return 0;
        }
        let mut count = 0;
        while let Ok(Some(_)) = tokio::time::timeout(
            Duration::from_millis(300),
            futures::StreamExt::next(&mut answers),
        )
        .await
        {
            count += 1;
        }
        count
    }

    fn fail_if_exited(&mut self, name: &str) {
        if let Some(child) = self.processes.get_mut(name)
            && let Ok(Some(status)) = child.try_wait()
        {
            // The data directory, and the log with it, is gone once the test fails.
            let log = std::fs::read_to_string(self.log_path(name)).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "{name} exited ({status}); the end of its log:\n{}",
                tail.join("\n")
            );
        }
    }

    /// Waits until every gateway's `/ready` answers 200; the error is the last answer.
    pub async fn wait_until_ready(&mut self, patience: Duration) -> Result<Duration, String> {
        let started = Instant::now();
        let http = reqwest::Client::new();
        let mut last = String::from("nothing yet");
        let mut ready = 0;
        while started.elapsed() < patience {
            let names: Vec<String> = self.processes.keys().cloned().collect();
            for name in names {
                self.fail_if_exited(&name);
            }
            let Some(gateway) = self.gateways.get(ready) else {
                return Ok(started.elapsed());
            };
            match http
                .get(format!("{gateway}/ready"))
                .timeout(Duration::from_secs(3))
                .send()
                .await
            {
                Ok(response) if response.status().is_success() => {
                    ready += 1;
                    continue;
                }
                Ok(response) => {
                    last = format!(
                        "{} {}",
                        response.status(),
                        response.text().await.unwrap_or_default()
                    );
                }
                Err(error) => last = error.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(last)
    }

    /// Logs in as the administrator.
    pub async fn admin_token(&self) -> String {
        let response = reqwest::Client::new()
            .post(format!("{}/auth/login", self.gateway))
            .json(&serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .expect("login request");
        assert_eq!(response.status(), 200, "admin login");
        let body: serde_json::Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }
}

/// The variable that names a service's database.
pub fn database_var(service: &str) -> String {
    format!("DATABASE_URL_{}", service.to_ascii_uppercase())
}

impl Drop for System {
    fn drop(&mut self) {
        for child in self.processes.values_mut() {
            let _ = child.start_kill();
        }
    }
}
