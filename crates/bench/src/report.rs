//! Medians over rounds, the markdown table, the targets of the issue, and the machine it all
//! ran on.

use crate::load::Outcome;
use std::fmt::Write;
use std::time::Duration;

/// Medians over the timed rounds of one measurement.
#[derive(Debug, Clone)]
pub struct Stats {
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Over the warm-up and every round.
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Stats {
    pub fn of(warmup: &Outcome, rounds: &[Outcome]) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            per_second: median(rounds.iter().map(Outcome::per_second)),
            p50_ms: median(rounds.iter().map(|r| ms(r.latency.value_at_quantile(0.50)))),
            p99_ms: median(rounds.iter().map(|r| ms(r.latency.value_at_quantile(0.99)))),
            errors: warmup.errors + rounds.iter().map(|r| r.errors).sum::<u64>(),
            first_error: std::iter::once(warmup)
                .chain(rounds)
                .find_map(|r| r.first_error.clone()),
        }
    }
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// One line of a backend's table.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: &'static str,
    pub what: String,
    /// Whether `perf` recorded the server meanwhile, which slows it.
    pub profiled: bool,
    pub server: Stats,
    /// Peak RSS of the server during this scenario, in bytes.
    pub peak_rss: Option<u64>,
    /// The database alone on the same SQL, and how many statements one request runs.
    pub baseline: Option<(Stats, usize)>,
}

/// Everything measured on one backend.
#[derive(Debug, Clone)]
pub struct BackendReport {
    pub backend: &'static str,
    pub rows: Vec<Row>,
    /// The export and import of the big company, when measured.
    pub transfer: Option<crate::transfer::Transfer>,
    pub big_leads: u32,
    pub small: (u32, u32),
    pub seed_big: Duration,
    pub seed_small: Duration,
    /// What the baseline is, in a sentence.
    pub baseline_tool: String,
}

impl BackendReport {
    fn row(&self, name: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.name == name)
    }

    pub fn errors(&self) -> u64 {
        self.rows
            .iter()
            .map(|r| r.server.errors + r.baseline.as_ref().map_or(0, |(b, _)| b.errors))
            .sum()
    }
}

/// How the load was applied.
#[derive(Debug, Clone)]
pub struct Settings {
    pub connections: usize,
    pub warmup: Duration,
    pub rounds: usize,
    pub duration: Duration,
    pub smoke: bool,
}

/// The machine and the moment.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory: String,
    pub kernel: String,
    pub date: String,
    pub commit: String,
    pub load_before: String,
}

impl Machine {
    pub fn now() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map_or_else(|| "unknown CPU".into(), |(_, name)| name.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<f64>().ok())
            .map_or_else(
                || "?".into(),
                |kib| format!("{:.0} GiB", kib / 1024.0 / 1024.0),
            );
        let commit = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map_or_else(
                || "?".into(),
                |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
            );
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "?".into(), |k| k.trim().to_owned()),
            date: leads_types::Timestamp::now().to_string()[..16].replace('T', " ") + " UTC",
            commit,
            load_before: load_average(),
        }
    }
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// A whole number with thousands separators: 12,345.
pub fn thousands(n: f64) -> String {
    if !n.is_finite() {
        return "–".into();
    }
    let whole = n.round() as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.1}")
    }
}

/// Whole seconds as such, shorter spans with one decimal.
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.1}")
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1024.0 / 1024.0)
}

