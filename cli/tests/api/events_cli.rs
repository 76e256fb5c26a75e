//! `hospital events tail` and `hospital events stats` against the running system, run as the
//! built binary the way an operator would; and the NATS contract checked by an independent client
//! (`tests/independent/test_nats_contract.py`, nats-py).

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use shared_events::EventEnvelope;

use crate::helpers::{TestApp, patient_body, spawn_app};

/// `hospital` with none of the test runner's NATS settings; as `app`'s operator user (from
/// `NATS_USER`/`NATS_PASSWORD`, as on a machine without `hospital up`'s data directory) if given.
fn hospital_command(app: Option<&TestApp>) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_hospital"));
    for var in [
        "NATS_URL",
        "NATS_USER",
        "NATS_PASSWORD",
        "NATS_PASSWORD_FILE",
        "HOSPITAL_DATA_DIR",
    ] {
        command.env_remove(var);
    }
    if let Some(app) = app {
        let operator = app.nats_server.credentials(kit::nats_users::OPERATOR);
        command
            .env("NATS_USER", &operator.user)
            .env("NATS_PASSWORD", operator.password());
    }
    command.stdin(Stdio::null()).kill_on_drop(true);
    command
}

/// Runs `hospital <args>` as `app`'s operator, killed if it has not finished in time.
async fn hospital(app: &TestApp, args: &[&str]) -> Output {
    run(hospital_command(Some(app)), args).await
}

async fn run(mut command: tokio::process::Command, args: &[&str]) -> Output {
    let child = command.args(args).output();
    tokio::time::timeout(Duration::from_secs(30), child)
        .await
        .unwrap_or_else(|_| panic!("hospital {args:?} did not finish"))
        .expect("the hospital binary runs")
}

fn stdout_lines(output: &Output) -> Vec<String> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Two patients (one updated, then deleted) and a doctor, on top of the bootstrap admin: six
/// events. Returns the id of the patient that was changed.
async fn make_writes(app: &TestApp) -> String {
    let token = app.admin_token().await;
    let patient = app
        .create_patient(&token, patient_body("Ada Lovelace"))
        .await;
    app.create_patient(&token, patient_body("Grace Hopper"))
        .await;
    let id = patient["id"].as_str().unwrap().to_owned();
    let path = format!("/api/patients/{id}");
    let updated = app
        .api(Method::PUT, &path, &token)
        .json(&patient_body("Ada King"))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    let deleted = app.api(Method::DELETE, &path, &token).send().await.unwrap();
    assert!(deleted.status().is_success());
    let doctor = json!({"name": "Dr Kelso", "role": "doctor", "username": "bkelso",
                        "password": "a secret password"});
    let created = app
        .api(Method::POST, "/api/staff", &token)
        .json(&doctor)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    id
}

#[tokio::test]
async fn tail_prints_every_event_from_a_sequence_and_filters_by_subject() {
    let app = spawn_app().await;
    let id = make_writes(&app).await;
    let url = app.nats_server.url();

    let output = hospital(
        &app,
        &[
            "events",
            "tail",
            "--from-seq",
            "1",
            "--limit",
            "6",
            "--nats-url",
            &url,
        ],
    )
    .await;
    let lines = stdout_lines(&output);
    println!("{}", lines.join("\n"));
    assert_eq!(lines.len(), 6, "{lines:?}");
    let fields: Vec<Vec<&str>> = lines.iter().map(|l| l.split("  ").collect()).collect();
    let subjects: Vec<&str> = fields.iter().map(|f| f[2]).collect();
    assert!(subjects[0].starts_with("hospital.events.staff.") && subjects[0].ends_with(".created"));
    assert_eq!(subjects[3], format!("hospital.events.patient.{id}.updated"));
    assert_eq!(subjects[4], format!("hospital.events.patient.{id}.deleted"));
    let sequences: Vec<&str> = fields.iter().map(|f| f[0]).collect();
    assert_eq!(sequences, ["1", "2", "3", "4", "5", "6"]);
    assert_eq!(
        fields[0][3], "system:system",
        "the bootstrap admin is made by the system"
    );
    assert!(fields[4][3].starts_with("admin:"), "{}", lines[4]);
    let versions: Vec<&str> = fields.iter().map(|f| f[4]).collect();
    assert_eq!(versions, ["v1", "v1", "v1", "v2", "v3", "v1"]);
    assert!(
        fields[0][1].ends_with('Z') && fields[0][1].len() == 20,
        "{}",
        lines[0]
    );

    let output = hospital(
        &app,
        &[
            "events",
            "tail",
            "--from-seq",
            "1",
            "--limit",
            "4",
            "--json",
            "--subject",
            "hospital.events.patient.>",
            "--nats-url",
            &url,
        ],
    )
    .await;
    let lines = stdout_lines(&output);
    assert_eq!(lines.len(), 4, "{lines:?}");
    let envelopes: Vec<EventEnvelope> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("a JSON envelope per line"))
        .collect();
    assert!(envelopes.iter().all(|e| e.aggregate.as_str() == "patient"));
    assert_eq!(envelopes[3].event_type, "patient.deleted");
    assert_eq!(envelopes[3].aggregate_id.to_string(), id);

    // From a time long ago: everything.
    let output = hospital(
        &app,
        &[
            "events",
            "tail",
            "--since",
            "2000-01-01T00:00:00Z",
            "--limit",
            "6",
            "--nats-url",
            &url,
        ],
    )
    .await;
    assert_eq!(stdout_lines(&output).len(), 6);
}

