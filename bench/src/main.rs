//! `hospital-bench`: the benchmark suite of issue #7. Run it with `scripts/bench`, which installs
//! wrk and nats-server, builds everything in release mode and calls this binary.
//!
//! In one run: the ceilings (bare axum; axum + JWT + NATS echo), the whole system (`hospital up`,
//! fresh data, seeded) under each scenario at 1 and 64 connections, list and search as the
//! patient table grows, replay, and the memory of every process. Results go to
//! `bench/results/latest.{md,svg,json}`.

mod ceiling;
mod load;
mod replay;
mod report;
mod seed;
mod storage;
mod system;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use load::{Load, Outcome};
use report::{Memory, Results, Run, ScalePoint, Target};
use system::System;

#[derive(Debug, Parser)]
#[command(about = "Benchmarks the whole system against its ceilings")]
struct Args {
    /// Where the results are written (latest.md, latest.svg, latest.json).
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Scratch space for the data directories (on a real disk: fsync is part of the cost).
    #[arg(long, default_value = "target/bench-work")]
    work: PathBuf,
    /// A short run with small tables, to check the suite itself.
    #[arg(long)]
    quick: bool,
    /// Only these parts (comma-separated: ceilings, storage, system, cluster, scale, replay).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ceilings,storage,system,cluster,scale,replay"
    )]
    only: Vec<String>,
    /// Only these scenarios of the system part (login, get_patient, search, register, book,
    /// mixed); all when not given. For profiling one path without the whole run.
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
}

/// Sizes and durations of one run.
struct Plan {
    short: Duration,
    long: Duration,
    /// Patients in the table for the main scenarios.
    patients: u64,
    /// Sizes of the scale test.
    scale: Vec<u64>,
    replay: Vec<usize>,
    /// Doctor and patient pairs the bookings use.
    pairs: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                short: Duration::from_secs(1),
                long: Duration::from_secs(2),
                patients: 5_000,
                scale: vec![1_000, 10_000],
                replay: vec![10_000],
                pairs: 10,
            }
        } else {
            Plan {
                short: Duration::from_secs(5),
                long: Duration::from_secs(10),
                patients: 100_000,
                scale: vec![10_000, 100_000, 1_000_000],
                replay: vec![100_000, 1_000_000],
                pairs: 100,
            }
        }
    }

    fn duration(&self, connections: u32) -> Duration {
        if connections == 1 {
            self.short
        } else {
            self.long
        }
    }
}

