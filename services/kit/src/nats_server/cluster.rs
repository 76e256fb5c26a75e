//! A three-node NATS cluster of our own for a test, each node running the shipped
//! `deploy/nats/cluster.conf` (which includes `nats.conf`), on free ports with temporary storage.
//! Nodes can be killed (SIGKILL), restarted on the same data, and frozen (SIGSTOP/SIGCONT), so a
//! test can take away the leader of a stream while clients write.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream;

use super::{NATS_CONF, NatsServerBinary, free_port, wait_until_listening};
use crate::nats::{Credentials, NatsConfig};
use crate::nats_users::Passwords;

/// `deploy/nats/cluster.conf`, built in so a test runs the file operators run.
pub const CLUSTER_CONF: &str = include_str!("../../../../deploy/nats/cluster.conf");

/// How many nodes: the smallest cluster that keeps a quorum with one node down.
pub const NODES: usize = 3;

struct Node {
    /// `n1`, `n2`, `n3`: the node's `server_name`, as stream info names leaders.
    name: String,
    client_port: u16,
    cluster_port: u16,
    child: Option<tokio::process::Child>,
}

pub struct TestNatsCluster {
    binary: NatsServerBinary,
    dir: tempfile::TempDir,
    passwords: Passwords,
    nodes: Vec<Node>,
}

impl TestNatsCluster {
    /// Starts the three nodes and returns once they have elected a JetStream meta leader.
    pub async fn start() -> Self {
        let binary = NatsServerBinary::locate().unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().expect("temporary directory");
        // The same layout as the repository, so the include of ../../nats.conf resolves.
        std::fs::write(dir.path().join("nats.conf"), NATS_CONF).expect("write nats.conf");
        let conf_dir = dir.path().join("deploy/nats");
        std::fs::create_dir_all(&conf_dir).expect("config directory");
        std::fs::write(conf_dir.join("cluster.conf"), CLUSTER_CONF).expect("write cluster.conf");
        let nodes = (1..=NODES)
            .map(|n| Node {
                name: format!("n{n}"),
                client_port: free_port(),
                cluster_port: free_port(),
                child: None,
            })
            .collect();
        let mut cluster = TestNatsCluster {
            binary,
            dir,
            passwords: Passwords::generate().expect("generate NATS passwords"),
            nodes,
        };
        for node in 0..NODES {
            cluster.spawn(node);
        }
        for node in 0..NODES {
            cluster.wait_until_listening(node).await;
        }
        cluster.wait_for_meta_leader().await;
        cluster
    }

    /// Every node's client URL, comma-separated, as `NATS_URL` takes it.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("nats://127.0.0.1:{}", node.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn passwords(&self) -> &Passwords {
        &self.passwords
    }

    /// How `user` (`gateway`, `patient`, ..., `operator`) connects to the cluster.
    pub fn credentials(&self, user: &str) -> Credentials {
        self.passwords
            .credentials(user)
            .unwrap_or_else(|| panic!("nats.conf has no user {user:?}"))
    }

    /// The NATS settings of the component that connects as `user`.
    pub fn config_for(&self, user: &str) -> NatsConfig {
        NatsConfig::new(self.url()).with_credentials(self.credentials(user))
    }

    /// A client connected as `user`; returned once connected.
    pub async fn connect_as(&self, user: &str) -> async_nats::Client {
        super::connected_client(&self.config_for(user), user).await
    }

    /// The node named `name` (`n1`...), by index.
    pub fn node_named(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|node| node.name == name)
            .unwrap_or_else(|| panic!("no node {name:?} in the cluster"))
    }

    pub fn name_of(&self, node: usize) -> &str {
        &self.nodes[node].name
    }

    /// The node that leads `stream` now (it takes the stream's writes), by index.
    pub async fn leader_of(&self, js: &jetstream::Context, stream: &str) -> Option<usize> {
        let info = js.get_stream(stream).await.ok()?.info().await.ok()?.clone();
        let leader = info.cluster?.leader?;
        Some(self.node_named(&leader))
    }

    /// Kills the node with SIGKILL, as a crash would; its data stays for [`Self::restart`].
    pub async fn kill(&mut self, node: usize) {
        if let Some(mut child) = self.nodes[node].child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts a killed node again on its ports and data; returns once it listens.
    pub async fn restart(&mut self, node: usize) {
        self.spawn(node);
        self.wait_until_listening(node).await;
    }

    /// Sends `signal` (SIGSTOP, SIGCONT) to the node's process.
    pub fn signal(&self, node: usize, signal: libc::c_int) {
        let child = self.nodes[node].child.as_ref().expect("a running node");
        let pid = child.id().expect("not yet reaped") as i32;
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own live child.
        let result = unsafe { libc::kill(pid, signal) };
        assert_eq!(
            result, 0,
            "signal {signal} to node {}",
            self.nodes[node].name
        );
    }

    /// Where the node's log goes (appended across restarts).
    pub fn log_path(&self, node: usize) -> PathBuf {
        self.dir
            .path()
            .join(format!("{}.log", self.nodes[node].name))
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.path().join("deploy/nats/cluster.conf")
    }

    fn spawn(&mut self, node: usize) {
        let store = self.dir.path().join(&self.nodes[node].name);
        let routes: Vec<(String, String)> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, other)| {
                (
                    format!("HOSPITAL_NATS_ROUTE_{}", i + 1),
                    format!("nats-route://127.0.0.1:{}", other.cluster_port),
                )
            })
            .collect();
        let me = &self.nodes[node];
        let child = self
            .binary
            .command(
                &self.conf_path(),
                "127.0.0.1",
                me.client_port,
                &store,
                &self.log_path(node),
            )
            .env("HOSPITAL_NATS_NODE", &me.name)
            .env("HOSPITAL_NATS_CLIENT_PORT", me.client_port.to_string())
            .env("HOSPITAL_NATS_CLUSTER_PORT", me.cluster_port.to_string())
            .envs(routes)
            .envs(self.passwords.server_env())
            .spawn()
            .expect("start nats-server");
        self.nodes[node].child = Some(child);
    }

    async fn wait_until_listening(&self, node: usize) {
        let port = self.nodes[node].client_port;
        assert!(
            wait_until_listening("127.0.0.1", port, Duration::from_secs(10)).await,
            "cluster node {} did not start; see {}",
            self.nodes[node].name,
            self.log_path(node).display()
        );
    }

    /// A cluster answers JetStream requests only once its nodes have elected a meta leader.
    async fn wait_for_meta_leader(&self) {
        let client = self.connect_as(crate::nats_users::OPERATOR).await;
        let js = jetstream::new(client);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match js.query_account().await {
                Ok(_) => return,
                Err(error) => assert!(
                    tokio::time::Instant::now() < deadline,
                    "the cluster elected no JetStream meta leader within 30 s ({error}); see {}",
                    self.dir.path().display()
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The temporary directory with the configuration, every node's store and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestNatsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(child) = node.child.as_mut() {
                // A frozen node ignores nothing but SIGKILL, which start_kill sends.
                let _ = child.start_kill();
            }
        }
    }
}