#[tokio::test]
async fn tail_without_a_start_prints_only_new_events() {
    let app = spawn_app().await;
    make_writes(&app).await;
    let url = app.nats_server.url();
    let tail = hospital_command(Some(&app))
        .args(["events", "tail", "--limit", "1", "--nats-url", &url])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Keep writing until the tail has printed its one event: whenever its consumer starts, the
    // next write is new to it (no guess at how long starting takes).
    let token = app.admin_token().await;
    let mut tail = tail;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut written = 0;
    while tail.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "tail did not stop after --limit 1"
        );
        written += 1;
        app.create_patient(
            &token,
            patient_body(&format!("Florence Nightingale {written}")),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let output = tail.wait_with_output().await.unwrap();
    let lines = stdout_lines(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let sequence: u64 = lines[0].split_whitespace().next().unwrap().parse().unwrap();
    assert!(
        sequence >= 7,
        "only events after the six earlier ones: {}",
        lines[0]
    );
    assert!(lines[0].contains(".created  admin:"), "{}", lines[0]);
}

#[tokio::test]
async fn stats_counts_events_per_aggregate_and_verb_and_shows_consumer_lag() {
    let app = spawn_app().await;
    make_writes(&app).await;
    let url = app.nats_server.url();
    // The read-models apply the events asynchronously; wait until both have caught up.
    let deadline = Instant::now() + Duration::from_secs(15);
    let text = loop {
        let text = stdout_lines(&hospital(&app, &["events", "stats", "--nats-url", &url]).await)
            .join("\n");
        let caught_up = |name: &str| {
            text.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.first() == Some(&name) && f[1] == "6" && f[2] == "6" && f[3] == "0" && f[4] == "0"
            })
        };
        if caught_up("appointment-read-model") && caught_up("record-read-model") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the read-models did not catch up:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("stream HOSPITAL_EVENTS: 6 messages, "),
        "{text}"
    );
    assert!(
        lines[0].ends_with("first sequence 1, last sequence 6"),
        "{text}"
    );
    let count = |kind: &str| {
        let line = lines
            .iter()
            .find(|l| l.starts_with(kind))
            .unwrap_or_else(|| panic!("{kind}:\n{text}"));
        line.split_whitespace().nth(1).unwrap().to_owned()
    };
    assert_eq!(count("hospital.events.patient.*.created"), "2");
    assert_eq!(count("hospital.events.patient.*.updated"), "1");
    assert_eq!(count("hospital.events.patient.*.deleted"), "1");
    assert_eq!(count("hospital.events.staff.*.created"), "2");
}

