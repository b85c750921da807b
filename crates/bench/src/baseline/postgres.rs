//! PostgreSQL's own speed: the server's list statement (from `issued_statement`, so the very
//! text and parameters, with the key's re-check folded in as the server runs it) in a
//! `pgbench -M prepared` script, from as many connections as the load generator opens.

use crate::load::{new_histogram, Outcome};
use anyhow::{bail, Context, Result};
use leads_server::domain::KeyId;
use leads_server::pagination::PageRequest;
use leads_server::storage::postgres::{issued_statement, Param};
use leads_server::storage::LeadFilter;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A pgbench script of one list request.
#[derive(Debug, Clone)]
pub struct Baseline {
    pgbench: PathBuf,
    url: String,
    script: PathBuf,
    /// `-D name=value` for every parameter.
    defines: Vec<String>,
    statements: usize,
    dir: PathBuf,
}

impl Baseline {
    /// Writes the script of the statements the server issues for `filter` and `page` into
    /// `dir`, as `NAME.sql`.
    pub async fn new(
        url: &str,
        filter: &LeadFilter,
        page: &PageRequest,
        key: &KeyId,
        dir: &Path,
        name: &str,
    ) -> Result<Self> {
        let statements = [issued_statement(filter, page, Some(key))];
        let mut script = String::new();
        let mut defines = Vec::new();
        for (i, statement) in statements.iter().enumerate() {
            // pgbench takes no empty `-D` value: an empty text (the id part of a time bound)
            // goes into the text as a literal instead.
            let names: Vec<String> = statement
                .params
                .iter()
                .enumerate()
                .map(|(n, param)| match text(param) {
                    value if value.is_empty() => "''::text".to_owned(),
                    value => {
                        let name = format!("s{i}p{}", n + 1);
                        defines.push(format!("{name}={value}"));
                        format!(":{name}")
                    }
                })
                .collect();
            script.push_str(&pgbench_sql(&statement.sql, &names));
            script.push_str(";\n");
        }
        let file = dir.join(format!("{name}.sql"));
        std::fs::write(&file, script)?;
        Ok(Self {
            pgbench: pgbench()?,
            url: url.to_owned(),
            script: file,
            defines,
            statements: statements.len(),
            dir: dir.to_owned(),
        })
    }

    pub fn statements(&self) -> usize {
        self.statements
    }

    /// `pgbench -M prepared` with `clients` connections for `duration` (whole seconds, at least
    /// one); latencies from its per-transaction log.
    pub fn run(&self, clients: usize, duration: Duration) -> Result<Outcome> {
        let seconds = duration.as_secs_f64().ceil().max(1.0) as u64;
        let logs = self.dir.join(format!(
            "pgbench-log-{}",
            leads_server::domain::ids::random_base62(6)
        ));
        std::fs::create_dir_all(&logs)?;
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(clients);
        let mut command = Command::new(&self.pgbench);
        command
            .args(["-n", "-M", "prepared", "--log"])
            .arg(format!("--log-prefix={}", logs.join("tx").display()))
            .arg(format!("--client={clients}"))
            .arg(format!("--jobs={threads}"))
            .arg(format!("--time={seconds}"))
            .arg(format!("--file={}", self.script.display()));
        for define in &self.defines {
            command.arg(format!("--define={define}"));
        }
        let output = command
            .arg(&self.url)
            .output()
            .with_context(|| format!("cannot run {}", self.pgbench.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "pgbench failed: {}{}",
                stdout.trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let field = |prefix: &str| -> Option<f64> {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(prefix))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        };
        let processed = field("number of transactions actually processed:")
            .context("pgbench printed no transaction count")?;
        let tps = field("tps = ").context("pgbench printed no tps")?;
        let failed = field("number of failed transactions:").unwrap_or(0.0);
        let mut latency = new_histogram();
        for entry in std::fs::read_dir(&logs)? {
            let text = std::fs::read_to_string(entry?.path())?;
            for line in text.lines() {
                // client_id transaction_no time script_no time_epoch time_us [...]
                if let Some(micros) = line
                    .split_whitespace()
                    .nth(2)
                    .and_then(|t| t.parse::<u64>().ok())
                {
                    latency.saturating_record(micros.max(1));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&logs);
        Ok(Outcome {
            ok: processed as u64,
            errors: failed as u64,
            first_error: (failed > 0.0).then(|| format!("pgbench: {failed} failed transactions")),
            // pgbench's rate leaves out connecting; so does the load generator's.
            elapsed: Duration::from_secs_f64(processed / tps.max(f64::MIN_POSITIVE)),
            latency,
        })
    }
}

/// `$n` placeholders replaced by `values[n - 1]`: pgbench variables `:name`, which `-M prepared`
/// sends as parameters, or literals.
fn pgbench_sql(sql: &str, values: &[String]) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            let mut digits = String::new();
            while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                digits.push(d);
                chars.next();
            }
            let n: usize = digits.parse().expect("digits");
            out.push_str(&values[n - 1]);
        } else {
            out.push(c);
        }
    }
    out
}

/// A parameter's value as text, which PostgreSQL reads as the type it infers for it.
fn text(param: &Param) -> String {
    match param {
        Param::Text(s) => s.clone(),
        Param::Int(n) => n.to_string(),
        Param::Texts(items) => format!("{{{}}}", items.join(",")),
    }
}

/// pgbench on the PATH or where Debian's PostgreSQL packages put it.
fn pgbench() -> Result<PathBuf> {
    let on_path = Command::new("pgbench").arg("--version").output();
    if on_path.is_ok_and(|o| o.status.success()) {
        return Ok(PathBuf::from("pgbench"));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|version| version.path().join("bin/pgbench"))
        .filter(|path| path.exists())
        .collect();
    found.sort();
    found.pop().context(
        "pgbench not found: it ships with PostgreSQL's server package (apt-get install postgresql)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_pgbench_variables_even_past_nine() {
        let values: Vec<String> = (1..=11).map(|n| format!(":v{n}")).collect();
        assert_eq!(
            pgbench_sql("a = $1 AND b = $11 AND c::text[] = $2", &values),
            "a = :v1 AND b = :v11 AND c::text[] = :v2"
        );
    }
}