/// The whole report in markdown.
pub fn markdown(
    machine: &Machine,
    settings: &Settings,
    backends: &[BackendReport],
    load_after: &str,
) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Measured {} on {} × {} ({}, Linux {}), commit {}; load average {} before, {} after.",
        machine.date,
        machine.cores,
        machine.cpu,
        machine.memory,
        machine.kernel,
        machine.commit,
        machine.load_before,
        load_after
    );
    let _ = writeln!(
        md,
        "Load: {} keep-alive connections on loopback from one load-generator thread on the same machine \
         (one connection for the scenarios with latency targets: searches, statistics, dashboard pages); \
         {} s warm-up, then the median of {} round{} of {} s.{}",
        settings.connections,
        seconds(settings.warmup),
        settings.rounds,
        if settings.rounds == 1 { "" } else { "s" },
        seconds(settings.duration),
        if settings.smoke {
            " **Smoke run on tiny data: these numbers mean nothing.**"
        } else {
            ""
        }
    );
    for b in backends {
        let _ = writeln!(md);
        let _ = writeln!(
            md,
            "**{}**: 1 company with {} leads (seeded in {:.1} s) and {} with {} each ({:.1} s). \
             Database alone: {}.",
            b.backend,
            thousands(f64::from(b.big_leads)),
            b.seed_big.as_secs_f64(),
            b.small.0,
            thousands(f64::from(b.small.1)),
            b.seed_small.as_secs_f64(),
            b.baseline_tool
        );
        let _ = writeln!(md);
        let _ = writeln!(
            md,
            "| scenario | what | req/s | p50 ms | p99 ms | errors | peak RSS | database alone q/s | p50 ms | p99 ms | server/database |"
        );
        let _ = writeln!(md, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        for r in &b.rows {
            let s = &r.server;
            let (base_rate, base_p50, base_p99, ratio) = match &r.baseline {
                Some((base, statements)) => (
                    format!(
                        "{}{}",
                        thousands(base.per_second),
                        if *statements > 1 {
                            format!(" ({statements} stmts)")
                        } else {
                            String::new()
                        }
                    ),
                    ms(base.p50_ms),
                    ms(base.p99_ms),
                    format!("{:.0}%", 100.0 * s.per_second / base.per_second),
                ),
                None => ("–".into(), "–".into(), "–".into(), "–".into()),
            };
            let _ = writeln!(
                md,
                "| {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.name,
                if r.profiled { " (under perf)" } else { "" },
                r.what,
                thousands(s.per_second),
                ms(s.p50_ms),
                ms(s.p99_ms),
                s.errors,
                r.peak_rss.map_or_else(|| "?".into(), mib),
                base_rate,
                base_p50,
                base_p99,
                ratio
            );
        }
    }
    for b in backends {
        if let Some(t) = &b.transfer {
            let _ = writeln!(md);
            let _ = writeln!(
                md,
                "**{} export and import**: `POST /exports` of the big company until `completed`: \
                 {:.2} s for {} rows; the server's resident memory grew by {} while it ran \
                 (its peak, VmHWM after `/proc/PID/clear_refs` reset it just before the export, \
                 less VmRSS then). `leads import` of that file into an empty company: {:.2} s \
                 for {} rows.",
                b.backend,
                t.export.as_secs_f64(),
                thousands(t.exported_rows as f64),
                mib(t.rss_growth()),
                t.import.as_secs_f64(),
                thousands(t.imported_rows as f64),
            );
        }
    }
    let targets = targets(backends);
    if !targets.is_empty() {
        let _ = writeln!(md);
        let _ = writeln!(md, "| target | measured | |");
        let _ = writeln!(md, "|---|--:|---|");
        for t in targets {
            let _ = writeln!(md, "| {} | {} | {} |", t.what, t.measured, t.verdict);
        }
    }
    for b in backends {
        for r in &b.rows {
            let errors = [Some(&r.server), r.baseline.as_ref().map(|(s, _)| s)];
            for e in errors
                .into_iter()
                .flatten()
                .filter_map(|s| s.first_error.as_ref())
            {
                let _ = writeln!(md, "\n{} {}: first error: `{e}`", b.backend, r.name);
            }
        }
    }
    md
}

struct Target {
    what: String,
    measured: String,
    verdict: String,
}

/// `value` against a floor (`at_least`) or a ceiling: "met", or "missed by N%".
fn verdict(value: f64, goal: f64, at_least: bool) -> String {
    let met = if at_least {
        value >= goal
    } else {
        value < goal
    };
    if !value.is_finite() {
        "not measured".into()
    } else if met {
        "met".into()
    } else if at_least {
        format!("**missed by {:.0}%**", 100.0 * (goal - value) / goal)
    } else {
        format!("**missed: {:.2}× the limit**", value / goal)
    }
}

