//! Exports and imports: the big company exported through the running server (time, and how much
//! the server's resident memory grows while it writes), then that file imported with
//! `leads import` into a new company (time).

use crate::fixture::Dataset;
use crate::load::Client;
use crate::server::{self, Server};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// What exporting and importing the big company took.
#[derive(Debug, Clone)]
pub struct Transfer {
    /// From `POST /exports` until the export reads `completed`.
    pub export: Duration,
    pub exported_rows: u64,
    /// The server's resident memory just before the export, and its peak (VmHWM, reset just
    /// before) until the export completed, in bytes.
    pub rss_before: u64,
    pub rss_peak: u64,
    /// `leads import` of the exported file into an empty company, and the rows it imported.
    pub import: Duration,
    pub imported_rows: u64,
}

impl Transfer {
    /// How much the server's resident memory grew during the export, in bytes.
    pub fn rss_growth(&self) -> u64 {
        self.rss_peak.saturating_sub(self.rss_before)
    }
}

/// Exports the big company through `server`, then imports the file with `leads`.
pub async fn measure(
    leads: &Path,
    server: &Server,
    data: &Dataset,
    dir: &Path,
) -> Result<Transfer> {
    let mut client = Client::new(server.addr, &data.big.key).await?;
    server.reset_peak_rss();
    let rss_before = server.rss().context("no VmRSS")?;
    let started = Instant::now();
    let body = serde_json::json!({"resource": "leads", "account_id": data.big.id});
    let created = client.post_json("/api/v1/exports", &body).await?;
    let id = created["id"].as_str().context("no export id")?.to_owned();
    let export = loop {
        let export = client.get_json(&format!("/api/v1/exports/{id}")).await?;
        match export["status"].as_str() {
            Some("completed") => break export,
            Some("pending" | "processing") => {}
            _ => bail!("the export failed: {export}"),
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the export did not complete in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let export_time = started.elapsed();
    let rss_peak = server.peak_rss().context("no VmHWM")?;
    let url = export["download_url"].as_str().context("no download_url")?;
    let path = url
        .find("/api/v1/")
        .map(|at| &url[at..])
        .context("an odd download_url")?;
    let file = dir.join("export.csv");
    let text = client.get_text(path).await?;
    let exported_rows = text.matches("\r\n").count().saturating_sub(1) as u64;
    std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;

    let company = server::command(
        leads,
        &data.database,
        &["admin", "company", "create", "--title", "Imported"],
    )?;
    let started = Instant::now();
    let file_arg = file.to_string_lossy().into_owned();
    let printed = server::command(
        leads,
        &data.database,
        &["import", "--company", &company, &file_arg],
    )?;
    let import = started.elapsed();
    let imported_rows = printed
        .strip_prefix("imported ")
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("leads import printed {printed:?}"))?;
    let _ = std::fs::remove_file(&file);
    Ok(Transfer {
        export: export_time,
        exported_rows,
        rss_before,
        rss_peak,
        import,
        imported_rows,
    })
}
