//! The `leads` binary under test: building it, running its commands, and serving with it as a
//! child process whose memory is read from `/proc`.

use anyhow::{anyhow, bail, Context, Result};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Builds the `leads` binary with cargo (`release` or the dev profile) and answers its path.
pub fn build(workspace: &Path, release: bool) -> Result<PathBuf> {
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .current_dir(workspace)
        .args([
            "build",
            "-p",
            "leads",
            "--bin",
            "leads",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit());
    if release {
        cargo.arg("--release");
    }
    let output = cargo.output().context("cannot run cargo")?;
    if !output.status.success() {
        bail!("cargo build -p leads failed");
    }
    // The last artifact line for the `leads` binary names the executable.
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "leads")
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .next_back()
        .ok_or_else(|| anyhow!("cargo built no leads executable"))
}

/// Runs `leads ARGS --database URL` to completion and answers its standard output.
pub fn command(leads: &Path, database: &str, args: &[&str]) -> Result<String> {
    let output = Command::new(leads)
        .args(args)
        .args(["--database", database])
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot run {}", leads.display()))?;
    if !output.status.success() {
        bail!(
            "leads {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

/// A running `leads serve`, stopped (SIGTERM, then waited for) when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `leads serve` on a free loopback port and waits until `/healthz` answers.
    /// Its logs (warnings and errors only) go to `log`.
    pub async fn start(leads: &Path, database: &str, log: &Path) -> Result<Self> {
        let addr = free_port()?;
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let child = Command::new(leads)
            .args(["serve", "--addr", &addr.to_string(), "--database", database])
            // The load comes from one key at full speed: measure the server, not its limiter.
            .args(["--rate-limit", "0"])
            // The webhook scenarios' receiver is on loopback.
            .arg("--webhook-allow-private-targets")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {}", leads.display()))?;
        let mut server = Self { child, addr };
        let started = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "leads serve exited at start ({status}); see {}",
                    log.display()
                );
            }
            if healthy(addr).await {
                return Ok(server);
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("leads serve did not answer /healthz within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Forgets the peak resident set size so far, so the next [`Self::peak_rss`] is the peak
    /// since now. Answers false where the kernel does not allow it (the peak then covers the
    /// whole life of the process).
    pub fn reset_peak_rss(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").is_ok()
    }

    /// The resident set size now (VmRSS) in bytes.
    pub fn rss(&self) -> Option<u64> {
        status_kib(self.pid(), "VmRSS:").map(|kib| kib * 1024)
    }

    /// The peak resident set size (VmHWM) in bytes.
    pub fn peak_rss(&self) -> Option<u64> {
        status_kib(self.pid(), "VmHWM:").map(|kib| kib * 1024)
    }

    /// Resident memory now by kind, for telling where a peak comes from: anonymous (heap,
    /// stacks, SQLite's page caches), file-backed, and shared memory (SQLite's WAL index).
    pub fn rss_breakdown(&self) -> String {
        let kib =
            |field| status_kib(self.pid(), field).map_or("?".into(), |k| (k / 1024).to_string());
        format!(
            "anon {} MiB, file {} MiB, shmem {} MiB, {} threads",
            kib("RssAnon:"),
            kib("RssFile:"),
            kib("RssShmem:"),
            status_kib(self.pid(), "Threads:").unwrap_or(0)
        )
    }

    /// Starts `perf record` (with DWARF call graphs: release builds keep no frame pointers) on the server, writing to `output`, until [`Recording::stop`].
    pub fn record(&self, output: &Path) -> Result<Recording> {
        let child = Command::new("perf")
            .args(["record", "--call-graph", "dwarf,16384", "-F", "499", "-o"])
            .arg(output)
            .args(["-p", &self.pid().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot run perf (apt-get install linux-perf)")?;
        Ok(Recording {
            child,
            output: output.to_owned(),
        })
    }

    /// Stops the server gracefully and waits for it.
    pub fn stop(mut self) -> Result<()> {
        self.terminate()
    }

    fn terminate(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.terminate();
    }
}

/// A running `perf record`.
pub struct Recording {
    child: Child,
    output: PathBuf,
}

impl Recording {
    /// Stops recording (SIGINT, as perf expects) and answers where the data is.
    pub fn stop(mut self) -> Result<PathBuf> {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let status = self.child.wait()?;
        if !status.success() && !self.output.exists() {
            bail!("perf record failed ({status})");
        }
        Ok(self.output)
    }
}

/// A `/proc/PID/status` field in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

fn free_port() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

async fn healthy(addr: SocketAddr) -> bool {
    let Ok(mut client) = crate::load::Client::new(addr, "").await else {
        return false;
    };
    client.get_json("/healthz").await.is_ok()
}