const CONNECTIONS: [u32; 2] = [1, 64];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let plan = Plan::new(args.quick);
    if args.work.exists() {
        std::fs::remove_dir_all(&args.work).context("clear the scratch directory")?;
    }
    std::fs::create_dir_all(&args.work)?;
    std::fs::create_dir_all(&args.out)?;
    // Absolute: `hospital up` runs in its data directory and would read a relative path from there.
    let args = Args {
        work: std::path::absolute(&args.work)?,
        ..args
    };
    let script = load::write_script(&args.work)?;
    let hospital = system::hospital_binary()?;
    let mut results = Results {
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        machine: machine(),
        scale_connections: 1,
        ..Results::default()
    };
    // Every run's bookings start a year after the previous run's.
    let mut booking_epoch = next_midnight();

    let wants = |part: &str| args.only.iter().any(|p| p == part);
    let mut echo = BTreeMap::from([(1, 0.0), (64, 0.0)]);
    if wants("ceilings") {
        eprintln!("== ceilings");
        let ceilings = ceiling::start().await?;
        let fixtures = args.work.join("ceiling-fixtures");
        ceiling_fixtures(&fixtures, &ceilings.token)?;
        for (name, addr) in [
            ("ceiling: bare axum", ceilings.bare),
            ("ceiling: JWT + NATS echo", ceilings.echo),
        ] {
            for connections in CONNECTIONS {
                let url = format!("http://{addr}");
                let outcome = measure(
                    &script,
                    "ceiling",
                    &url,
                    connections,
                    plan.duration(connections),
                    &fixtures,
                    0,
                )
                .await?;
                if name.contains("echo") {
                    echo.insert(connections, outcome.per_second());
                }
                results.ceilings.push(Run {
                    scenario: name.into(),
                    connections,
                    outcome,
                    ceiling_per_second: 0.0,
                });
            }
        }
        drop(ceilings);
        for run in &mut results.ceilings {
            run.ceiling_per_second = echo[&run.connections];
        }
    }

    if wants("storage") {
        eprintln!("== storage ceilings");
        results.storage = storage::measure(&args.work).await?;
        eprintln!("   {:?}", results.storage);
    }

    if wants("system") {
        eprintln!("== the system: seeding {} patients", plan.patients);
        let data = args.work.join("system");
        let patient_ids = seed::bulk_patients(&data, 0, plan.patients).await?;
        let running = System::start(&hospital, &data).await?;
        let desk = seed::front_desk(&running.base_url, plan.pairs).await?;
        let fixtures = args.work.join("fixtures");
        seed::write_fixtures(&fixtures, &desk, &patient_ids)?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        results.memory_idle = memory_now(&running);

        let scenarios = [
            ("login", "POST /auth/login"),
            ("get_patient", "GET /api/patients/{id}"),
            ("search", "GET /api/patients?q="),
            ("register", "POST /api/patients"),
            ("book", "POST /api/appointments"),
            ("mixed", "mixed front desk"),
        ];
        let chosen = |scenario: &str| {
            args.scenarios.is_empty() || args.scenarios.iter().any(|s| s == scenario)
        };
        let loader = Loader {
            script: &script,
            base_url: &running.base_url,
            fixtures: &fixtures,
            plan: &plan,
            echo: &echo,
        };
        for (scenario, label) in scenarios.into_iter().filter(|(s, _)| chosen(s)) {
            for connections in CONNECTIONS {
                let sampler = (scenario == "mixed" && connections > 1)
                    .then(|| MemorySampler::start(&running));
                let run = loader
                    .run(scenario, label, connections, &mut booking_epoch)
                    .await?;
                if let Some(sampler) = sampler {
                    results.memory_load = sampler.stop().await;
                }
                results.scenarios.push(run);
            }
        }
        running.stop().await?;
    }

    if wants("cluster") {
        eprintln!("== the system on the three-node cluster");
        let cluster = kit::nats_server::TestNatsCluster::start().await;
        let data = args.work.join("cluster");
        let patient_ids = seed::bulk_patients(&data, 0, plan.patients).await?;
        let running = System::start_on(&hospital, &data, Some(&cluster)).await?;
        let desk = seed::front_desk(&running.base_url, plan.pairs).await?;
        let fixtures = args.work.join("cluster-fixtures");
        seed::write_fixtures(&fixtures, &desk, &patient_ids)?;
        let scenarios = [
            ("get_patient", "GET /api/patients/{id}"),
            ("register", "POST /api/patients"),
            ("book", "POST /api/appointments"),
        ];
        let loader = Loader {
            script: &script,
            base_url: &running.base_url,
            fixtures: &fixtures,
            plan: &plan,
            echo: &echo,
        };
        for (scenario, label) in scenarios {
            let run = loader.run(scenario, label, 64, &mut booking_epoch).await?;
            results.cluster.push(run);
        }
        running.stop().await?;
    }

    if wants("scale") {
        eprintln!("== scale");
        let data = args.work.join("scale");
        let fixtures = args.work.join("scale-fixtures");
        let mut ids = Vec::new();
        for (i, &size) in plan.scale.iter().enumerate() {
            eprintln!("   {size} patients");
            ids.extend(
                seed::bulk_patients(&data, ids.len() as u64, size - ids.len() as u64).await?,
            );
            let running = System::start(&hospital, &data).await?;
            let desk = if i == 0 {
                seed::front_desk(&running.base_url, 1).await?
            } else {
                seed::returning_front_desk(&running.base_url).await?
            };
            seed::write_fixtures(&fixtures, &desk, &ids)?;
            // A discarded run of each first: a freshly started system (cold caches, the disk
            // still writing back the previous part's files) answers its first seconds slower,
            // which would be charged to whichever size comes first.
            for scenario in ["list", "search"] {
                measure(
                    &script,
                    scenario,
                    &running.base_url,
                    1,
                    plan.short,
                    &fixtures,
                    0,
                )
                .await?;
            }
            let list = measure(
                &script,
                "list",
                &running.base_url,
                1,
                plan.short,
                &fixtures,
                0,
            )
            .await?;
            let search = measure(
                &script,
                "search",
                &running.base_url,
                1,
                plan.short,
                &fixtures,
                0,
            )
            .await?;
            results.scale.push(ScalePoint {
                patients: size,
                list,
                search,
            });
            running.stop().await?;
        }
    }

    if wants("replay") {
        eprintln!("== replay");
        // The scale part's million-patient databases are gone and written back before the
        // replay starts, so their writeback does not compete with what is measured.
        std::fs::remove_dir_all(args.work.join("scale")).ok();
        std::process::Command::new("sync").status().ok();
        for &count in &plan.replay {
            eprintln!("   {count} events");
            results.replay.push(replay::run(count).await);
        }
    }

    results.targets = targets(&results);
    results.notes = notes(&plan);
    let markdown = results.markdown("latest.svg");
    std::fs::write(args.out.join("latest.md"), &markdown)?;
    std::fs::write(args.out.join("latest.svg"), results.svg())?;
    std::fs::write(
        args.out.join("latest.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    println!("{markdown}");
    eprintln!("written to {}", args.out.join("latest.md").display());
    std::fs::remove_dir_all(&args.work).ok();
    Ok(())
}

/// A pause before each run, so requests still in flight from the previous run (64 logins take
/// a second to drain) do not count against the next.
const SETTLE: Duration = Duration::from_secs(2);

/// What loading one running system takes: wrk's script, where, its fixtures, how long, and the
/// echo ceilings the figures are compared with.
struct Loader<'a> {
    script: &'a Path,
    base_url: &'a str,
    fixtures: &'a Path,
    plan: &'a Plan,
    echo: &'a BTreeMap<u32, f64>,
}