#[tokio::test]
async fn an_unreachable_nats_fails_quickly_naming_the_url() {
    let started = Instant::now();
    for command in ["tail", "stats"] {
        let output = run(
            hospital_command(None),
            &["events", command, "--nats-url", "nats://127.0.0.1:1"],
        )
        .await;
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("nats://127.0.0.1:1"), "{stderr}");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Makes `import nats` work: already installed, else pip, else pip --target a directory (for a
/// Python that refuses system-wide installs, PEP 668). Returns the PYTHONPATH to use, if any.
fn ensure_nats_py(scratch: &std::path::Path) -> Option<String> {
    let python = |args: &[&str], path: Option<&str>| {
        let mut command = std::process::Command::new("python3");
        command.args(args);
        if let Some(path) = path {
            command.env("PYTHONPATH", path);
        }
        command.status().is_ok_and(|s| s.success())
    };
    if python(&["-c", "import nats"], None) {
        return None;
    }
    if python(&["-m", "pip", "install", "--quiet", "nats-py"], None)
        && python(&["-c", "import nats"], None)
    {
        return None;
    }
    let target = scratch.join("python").to_string_lossy().into_owned();
    let installed = python(
        &[
            "-m", "pip", "install", "--quiet", "--target", &target, "nats-py",
        ],
        None,
    );
    assert!(
        installed && python(&["-c", "import nats"], Some(&target)),
        "cannot install nats-py"
    );
    Some(target)
}

/// The script reads as the operator and sends its commands as the gateway (the only user that
/// may), each from `NATS_<USER>_USER`/`NATS_<USER>_PASSWORD`.
fn contract_credentials(app: &TestApp) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for (role, user) in [("OPERATOR", "operator"), ("GATEWAY", "gateway")] {
        let credentials = app.nats_server.credentials(user);
        env.push((format!("NATS_{role}_USER"), credentials.user.clone()));
        env.push((
            format!("NATS_{role}_PASSWORD"),
            credentials.password().to_owned(),
        ));
    }
    env
}

#[tokio::test]
async fn an_operator_command_without_credentials_is_refused_naming_them() {
    let app = spawn_app().await;
    let url = app.nats_server.url();
    let empty = tempfile::tempdir().unwrap();
    let data_dir = empty.path().to_str().unwrap();
    let output = run(
        hospital_command(None),
        &[
            "events",
            "stats",
            "--nats-url",
            &url,
            "--data-dir",
            data_dir,
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("NATS_USER") && stderr.contains("NATS_PASSWORD"),
        "{stderr}"
    );

    // With hospital up's data directory (the test keeps the passwords there too) it works.
    let data_dir = app.data_dir.path().to_str().unwrap();
    let output = run(
        hospital_command(None),
        &[
            "events",
            "stats",
            "--nats-url",
            &url,
            "--data-dir",
            data_dir,
        ],
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn an_independent_nats_client_agrees_with_the_contract() {
    let app = spawn_app().await;
    make_writes(&app).await;
    let scratch = tempfile::tempdir().unwrap();
    let pythonpath = tokio::task::spawn_blocking({
        let scratch = scratch.path().to_owned();
        move || ensure_nats_py(&scratch)
    })
    .await
    .unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/independent/test_nats_contract.py"
    );
    let mut command = tokio::process::Command::new("python3");
    command
        .arg(script)
        .env("NATS_URL", app.nats_server.url())
        .envs(contract_credentials(&app))
        .kill_on_drop(true);
    if let Some(path) = pythonpath {
        command.env("PYTHONPATH", path);
    }
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the contract script finishes")
        .unwrap();
    println!("{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "the independent client found a contract failure"
    );
}

#[tokio::test]
async fn a_payload_that_is_not_an_envelope_is_reported_not_fatal() {
    let app = spawn_app().await;
    // Only the patient service may publish patient events: a buggy one, say.
    let js = app.publisher_of("patient").await;
    js.publish("hospital.events.patient.junk", "not an envelope".into())
        .await
        .unwrap()
        .await
        .expect("the stream stores it");
    let url = app.nats_server.url();
    let output = hospital(
        &app,
        &[
            "events",
            "tail",
            "--from-seq",
            "1",
            "--limit",
            "2",
            "--nats-url",
            &url,
        ],
    )
    .await;
    let lines = stdout_lines(&output);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].ends_with("system:system  v1"), "{}", lines[0]);
    assert_eq!(
        lines[1],
        "2  hospital.events.patient.junk  (not an event envelope: 15 bytes)"
    );
}
