//! The results: a Markdown report and an SVG plot, both written beside each other.

use std::fmt::Write as _;

use serde::Serialize;

use crate::load::Outcome;
use crate::replay::ReplayFigures;

/// One measured run of a scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub scenario: String,
    pub connections: u32,
    pub outcome: Outcome,
    /// The echo ceiling's requests/s at the same number of connections.
    pub ceiling_per_second: f64,
}

impl Run {
    pub fn ratio(&self) -> f64 {
        if self.ceiling_per_second == 0.0 {
            0.0
        } else {
            self.outcome.per_second() / self.ceiling_per_second
        }
    }
}

/// List and search at one size of the patient table.
#[derive(Debug, Clone, Serialize)]
pub struct ScalePoint {
    pub patients: u64,
    pub list: Outcome,
    pub search: Outcome,
}

/// The memory of one process.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub process: String,
    /// VmRSS, bytes.
    pub resident: u64,
    /// Pss, bytes: shared pages divided among the processes sharing them.
    pub proportional: u64,
}

/// A target of issue #7 and whether this run met it.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub what: String,
    pub wanted: String,
    pub measured: String,
    pub met: bool,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Results {
    pub date: String,
    pub machine: String,
    pub notes: Vec<String>,
    pub ceilings: Vec<Run>,
    pub storage: crate::storage::StorageCeilings,
    pub scenarios: Vec<Run>,
    /// The target scenarios again with NATS as the three-node cluster.
    pub cluster: Vec<Run>,
    pub scale_connections: u32,
    pub scale: Vec<ScalePoint>,
    pub replay: Vec<ReplayFigures>,
    pub memory_idle: Vec<Memory>,
    pub memory_load: Vec<Memory>,
    pub targets: Vec<Target>,
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

fn run_table(out: &mut String, runs: &[Run]) {
    out.push_str("| scenario | connections | requests/s | of echo ceiling | p50 ms | p99 ms | max ms | requests | errors |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for run in runs {
        let o = &run.outcome;
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.0}% | {} | {} | {} | {} | {} |",
            run.scenario,
            run.connections,
            o.per_second(),
            run.ratio() * 100.0,
            ms(o.p50_us),
            ms(o.p99_us),
            ms(o.max_us),
            o.requests,
            o.errors
        );
    }
}

fn memory_table(out: &mut String, rows: &[Memory]) {
    out.push_str("| process | RSS MiB | PSS MiB |\n|---|---:|---:|\n");
    for m in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            m.process,
            mib(m.resident),
            mib(m.proportional)
        );
    }
    let resident: u64 = rows.iter().map(|m| m.resident).sum();
    let proportional: u64 = rows.iter().map(|m| m.proportional).sum();
    let _ = writeln!(
        out,
        "| **whole system** | **{}** | **{}** |",
        mib(resident),
        mib(proportional)
    );
}

impl Results {
    pub fn markdown(&self, plot_file: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# Benchmark results\n");
        let _ = writeln!(out, "{} on {}.\n", self.date, self.machine);
        for note in &self.notes {
            let _ = writeln!(out, "- {note}");
        }
        if !self.notes.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(out, "![throughput and latency]({plot_file})\n");

        out.push_str("## Targets\n\n| target | wanted | measured | met |\n|---|---|---|---|\n");
        for t in &self.targets {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                t.what,
                t.wanted,
                t.measured,
                if t.met { "yes" } else { "**no**" }
            );
        }

        out.push_str("\n## Ceilings\n\nA bare axum handler, and an axum handler that verifies the token as the gateway does and makes one NATS request/reply to an echo responder. Ratios below are to the echo ceiling at the same number of connections.\n\n");
        run_table(&mut out, &self.ceilings);
        let st = &self.storage;
        let _ = writeln!(
            out,
            "\nWhat one durable write costs here (the bound of every write and of every audited read):\n\n\
             | storage ceiling | figure |\n|---|---:|\n\
             | fsync of a 600-byte append: mean / p50 / p99 | {:.0} / {:.0} / {:.0} µs |\n\
             | JetStream (`sync_interval: always`) acknowledged publishes, one at a time | {:.0}/s |\n\
             | JetStream, 64 publishes in flight | {:.0}/s |\n\
             | JetStream, atomic batches of 64, one at a time | {:.0}/s |\n\
             | JetStream, atomic batches of 8, one at a time | {:.0}/s |\n\
             | three-node cluster, three replicas: atomic batches of 64 / of 8 | {:.0}/s / {:.0}/s |",
            st.fsync_mean_us,
            st.fsync_p50_us,
            st.fsync_p99_us,
            st.jetstream_one_at_a_time,
            st.jetstream_64_in_flight,
            st.jetstream_atomic_64,
            st.jetstream_atomic_8,
            st.cluster_atomic_64,
            st.cluster_atomic_8
        );

