//! Exports: the background worker that writes export files, and the download links to them.
//!
//! The request path ([`crate::http::exports`]) only records a `pending` export. The
//! [`worker`] inside `leads serve` takes jobs from the database with a lease, writes each to a
//! file in the export directory from one snapshot of the leads, and records the outcome; it
//! deletes files past their retention. Downloads go through [`links`]: short-lived signed links
//! served by this server.
//!
//! Files live in a directory (`serve --export-dir`); several instances must share it (a network
//! file system), as any instance may write a file and any may serve it. An S3-compatible object
//! store would take the directory's place behind the same API (the `object_store` crate, whose
//! `put_multipart` streams a file and whose `signed_url` would make `download_url`); only
//! [`worker`]'s file writing and the download handler would change.

pub mod links;
pub mod worker;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long an export and its file are kept (Whop: "Exports are retained for 30 days").
pub const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// What the export worker and links are configured with (`leads serve --export-*`).
#[derive(Debug, Clone)]
pub struct ExportSettings {
    /// Where files are written; `None` means [`default_dir`] of the database.
    pub dir: Option<PathBuf>,
    /// Jobs this instance runs at once at most; the rest wait as `pending`. 0 runs none here,
    /// leaving the jobs to other instances on the database.
    pub concurrency: usize,
    /// How long a `download_url` is valid once minted.
    pub link_ttl: Duration,
    /// How long a worker's hold on a job lasts unless renewed; a job whose worker died is taken
    /// again this long after its last renewal.
    pub lease: Duration,
    /// The URL clients reach this server at, for `download_url` (`https://leads.example.com`);
    /// `None` means the scheme and `Host` of the request that reads the export.
    pub public_url: Option<String>,
}

impl Default for ExportSettings {
    fn default() -> Self {
        Self {
            dir: None,
            concurrency: 2,
            link_ttl: links::DEFAULT_LINK_TTL,
            lease: Duration::from_secs(30),
            public_url: None,
        }
    }
}

impl ExportSettings {
    /// The export directory: the one configured, or [`default_dir`] of `database_url`.
    pub fn dir_for(&self, database_url: &str) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| default_dir(database_url))
    }
}

/// Where files go when no directory is configured: beside an SQLite file (`leads.db` →
/// `leads.db-exports/`), or `leads-exports` in the system's temporary directory for PostgreSQL.
pub fn default_dir(database_url: &str) -> PathBuf {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        return std::env::temp_dir().join("leads-exports");
    }
    let path = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .unwrap_or(database_url);
    let path = Path::new(path);
    let name = path
        .file_name()
        .map(|n| format!("{}-exports", n.to_string_lossy()))
        .unwrap_or_else(|| "leads-exports".into());
    path.with_file_name(name)
}

/// The file name of export `id`'s finished file.
pub fn file_name(id: &crate::domain::ExportId) -> String {
    format!("{id}.csv")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_go_beside_an_sqlite_database_or_to_the_temporary_directory() {
        assert_eq!(
            default_dir("sqlite:///var/lib/leads/leads.db"),
            PathBuf::from("/var/lib/leads/leads.db-exports")
        );
        assert_eq!(default_dir("leads.db"), PathBuf::from("leads.db-exports"));
        assert_eq!(
            default_dir("postgres://db/leads"),
            std::env::temp_dir().join("leads-exports")
        );
    }
}
