//! `leads export`: an export of a company's leads over the API, with a progress bar, saved to a
//! file.

use crate::cli::Failure;
use crate::remote::ConnectionArgs;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use leads_client::{CreateExport, Export};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often the export is read while it runs.
const POLL_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The company whose leads to export (biz_...); the API key's own when left out.
    #[arg(long)]
    company: Option<String>,
    /// Columns, comma-separated, in order (id, created_at, updated_at, user_id, username, email,
    /// name, product_id, product_title, member_id, referrer, metadata); all when left out.
    #[arg(long, value_delimiter = ',')]
    columns: Vec<String>,
    /// Only leads created after this instant (RFC 3339).
    #[arg(long)]
    created_after: Option<String>,
    /// Only leads created before this instant (RFC 3339).
    #[arg(long)]
    created_before: Option<String>,
    /// Only leads of this product (prod_...); repeat for several.
    #[arg(long = "product")]
    products: Vec<String>,
    /// The IANA time zone dates are written in (America/New_York); UTC when left out.
    #[arg(long)]
    timezone: Option<String>,
    /// Where to save the file; leads-<export id>.csv in this directory when left out.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Seconds to wait for the export to finish.
    #[arg(long, default_value_t = 3600)]
    wait: u64,
    #[command(flatten)]
    connection: ConnectionArgs,
}

fn failed(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: 1,
    }
}

/// Starts the export, shows its progress until it completes, and saves the file; prints the
/// file's path.
pub async fn run(args: ExportArgs) -> Result<(), Failure> {
    let client = args.connection.client()?;
    let mut filters = serde_json::Map::new();
    if let Some(after) = args.created_after {
        filters.insert("created_after".into(), after.into());
    }
    if let Some(before) = args.created_before {
        filters.insert("created_before".into(), before.into());
    }
    if !args.products.is_empty() {
        filters.insert("product_ids".into(), args.products.into());
    }
    let params = CreateExport {
        resource: Some("leads".into()),
        account_id: args.company,
        company_id: None,
        columns: (!args.columns.is_empty()).then_some(args.columns),
        filters: (!filters.is_empty()).then_some(filters.into()),
        timezone: args.timezone,
    };
    let exports = client.exports();
    let mut export = exports.create(&params).await?;
    let bar = ProgressBar::new(100).with_style(
        ProgressStyle::with_template("{spinner} exporting [{bar:40}] {pos}% ({msg})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    let url = loop {
        bar.set_position(export.progress_percent.unwrap_or(0).clamp(0, 100) as u64);
        bar.set_message(export.status.clone());
        match (export.status.as_str(), &export.download_url) {
            ("completed", Some(url)) => break url.clone(),
            ("pending" | "processing", _) => {}
            _ => {
                bar.abandon();
                return Err(failed(describe_failure(&export)));
            }
        }
        if Instant::now() > deadline {
            bar.abandon();
            return Err(failed(format!(
                "export {} is still {} after {} seconds",
                export.id, export.status, args.wait
            )));
        }
        tokio::time::sleep(POLL_EVERY).await;
        export = exports.retrieve(&export.id).await?;
    };
    bar.finish_and_clear();

    let path = args
        .output
        .unwrap_or_else(|| PathBuf::from(format!("leads-{}.csv", export.id)));
    let mut response = exports.download(&url).await?;
    let bytes = ProgressBar::new(response.content_length().unwrap_or(0)).with_style(
        ProgressStyle::with_template("{spinner} downloading [{bar:40}] {bytes}/{total_bytes}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let cannot =
        |e: &dyn std::fmt::Display| failed(format!("cannot write {}: {e}", path.display()));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).map_err(|e| cannot(&e))?);
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| failed(format!("the download broke off: {e}")))?
    {
        file.write_all(&chunk).map_err(|e| cannot(&e))?;
        bytes.inc(chunk.len() as u64);
    }
    file.flush().map_err(|e| cannot(&e))?;
    bytes.finish_and_clear();
    println!("{}", path.display());
    Ok(())
}

fn describe_failure(export: &Export) -> String {
    match &export.failure_reason {
        Some(reason) => format!("export {} {}: {reason}", export.id, export.status),
        None => format!("export {} {}", export.id, export.status),
    }
}