        out.push_str("\n## The system\n\nThrough the gateway, as the front desk (a receptionist's token), every request audited.\n\n");
        run_table(&mut out, &self.scenarios);
        if !self.cluster.is_empty() {
            out.push_str("\n## The system on the three-node cluster\n\nThe targets' scenarios again at 64 connections, with NATS as the three-node cluster of `deploy/nats` on the same machine (every stream kept by all three nodes, `HOSPITAL_STREAM_REPLICAS=3`), as issue #9 deploys it: nats-server stages an atomic batch in memory there, not in a file store of its own. Ratios are to the echo ceiling above (measured on one server).\n\n");
            run_table(&mut out, &self.cluster);
        }

        let _ = writeln!(
            out,
            "\n## Scale: list and search as the patient table grows\n\n{} connection(s); a list is a page of 50 after a random patient, a search the start of a first name and a surname's initial, which fills its page of 20 at every size.\n",
            self.scale_connections
        );
        out.push_str("| patients | list req/s | list p50 ms | list p99 ms | search req/s | search p50 ms | search p99 ms | errors |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for p in &self.scale {
            let _ = writeln!(
                out,
                "| {} | {:.0} | {} | {} | {:.0} | {} | {} | {} |",
                p.patients,
                p.list.per_second(),
                ms(p.list.p50_us),
                ms(p.list.p99_us),
                p.search.per_second(),
                ms(p.search.p50_us),
                ms(p.search.p99_us),
                p.list.errors + p.search.errors
            );
        }

        out.push_str("\n## Replay\n\n`hospital replay appointment`'s rebuild of the appointment service's directory, and the live read-model runner catching up over the same events.\n\n| events | rebuild s | rebuild events/s | live catch-up events/s |\n|---:|---:|---:|---:|\n");
        for r in &self.replay {
            let _ = writeln!(
                out,
                "| {} | {:.2} | {:.0} | {:.0} |",
                r.events, r.rebuild_seconds, r.rebuild_per_second, r.live_per_second
            );
        }