fn targets(backends: &[BackendReport]) -> Vec<Target> {
    let mut out = Vec::new();
    for b in backends {
        let sqlite = b.backend == "SQLite";
        if let Some(t) = &b.transfer {
            let goal = if sqlite { 10.0 } else { 20.0 };
            out.push(Target {
                what: format!("{} export of the big company < {goal} s", b.backend),
                measured: format!("{:.2} s", t.export.as_secs_f64()),
                verdict: verdict(t.export.as_secs_f64(), goal, false),
            });
            out.push(Target {
                what: format!("{} server RSS growth during the export < 32 MiB", b.backend),
                measured: mib(t.rss_growth()),
                verdict: verdict(t.rss_growth() as f64, 32.0 * 1024.0 * 1024.0, false),
            });
            if sqlite {
                out.push(Target {
                    what: "SQLite import of the big company's file < 60 s".into(),
                    measured: format!("{:.2} s", t.import.as_secs_f64()),
                    verdict: verdict(t.import.as_secs_f64(), 60.0, false),
                });
            }
        }
        let first = b.row("first page");
        if let (true, Some(first)) = (sqlite, first) {
            out.push(Target {
                what: "SQLite first page ≥ 10,000 req/s".into(),
                measured: thousands(first.server.per_second),
                verdict: verdict(first.server.per_second, 10_000.0, true),
            });
            out.push(Target {
                what: "SQLite first page p99 < 10 ms".into(),
                measured: format!("{} ms", ms(first.server.p99_ms)),
                verdict: verdict(first.server.p99_ms, 10.0, false),
            });
        }
        if let (false, Some(first)) = (sqlite, first) {
            if let Some((base, _)) = &first.baseline {
                let share = first.server.per_second / base.per_second;
                out.push(Target {
                    what: format!("{} first page ≥ 70% of the database alone", b.backend),
                    measured: format!("{:.0}%", 100.0 * share),
                    verdict: verdict(share, 0.7, true),
                });
            }
        }
        if let (Some(first), Some(deep)) = (first, b.row("deep page")) {
            let ratio = deep.server.p50_ms / first.server.p50_ms;
            out.push(Target {
                what: format!("{} deep page p50 within 1.2× the first page's", b.backend),
                measured: format!(
                    "{ratio:.2}× (p99 {:.2}×)",
                    deep.server.p99_ms / first.server.p99_ms
                ),
                verdict: verdict(ratio, 1.2, false),
            });
        }
        if let Some(create) = b.row("create") {
            let goal = if sqlite { 5_000.0 } else { 3_000.0 };
            out.push(Target {
                what: format!("{} creates ≥ {}/s, durable", b.backend, thousands(goal)),
                measured: thousands(create.server.per_second),
                verdict: verdict(create.server.per_second, goal, true),
            });
        }
        // A row's creates/s as a share of the plain creates' in the same run.
        let beside_creates =
            |name: &str| Some(b.row(name)?.server.per_second / b.row("create")?.server.per_second);
        if let Some(share) = beside_creates("create, webhook subscribed") {
            out.push(Target {
                what: format!(
                    "{} creates with a subscribed endpoint ≥ 90% of those without",
                    b.backend
                ),
                measured: format!("{:.0}%", 100.0 * share),
                verdict: verdict(share, 0.9, true),
            });
        }
        if let Some(share) = beside_creates("create, echoed") {
            out.push(Target {
                what: format!(
                    "{} creates with each answer echoed to the receiver by the load generator, whose echo does no database work (this machine's ceiling for the line above)",
                    b.backend
                ),
                measured: format!("{:.0}%", 100.0 * share),
                verdict: "no goal".into(),
            });
        }
        if let (true, Some(delivery)) = (sqlite, b.row("webhook delivery")) {
            out.push(Target {
                what: "SQLite webhook deliveries ≥ 2,000/s".into(),
                measured: thousands(delivery.server.per_second),
                verdict: verdict(delivery.server.per_second, 2_000.0, true),
            });
        }
        if let Some(idle) = b.row("webhook latency, idle") {
            out.push(Target {
                what: format!("{} commit-to-delivery p50 < 20 ms, idle queue", b.backend),
                measured: format!("{} ms", ms(idle.server.p50_ms)),
                verdict: verdict(idle.server.p50_ms, 20.0, false),
            });
        }
        for (name, goal) in [
            ("search rare", 20.0),
            ("search common", 20.0),
            ("search none", 50.0),
            ("search email", 5.0),
            ("stats by day", 20.0),
            ("stats by product", 50.0),
            ("conversion by week", 50.0),
        ] {
            if let Some(row) = b.row(name) {
                out.push(Target {
                    what: format!("{} {name} p50 < {goal} ms (one connection)", b.backend),
                    measured: format!("{} ms", ms(row.server.p50_ms)),
                    verdict: verdict(row.server.p50_ms, goal, false),
                });
            }
        }
        if let Some(peak) = b.rows.iter().filter_map(|r| r.peak_rss).max() {
            out.push(Target {
                what: format!("{} peak RSS < 64 MiB", b.backend),
                measured: mib(peak),
                verdict: verdict(peak as f64, 64.0 * 1024.0 * 1024.0, false),
            });
        }
        if sqlite && b.big_leads == 1_000_000 {
            out.push(Target {
                what: "SQLite seeds 1,000,000 leads < 30 s".into(),
                measured: format!("{:.1} s", b.seed_big.as_secs_f64()),
                verdict: verdict(b.seed_big.as_secs_f64(), 30.0, false),
            });
        }
        out.push(Target {
            what: format!("{} errors = 0", b.backend),
            measured: b.errors().to_string(),
            verdict: verdict(b.errors() as f64, 1.0, false),
        });
    }
    out
}