impl Loader<'_> {
    /// One scenario at `connections`, as a row of the results. Each run books from a fresh
    /// epoch, so no booking collides with an earlier run's.
    async fn run(
        &self,
        scenario: &str,
        label: &str,
        connections: u32,
        booking_epoch: &mut i64,
    ) -> anyhow::Result<Run> {
        *booking_epoch += 400 * 86_400;
        let outcome = measure(
            self.script,
            scenario,
            self.base_url,
            connections,
            self.plan.duration(connections),
            self.fixtures,
            *booking_epoch,
        )
        .await?;
        Ok(Run {
            scenario: label.into(),
            connections,
            outcome,
            ceiling_per_second: self.echo[&connections],
        })
    }
}

async fn measure(
    script: &Path,
    scenario: &str,
    base_url: &str,
    connections: u32,
    duration: Duration,
    fixtures: &Path,
    base_epoch: i64,
) -> anyhow::Result<Outcome> {
    tokio::time::sleep(SETTLE).await;
    let outcome = load::run(
        script,
        &Load {
            scenario,
            base_url,
            connections,
            duration,
            fixtures,
            base_epoch,
        },
    )
    .await?;
    eprintln!(
        "   {scenario:<12} c={connections:<3} {:>8.0}/s  p50 {:>6.2} ms  p99 {:>7.2} ms  errors {}",
        outcome.per_second(),
        outcome.p50_us as f64 / 1000.0,
        outcome.p99_us as f64 / 1000.0,
        outcome.errors
    );
    Ok(outcome)
}

fn ceiling_fixtures(dir: &Path, token: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("token"), token)?;
    for empty in ["login", "patient_ids", "queries", "pairs"] {
        std::fs::write(dir.join(empty), "")?;
    }
    Ok(())
}

/// Memory of every process of the system, now.
fn memory_now(system: &System) -> Vec<Memory> {
    system
        .processes()
        .into_iter()
        .filter_map(|p| {
            Some(Memory {
                resident: system::resident_bytes(p.pid)?,
                proportional: system::proportional_bytes(p.pid)?,
                process: p.name,
            })
        })
        .collect()
}