        out.push_str("\n## Memory\n\nEvery process of `hospital up`: RSS (VmRSS) and PSS (shared pages, such as the one `hospital` binary all components run, divided among the processes that share them; the sum of PSS is the memory the system takes).\n\n### Idle (seeded, no load)\n\n");
        memory_table(&mut out, &self.memory_idle);
        out.push_str(
            "\n### Under load (the highest sample during the mixed workload at 64 connections)\n\n",
        );
        memory_table(&mut out, &self.memory_load);
        out
    }

    /// Two panels: throughput of each scenario at 64 connections as a share of the echo
    /// ceiling, and p99 of list and search against the number of patients.
    pub fn svg(&self) -> String {
        let runs: Vec<&Run> = self
            .ceilings
            .iter()
            .chain(&self.scenarios)
            .filter(|r| r.connections > 1)
            .collect();
        let (width, height) = (900.0, 420.0);
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
        );
        svg.push_str(r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            svg,
            r#"<text x="20" y="22" font-size="15" font-weight="bold">Requests/s at 64 connections (share of the JWT + NATS echo ceiling)</text>"#
        );
        let max = runs
            .iter()
            .map(|r| r.outcome.per_second())
            .fold(1.0, f64::max);
        let (left, bar_h, gap, top) = (190.0, 18.0, 6.0, 36.0);
        let span = 420.0;
        for (i, run) in runs.iter().enumerate() {
            let y = top + i as f64 * (bar_h + gap);
            let w = span * run.outcome.per_second() / max;
            let colour = if run.scenario.starts_with("ceiling") {
                "#9aa5b1"
            } else {
                "#2f6fb3"
            };
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{}" text-anchor="end">{}</text><rect x="{left}" y="{y}" width="{w:.1}" height="{bar_h}" fill="{colour}"/><text x="{}" y="{}">{:.0}/s · {:.0}%</text>"#,
                left - 6.0,
                y + 13.0,
                escape(&run.scenario),
                left + w + 4.0,
                y + 13.0,
                run.outcome.per_second(),
                run.ratio() * 100.0
            );
        }
        // Scale panel.
        let (px, py, pw, ph) = (700.0, 60.0, 170.0, 250.0);
        let _ = writeln!(
            svg,
            r#"<text x="{px}" y="{}" font-weight="bold">p99 ms by patients</text>"#,
            py - 14.0
        );
        let _ = writeln!(
            svg,
            r##"<line x1="{px}" y1="{}" x2="{}" y2="{}" stroke="#333"/><line x1="{px}" y1="{py}" x2="{px}" y2="{}" stroke="#333"/>"##,
            py + ph,
            px + pw,
            py + ph,
            py + ph
        );
        let worst = self
            .scale
            .iter()
            .flat_map(|p| [p.list.p99_us, p.search.p99_us])
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{:.1}</text><text x="{}" y="{}" text-anchor="end">0</text>"#,
            px - 4.0,
            py + 4.0,
            worst / 1000.0,
            px - 4.0,
            py + ph
        );
        let count = self.scale.len().max(2) as f64;
        for (series, colour, pick) in [("list", "#2f6fb3", 0usize), ("search", "#d9822b", 1usize)] {
            let points: Vec<String> = self
                .scale
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let value = if pick == 0 {
                        p.list.p99_us
                    } else {
                        p.search.p99_us
                    } as f64;
                    let x = px + pw * i as f64 / (count - 1.0);
                    let y = py + ph - ph * value / worst;
                    format!("{x:.1},{y:.1}")
                })
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                points.join(" ")
            );
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{}" fill="{colour}">{series}</text>"#,
                px + 10.0,
                py + 14.0 + 14.0 * pick as f64
            );
        }
        for (i, p) in self.scale.iter().enumerate() {
            let x = px + pw * i as f64 / (count - 1.0);
            let _ = writeln!(
                svg,
                r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
                py + ph + 16.0,
                short_count(p.patients)
            );
        }
        let _ = writeln!(
            svg,
            r##"<text x="20" y="{}" fill="#555">{}</text>"##,
            height - 12.0,
            escape(&format!("{} · {}", self.date, self.machine))
        );
        svg.push_str("</svg>\n");
        svg
    }
}

fn short_count(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(requests: u64, p99_us: u64) -> Outcome {
        Outcome {
            requests,
            duration_us: 1_000_000,
            p50_us: p99_us / 2,
            p99_us,
            max_us: p99_us * 2,
            ..Outcome::default()
        }
    }

    #[test]
    fn the_report_shows_ratios_targets_and_totals() {
        let results = Results {
            date: "2026-12-06".into(),
            machine: "test".into(),
            ceilings: vec![Run {
                scenario: "ceiling: JWT + NATS echo".into(),
                connections: 64,
                outcome: outcome(20_000, 3_000),
                ceiling_per_second: 20_000.0,
            }],
            scenarios: vec![Run {
                scenario: "GET /api/patients/{id}".into(),
                connections: 64,
                outcome: outcome(15_000, 6_000),
                ceiling_per_second: 20_000.0,
            }],
            scale: vec![ScalePoint {
                patients: 10_000,
                list: outcome(900, 2_000),
                search: outcome(800, 2_500),
            }],
            memory_idle: vec![
                Memory {
                    process: "gateway".into(),
                    resident: 10 * 1024 * 1024,
                    proportional: 4 * 1024 * 1024,
                },
                Memory {
                    process: "patient".into(),
                    resident: 5 * 1024 * 1024,
                    proportional: 2 * 1024 * 1024,
                },
            ],
            targets: vec![Target {
                what: "x".into(),
                wanted: "y".into(),
                measured: "z".into(),
                met: false,
            }],
            ..Results::default()
        };
        let md = results.markdown("latest.svg");
        assert!(
            md.contains(
                "| GET /api/patients/{id} | 64 | 15000 | 75% | 3.00 | 6.00 | 12.00 | 15000 | 0 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| **whole system** | **15.0** | **6.0** |"),
            "{md}"
        );
        assert!(md.contains("| x | y | z | **no** |"), "{md}");
        let svg = results.svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("15000/s · 75%"), "{svg}");
        assert!(svg.contains(">10k<"), "{svg}");
    }
}
