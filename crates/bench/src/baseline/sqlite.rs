//! SQLite's own speed: the server's list statements (from `issued_statements`, so the very text
//! and parameters: the key's re-check, then the page) as prepared statements on read-only
//! connections set up as the server's, one per thread, each its own snapshot as the server runs
//! them.

use crate::load::{new_histogram, Outcome};
use anyhow::Result;
use leads_server::domain::KeyId;
use leads_server::pagination::PageRequest;
use leads_server::storage::sqlite::{issued_statements, open_reader, Query};
use leads_server::storage::{LeadFilter, StoreError};
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The statements one list request issues, ready to be run again and again.
#[derive(Debug, Clone)]
pub struct Baseline {
    path: PathBuf,
    statements: Vec<Query>,
}

impl Baseline {
    /// The statements the server issues for `filter` and `page` on the database at `path`.
    pub fn new(path: &Path, filter: &LeadFilter, page: &PageRequest, key: &KeyId) -> Result<Self> {
        let statements = issued_statements(filter, page, Some(key));
        Ok(Self {
            path: path.to_owned(),
            statements,
        })
    }

    /// How many statements one request runs.
    pub fn statements(&self) -> usize {
        self.statements.len()
    }

    /// Runs the statements on `threads` threads for `duration`; one "request" is one read
    /// transaction running all of them and stepping through every row and column.
    pub fn run(&self, threads: usize, duration: Duration) -> Result<Outcome> {
        let started = Instant::now();
        let deadline = started + duration;
        let outcomes: Vec<Result<Outcome>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| scope.spawn(|| self.worker(deadline)))
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("baseline thread panicked"))
                .collect()
        });
        let mut total = Outcome {
            ok: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            latency: new_histogram(),
        };
        for outcome in outcomes {
            let outcome = outcome?;
            total.ok += outcome.ok;
            total.latency.add(&outcome.latency).expect("same shape");
        }
        total.elapsed = started.elapsed();
        Ok(total)
    }

    fn worker(&self, deadline: Instant) -> Result<Outcome> {
        let conn = open_reader(&self.path).map_err(store)?;
        let mut latency = new_histogram();
        let mut ok = 0;
        let mut touched = 0u64;
        while Instant::now() < deadline {
            let began = Instant::now();
            touched = touched.wrapping_add(self.once(&conn)?);
            latency.saturating_record(began.elapsed().as_micros().max(1) as u64);
            ok += 1;
        }
        std::hint::black_box(touched);
        Ok(Outcome {
            ok,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            latency,
        })
    }

    /// One request's statements; answers a sum over what was read so that nothing can be
    /// skipped.
    fn once(&self, conn: &Connection) -> Result<u64> {
        let mut touched = 0u64;
        for query in &self.statements {
            let mut statement = conn.prepare_cached(&query.sql)?;
            let columns = statement.column_count();
            let mut rows = statement.query(rusqlite::params_from_iter(query.params.iter()))?;
            while let Some(row) = rows.next()? {
                for i in 0..columns {
                    let value = match row.get_ref(i)? {
                        ValueRef::Null => 0,
                        ValueRef::Integer(n) => n as u64,
                        ValueRef::Real(x) => x as u64,
                        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => bytes.len() as u64,
                    };
                    touched = touched.wrapping_add(value);
                }
            }
        }
        Ok(touched)
    }
}

fn store(error: StoreError) -> anyhow::Error {
    anyhow::Error::new(error).context("SQLite baseline")
}