/// Samples the system's memory four times a second and keeps each process's highest figure.
struct MemorySampler {
    peaks: Arc<Mutex<BTreeMap<String, Memory>>>,
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl MemorySampler {
    fn start(system: &System) -> MemorySampler {
        let processes = system.processes();
        let peaks = Arc::new(Mutex::new(BTreeMap::new()));
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn({
            let peaks = peaks.clone();
            let stop = stop.clone();
            async move {
                while !stop.is_cancelled() {
                    for p in &processes {
                        let (Some(resident), Some(proportional)) = (
                            system::resident_bytes(p.pid),
                            system::proportional_bytes(p.pid),
                        ) else {
                            continue;
                        };
                        let mut peaks = peaks.lock().expect("not poisoned");
                        let peak = peaks.entry(p.name.clone()).or_insert(Memory {
                            process: p.name.clone(),
                            resident: 0,
                            proportional: 0,
                        });
                        peak.resident = peak.resident.max(resident);
                        peak.proportional = peak.proportional.max(proportional);
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        });
        MemorySampler { peaks, stop, task }
    }

    async fn stop(self) -> Vec<Memory> {
        self.stop.cancel();
        let _ = self.task.await;
        let peaks = self.peaks.lock().expect("not poisoned");
        peaks.values().cloned().collect()
    }
}

/// Issue #7's targets, judged on this run.
fn targets(results: &Results) -> Vec<Target> {
    let find = |label: &str, connections: u32| {
        results
            .scenarios
            .iter()
            .find(|r| r.scenario == label && r.connections == connections)
    };
    let mut targets = Vec::new();
    if let Some(get) = find("GET /api/patients/{id}", 64) {
        targets.push(Target {
            what: "`GET /api/patients/{id}`, 64 connections".into(),
            wanted: "≥ 60% of the echo ceiling, p99 ≤ 10 ms".into(),
            measured: format!(
                "{:.0}% ({:.0}/s of {:.0}/s), p99 {:.2} ms",
                get.ratio() * 100.0,
                get.outcome.per_second(),
                get.ceiling_per_second,
                get.outcome.p99_us as f64 / 1000.0
            ),
            met: get.ratio() >= 0.6 && get.outcome.p99_us <= 10_000 && get.outcome.errors == 0,
        });
    }
    for (label, wanted) in [
        ("POST /api/patients", 5_000.0),
        ("POST /api/appointments", 3_000.0),
    ] {
        if let Some(run) = find(label, 64) {
            targets.push(Target {
                what: format!("`{label}`, 64 connections"),
                wanted: format!("≥ {wanted:.0}/s, no errors"),
                measured: format!(
                    "{:.0}/s, {} errors",
                    run.outcome.per_second(),
                    run.outcome.errors
                ),
                met: run.outcome.per_second() >= wanted && run.outcome.errors == 0,
            });
        }
    }
    if let (Some(first), Some(last)) = (results.scale.first(), results.scale.last()) {
        for (what, p99s) in [
            (
                "list",
                results
                    .scale
                    .iter()
                    .map(|p| p.list.p99_us)
                    .collect::<Vec<_>>(),
            ),
            (
                "search",
                results.scale.iter().map(|p| p.search.p99_us).collect(),
            ),
        ] {
            // Flat means every size within 2× of every other, not only the last of the first.
            let lowest = p99s.iter().copied().min().unwrap_or(0).max(1);
            let highest = p99s.iter().copied().max().unwrap_or(0);
            let all = p99s
                .iter()
                .map(|us| format!("{:.2}", *us as f64 / 1000.0))
                .collect::<Vec<_>>()
                .join(" → ");
            targets.push(Target {
                what: format!(
                    "{what} p99, {} → {} patients",
                    first.patients, last.patients
                ),
                wanted: "within 2×".into(),
                measured: format!(
                    "{all} ms (highest {:.2}× the lowest)",
                    highest as f64 / lowest as f64
                ),
                met: highest <= 2 * lowest,
            });
        }
    }
    for replay in &results.replay {
        targets.push(Target {
            what: format!("replay of {} events", replay.events),
            wanted: "≥ 50,000 events/s".into(),
            measured: format!("{:.0} events/s", replay.rebuild_per_second),
            met: replay.rebuild_per_second >= 50_000.0,
        });
    }
    let proportional: u64 = results.memory_idle.iter().map(|m| m.proportional).sum();
    let resident: u64 = results.memory_idle.iter().map(|m| m.resident).sum();
    targets.push(Target {
        what: "whole system idle memory".into(),
        wanted: "≤ 100 MB".into(),
        measured: format!(
            "{:.1} MB (sum of PSS; the sum of RSS, which counts the shared binary once per process, is {:.1} MB)",
            proportional as f64 / 1e6,
            resident as f64 / 1e6
        ),
        met: proportional <= 100_000_000,
    });
    targets
}

fn notes(plan: &Plan) -> Vec<String> {
    vec![
        format!(
            "wrk on loopback, 1 thread for 1 connection ({} s), 2 threads for 64 ({} s); the system, wrk and the ceilings share the machine's cores.",
            plan.short.as_secs(),
            plan.long.as_secs()
        ),
        format!(
            "`hospital up`, release build, fresh data directory, JetStream `sync_interval: always`, SQLite `synchronous = FULL`; {} patients loaded into the patient database before the start (reads), {} doctors and {} patients registered through the API (bookings).",
            plan.patients, plan.pairs, plan.pairs
        ),
        "Login limits raised to 1000 failures per username and per address: an attempt counts until its password is checked, so 64 concurrent logins of one user from one address are over the defaults (5 and 50) by design.".to_owned(),
    ]
}

/// The next UTC midnight, as Unix seconds: bookings start after it, never in the past.
fn next_midnight() -> i64 {
    let now = chrono::Utc::now().timestamp();
    (now / 86_400 + 1) * 86_400
}

/// "CPU model, N cores, M GiB, Linux x.y".
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{model}, {cores} cores, {memory_gib:.0} GiB, Linux {}",
        kernel.trim()
    )
}
