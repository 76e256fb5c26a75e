//! `deploy/nats/cluster.conf`, the one template every node of a three-node NATS cluster runs,
//! checked against a real nats-server: valid with every node variable and password set, refused
//! when one is missing, and three nodes started from it form a cluster that keeps
//! `HOSPITAL_EVENTS` three times.
//!
//! `nats-server -t` only parses: it accepts an empty `HOSPITAL_NATS_NODE`, which the node then
//! refuses at start (a JetStream cluster needs `server_name`). So the empty case is checked by
//! starting a node.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use kit::nats_server::{NatsServerBinary, TestNatsCluster, free_port};
use kit::nats_users::{Passwords, USERS, password_var};

/// Long enough for a loaded machine; only waited out when a test fails.
const PATIENCE: Duration = Duration::from_secs(30);

const NODE_VARS: [&str; 6] = [
    "HOSPITAL_NATS_NODE",
    "HOSPITAL_NATS_CLIENT_PORT",
    "HOSPITAL_NATS_CLUSTER_PORT",
    "HOSPITAL_NATS_ROUTE_1",
    "HOSPITAL_NATS_ROUTE_2",
    "HOSPITAL_NATS_ROUTE_3",
];

fn cluster_conf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nats/cluster.conf")
}

fn nats_server() -> NatsServerBinary {
    NatsServerBinary::locate().unwrap_or_else(|e| panic!("{e}"))
}

/// One node's variables, as an operator sets them (the routes are the same on every node).
#[derive(Clone)]
struct Node {
    vars: Vec<(String, String)>,
}

impl Node {
    fn new(name: &str, client_port: u16, cluster_port: u16, route_ports: [u16; 3]) -> Self {
        let mut vars = vec![
            ("HOSPITAL_NATS_NODE".to_owned(), name.to_owned()),
            (
                "HOSPITAL_NATS_CLIENT_PORT".to_owned(),
                client_port.to_string(),
            ),
            (
                "HOSPITAL_NATS_CLUSTER_PORT".to_owned(),
                cluster_port.to_string(),
            ),
        ];
        for (index, port) in route_ports.iter().enumerate() {
            vars.push((
                format!("HOSPITAL_NATS_ROUTE_{}", index + 1),
                format!("nats-route://127.0.0.1:{port}"),
            ));
        }
        Node { vars }
    }

    fn without(mut self, var: &str) -> Self {
        self.vars.retain(|(name, _)| name != var);
        self
    }

    fn with(mut self, var: &str, value: &str) -> Self {
        self.vars.retain(|(name, _)| name != var);
        self.vars.push((var.to_owned(), value.to_owned()));
        self
    }

    /// nats-server with this node's variables and `passwords` only: whatever the test process
    /// happens to have in its environment under these names is removed first.
    fn command(&self, binary: &NatsServerBinary, passwords: &Passwords) -> std::process::Command {
        let mut command = std::process::Command::new(&binary.path);
        for var in NODE_VARS {
            command.env_remove(var);
        }
        for user in USERS {
            command.env_remove(password_var(user));
        }
        command
            .envs(self.vars.iter().cloned())
            .envs(passwords.server_env())
            .stdin(Stdio::null());
        command
    }

    /// `nats-server -t -c cluster.conf`: parses the configuration and exits.
    fn check(&self, passwords: &Passwords) -> Output {
        self.command(&nats_server(), passwords)
            .arg("-t")
            .arg("-c")
            .arg(cluster_conf())
            .output()
            .expect("run nats-server -t")
    }
}

fn example_node() -> Node {
    Node::new("n1", 4222, 6222, [6222, 6223, 6224])
}

fn passwords_without(user: &str) -> Passwords {
    let all = Passwords::generate().unwrap();
    let mut passwords = Passwords::none();
    for other in USERS.into_iter().filter(|other| *other != user) {
        passwords.set(other, all.password(other).unwrap().to_owned());
    }
    passwords
}

#[test]
fn a_node_with_its_variables_and_every_password_set_is_valid() {
    let output = example_node().check(&Passwords::generate().unwrap());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("is valid"), "{said}");
}

#[test]
fn a_node_missing_any_of_its_variables_is_refused_naming_it() {
    let passwords = Passwords::generate().unwrap();
    for var in NODE_VARS {
        let output = example_node().without(var).check(&passwords);
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{var} missing, yet: {said}");
        assert!(
            said.contains(&format!("variable reference for '{var}'")),
            "{var}: {said}"
        );
    }
}

#[test]
fn a_node_missing_any_password_is_refused_naming_it() {
    for user in USERS {
        let var = password_var(user);
        let output = example_node().check(&passwords_without(user));
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{var} missing, yet: {said}");
        assert!(
            said.contains(&format!("variable reference for '{var}'")),
            "{var}: {said}"
        );
    }
}

#[test]
fn a_port_that_is_not_a_number_is_refused() {
    let output = example_node()
        .with("HOSPITAL_NATS_CLIENT_PORT", "client")
        .check(&Passwords::generate().unwrap());
    assert!(
        !output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_node_with_an_empty_name_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let (client, cluster) = (free_port(), free_port());
    let node = Node::new("", client, cluster, [cluster, free_port(), free_port()]);
    let mut command = node.command(&nats_server(), &Passwords::generate().unwrap());
    command
        .arg("-c")
        .arg(cluster_conf())
        .arg("-sd")
        .arg(dir.path().join("jetstream"))
        // On loopback only, and never left running: the test kills it if it does start.
        .args(["-a", "127.0.0.1", "--cluster_listen"])
        .arg(format!("nats://127.0.0.1:{cluster}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("start nats-server");
    let deadline = std::time::Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a node with an empty HOSPITAL_NATS_NODE started");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut said = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut said).unwrap();
    assert!(!status.success(), "{said}");
    assert!(said.contains("requires `server_name`"), "{said}");
}

/// Three nodes started from cluster.conf (`kit::nats_server::TestNatsCluster`, the harness of
/// the cluster failover test) form one cluster that keeps the event stream on every node.
#[tokio::test]
async fn three_nodes_form_a_cluster_that_keeps_the_event_stream_three_times() {
    let cluster = TestNatsCluster::start().await;
    // A service connects as it would in production: to the list of every node, as its user.
    let client = cluster.connect_as("patient").await;
    let js = async_nats::jetstream::new(client);

    // Until the nodes have elected a JetStream meta leader, a stream cannot be made.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut stream = loop {
        match kit::event_stream::ensure(&js, 3).await {
            Ok(stream) => break stream,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("HOSPITAL_EVENTS with 3 replicas was not made: {error}"),
        }
    };
    assert_eq!(stream.cached_info().config.num_replicas, 3);

    // The stream's group has a leader and two followers, all three nodes, once they catch up.
    loop {
        let info = stream.info().await.unwrap().clone();
        let cluster = info
            .cluster
            .expect("a clustered stream says where it lives");
        assert_eq!(cluster.name.as_deref(), Some("hospital"));
        let mut names: Vec<String> = cluster.replicas.iter().map(|p| p.name.clone()).collect();
        if let Some(leader) = &cluster.leader {
            names.push(leader.clone());
        }
        names.sort();
        if names == ["n1", "n2", "n3"] && cluster.replicas.iter().all(|p| p.current) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream is not on all three nodes: {cluster:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
