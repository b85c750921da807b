//! `leads import`: a file of leads into a company, against the database like the admin commands.

use crate::cli::{DatabaseArg, Failure};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use leads_server::domain::CompanyId;
use leads_server::import::{self, ImportFormat, Rejection, RowReader};
use leads_server::storage;
use std::fs::File;
use std::path::PathBuf;

/// Exit code when some rows were rejected (and the rest imported).
pub const SOME_REJECTED: u8 = 3;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The company the leads are for (biz_...).
    #[arg(long)]
    company: String,
    /// CSV in an export's columns (header row; username and created_at required), or NDJSON of
    /// Lead objects.
    file: PathBuf,
    /// The file's format; by its name when left out (.ndjson or .jsonl is NDJSON, else CSV).
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// Where rejected rows are listed (line, column, reason); FILE.rejected.csv when left out.
    #[arg(long, value_name = "PATH")]
    report: Option<PathBuf>,
    #[command(flatten)]
    database: DatabaseArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FormatArg {
    Csv,
    Ndjson,
}

fn failed(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: 1,
    }
}

/// Imports the file; prints `imported N, skipped M, rejected K`. Exits 0 when nothing was
/// rejected, [`SOME_REJECTED`] when some rows were, and 1 on any other error.
pub async fn run(args: ImportArgs) -> Result<(), Failure> {
    let company =
        CompanyId::parse(&args.company).map_err(|why| failed(format!("--company {why}")))?;
    let format = match args.format {
        Some(FormatArg::Csv) => ImportFormat::Csv,
        Some(FormatArg::Ndjson) => ImportFormat::Ndjson,
        None => ImportFormat::of_path(&args.file),
    };
    let input = File::open(&args.file)
        .map_err(|e| failed(format!("cannot read {}: {e}", args.file.display())))?;
    let rows = RowReader::new(Box::new(input), format).map_err(|e| failed(e.to_string()))?;
    let report_path = args.report.unwrap_or_else(|| {
        let mut name = args.file.clone().into_os_string();
        name.push(".rejected.csv");
        PathBuf::from(name)
    });
    let stores = storage::open_for_bulk(&args.database.url)
        .await
        .map_err(|e| failed(e.to_string()))?;

    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} importing {human_pos} rows, {per_sec}")
            .expect("valid template"),
    );
    let mut report: Option<csv::Writer<File>> = None;
    let mut reject = |rejection: Rejection| -> std::io::Result<()> {
        if report.is_none() {
            let mut writer = csv::Writer::from_path(&report_path)?;
            writer.write_record(["line", "column", "reason"])?;
            report = Some(writer);
        }
        let writer = report.as_mut().expect("just made");
        writer.write_record([
            rejection.line.to_string(),
            rejection.column,
            rejection.reason,
        ])?;
        Ok(())
    };
    let result = import::import(&stores, &company, rows, &mut reject, |read| {
        bar.set_position(read)
    })
    .await;
    bar.finish_and_clear();
    if let Some(mut writer) = report.take() {
        writer
            .flush()
            .map_err(|e| failed(format!("cannot write {}: {e}", report_path.display())))?;
    }
    let _ = stores.database.close().await;
    let done = result.map_err(|e| failed(e.to_string()))?;
    println!(
        "imported {}, skipped {}, rejected {}",
        done.imported, done.skipped, done.rejected
    );
    if done.rejected > 0 {
        eprintln!(
            "{} rejected rows are listed in {}",
            done.rejected,
            report_path.display()
        );
        return Err(Failure {
            message: format!("{} rows were rejected", done.rejected),
            code: SOME_REJECTED,
        });
    }
    Ok(())
}
