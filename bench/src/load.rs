//! Runs wrk, the load generator, as a second process on loopback, with `load.lua`, and reads
//! the figures its `done` hook prints.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

const SCRIPT: &str = include_str!("load.lua");

/// One wrk run: which scenario of `load.lua`, against what, how hard, for how long.
#[derive(Debug, Clone)]
pub struct Load<'a> {
    pub scenario: &'a str,
    pub base_url: &'a str,
    pub connections: u32,
    pub duration: Duration,
    /// The directory of fixtures `load.lua` reads (token, ids, queries, pairs, login).
    pub fixtures: &'a Path,
    /// Where the bookings of this run start (Unix seconds); every run gets its own range.
    pub base_epoch: i64,
}

/// What wrk measured.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default)]
pub struct Outcome {
    pub requests: u64,
    pub duration_us: u64,
    /// Connection, read, write and timeout errors plus answers with a status of 400 or more.
    pub errors: u64,
    pub status_errors: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl Outcome {
    pub fn per_second(&self) -> f64 {
        if self.duration_us == 0 {
            return 0.0;
        }
        self.requests as f64 / (self.duration_us as f64 / 1e6)
    }
}

/// The wrk script, written once into `dir`.
pub fn write_script(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("load.lua");
    std::fs::write(&path, SCRIPT).context("write load.lua")?;
    Ok(path)
}

/// Runs wrk once and returns its figures. wrk uses one thread per connection up to two (this
/// machine's core count is the useful maximum).
pub async fn run(script: &Path, load: &Load<'_>) -> anyhow::Result<Outcome> {
    let threads = load.connections.min(2);
    let output = tokio::process::Command::new("wrk")
        .arg("-t")
        .arg(threads.to_string())
        .arg("-c")
        .arg(load.connections.to_string())
        .arg("-d")
        .arg(format!("{}s", load.duration.as_secs().max(1)))
        .arg("--timeout")
        .arg("10s")
        .arg("-s")
        .arg(script)
        .arg(load.base_url)
        .arg("--")
        .arg(load.scenario)
        .arg(load.fixtures)
        .arg(threads.to_string())
        .arg(load.base_epoch.to_string())
        .output()
        .await
        .context("run wrk (scripts/bench installs it)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed ({}): {stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    for sample in stdout.lines().filter(|l| l.starts_with("BENCH_ERROR ")) {
        eprintln!("   {sample}");
    }
    parse(&stdout).with_context(|| format!("wrk printed no result:\n{stdout}"))
}

/// The figures from wrk's output: the line `load.lua`'s `done` writes.
pub fn parse(stdout: &str) -> anyhow::Result<Outcome> {
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("BENCH_RESULT "))
        .context("no BENCH_RESULT line")?;
    Ok(serde_json::from_str(line)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_figures_among_wrks_own_lines() {
        let stdout = "Running 1s test @ http://127.0.0.1:1\n  2 threads and 64 connections\n\
            BENCH_RESULT {\"requests\":5000,\"duration_us\":2000000,\"errors\":3,\"status_errors\":2,\"p50_us\":400,\"p99_us\":2500,\"max_us\":9000}\n\
            Requests/sec:   2500.00\n";
        let outcome = parse(stdout).unwrap();
        assert_eq!(outcome.requests, 5000);
        assert_eq!(outcome.errors, 3);
        assert_eq!(outcome.p99_us, 2500);
        assert!((outcome.per_second() - 2500.0).abs() < 1e-9);
    }

    #[test]
    fn no_result_line_is_an_error() {
        assert!(parse("Running 1s test\n").is_err());
    }
}
