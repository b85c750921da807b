//! `leads import`: a company's leads from a file, straight into the database.
//!
//! The file is CSV in an export's columns (a header row naming them; `username` and
//! `created_at` required, `email`, `name`, `product_title`, `referrer` and `metadata` read when
//! present, the others ignored; cells unescaped as [`crate::formats::csv`] escapes them), or
//! NDJSON of Lead objects (`user.username`, `user.email`, `user.name`, `product.title`,
//! `referrer`, `metadata`, `created_at`).
//!
//! - Users are matched by username and created when missing, with the row's email and name.
//! - Products are matched by title within the company and created when missing.
//! - `created_at` and `metadata` are kept as the file has them (`updated_at` is `created_at`).
//! - A row whose user, product and `created_at` name a lead already there is skipped, so a
//!   file imported twice writes nothing the second time.
//! - A bad row is not imported: it is handed to the caller as a [`Rejection`] naming its line
//!   and column, and the rest go on.
//!
//! Rows go in batches of [`BATCH`], each written in one transaction.

use crate::admin::{check_email, check_title, check_username};
use crate::domain::{CompanyId, LeadId, Metadata, ProductId, Referrer, Timestamp, UserId};
use crate::formats::csv::unescape_formula;
use crate::storage::{LeadKey, Product, SeedBatch, SeedLead, StoreError, Stores, User};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead};

/// Rows written per transaction.
pub const BATCH: usize = 50_000;

/// The two kinds of file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    Csv,
    Ndjson,
}

impl ImportFormat {
    /// NDJSON for a name ending `.ndjson` or `.jsonl`, CSV otherwise.
    pub fn of_path(path: &std::path::Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some("ndjson" | "jsonl") => ImportFormat::Ndjson,
            _ => ImportFormat::Csv,
        }
    }
}

/// A row that was not imported: its line in the file (1 is the first), the column at fault,
/// and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub line: u64,
    pub column: String,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub imported: u64,
    pub skipped: u64,
    pub rejected: u64,
}

/// Why an import stopped before the end of the file.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file as a whole cannot be read: unreadable, or a CSV header without a required
    /// column.
    #[error("{0}")]
    File(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One row, validated.
#[derive(Debug, Clone)]
struct Row {
    username: String,
    email: Option<String>,
    name: Option<String>,
    product_title: Option<String>,
    referrer: Option<String>,
    metadata: Option<String>,
    created_at: i64,
}

/// One row's fields as the file has them, each with the column name a rejection uses.
#[derive(Debug, Default)]
struct RawRow {
    username: Field,
    email: Field,
    name: Field,
    product_title: Field,
    referrer: Field,
    metadata: Field,
    created_at: Field,
}

/// A field: its column's name, and its text (`None` when absent or null; an empty cell is
/// absent).
#[derive(Debug, Default)]
struct Field {
    column: &'static str,
    value: Option<String>,
    /// The column exists in the file, but this row lacks it (a short CSV record).
    missing: bool,
}

fn reject(line: u64, column: &str, reason: impl std::fmt::Display) -> Rejection {
    Rejection {
        line,
        column: column.to_owned(),
        reason: reason.to_string(),
    }
}

impl RawRow {
    fn validate(self, line: u64) -> Result<Row, Rejection> {
        for field in [
            &self.username,
            &self.email,
            &self.name,
            &self.product_title,
            &self.referrer,
            &self.metadata,
            &self.created_at,
        ] {
            if field.missing {
                return Err(reject(line, field.column, "is missing from this row"));
            }
        }
        let username = self
            .username
            .value
            .ok_or_else(|| reject(line, self.username.column, "is missing"))?;
        check_username(&username).map_err(|why| reject(line, self.username.column, why))?;
        let created_at = self
            .created_at
            .value
            .ok_or_else(|| reject(line, self.created_at.column, "is missing"))?;
        let created_at = Timestamp::parse(&created_at)
            .ok_or_else(|| {
                reject(
                    line,
                    self.created_at.column,
                    format_args!("{created_at:?} is not an RFC 3339 date-time"),
                )
            })?
            .as_millis();
        if let Some(email) = &self.email.value {
            check_email(email).map_err(|why| reject(line, self.email.column, why))?;
        }
        let title = |field: Field| {
            field
                .value
                .map(|text| check_title(&text).map_err(|why| reject(line, field.column, why)))
                .transpose()
        };
        let name = title(self.name)?;
        let product_title = title(self.product_title)?;
        let referrer = self
            .referrer
            .value
            .map(|text| {
                Referrer::parse(text)
                    .map(Referrer::into_string)
                    .map_err(|why| reject(line, self.referrer.column, why))
            })
            .transpose()?;
        let metadata = self
            .metadata
            .value
            .map(|text| {
                let column = self.metadata.column;
                let raw = serde_json::value::RawValue::from_string(text)
                    .map_err(|e| reject(line, column, format_args!("is not JSON: {e}")))?;
                Metadata::parse(&raw)
                    .map(Metadata::into_string)
                    .map_err(|why| reject(line, column, why))
            })
            .transpose()?;
        Ok(Row {
            username,
            email: self.email.value,
            name,
            product_title,
            referrer,
            metadata,
            created_at,
        })
    }
}

/// A row's line number, and the row or why it is rejected.
type NumberedRow = (u64, Result<Row, Rejection>);

/// Reads rows from a file of either format, one at a time.
pub struct RowReader {
    inner: Inner,
}

enum Inner {
    Csv {
        reader: csv::Reader<LineCounter>,
        columns: HashMap<&'static str, usize>,
        newlines: Newlines,
        /// Line breaks before the last record read, and where that record started.
        lines_before: u64,
    },
    Ndjson {
        lines: io::Lines<io::BufReader<Box<dyn io::Read + Send>>>,
        line: u64,
    },
}

/// The byte offsets of the line breaks read but not yet passed by a record, shared between the
/// [`LineCounter`] under the CSV reader and the rows it reads. (The `csv` crate's own line
/// numbers count a CRLF file's lines one short after the header.) It holds only the breaks in
/// the reader's buffer ahead of the current record, so it stays small.
#[derive(Debug, Clone, Default)]
struct Newlines(std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<u64>>>);

impl Newlines {
    /// The 1-based line of the record starting at byte `start`; `before` carries the breaks
    /// counted so far from one record to the next.
    fn line_at(&self, start: u64, before: &mut u64) -> u64 {
        let mut breaks = self.0.lock().expect("newline offsets");
        // In a CRLF file a record "starts" at the LF that ended the line before it.
        while breaks.front().is_some_and(|&at| at <= start) {
            breaks.pop_front();
            *before += 1;
        }
        *before + 1
    }
}

/// A reader that notes where each line break is.
struct LineCounter {
    inner: Box<dyn io::Read + Send>,
    offset: u64,
    newlines: Newlines,
}

impl io::Read for LineCounter {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut breaks = self.newlines.0.lock().expect("newline offsets");
        for (i, _) in buf[..n].iter().enumerate().filter(|(_, b)| **b == b'\n') {
            breaks.push_back(self.offset + i as u64);
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// The CSV columns an import reads; `username` and `created_at` are required.
const CSV_COLUMNS: [&str; 7] = [
    "username",
    "email",
    "name",
    "product_title",
    "referrer",
    "metadata",
    "created_at",
];

impl RowReader {
    /// A reader of `input` in `format`. For CSV, reads the header now: one without `username`
    /// or `created_at` is an [`ImportError::File`].
    pub fn new(input: Box<dyn io::Read + Send>, format: ImportFormat) -> Result<Self, ImportError> {
        let inner = match format {
            ImportFormat::Ndjson => Inner::Ndjson {
                lines: io::BufReader::new(input).lines(),
                line: 0,
            },
            ImportFormat::Csv => {
                let newlines = Newlines::default();
                let counter = LineCounter {
                    inner: input,
                    offset: 0,
                    newlines: newlines.clone(),
                };
                let mut reader = csv::ReaderBuilder::new()
                    .flexible(true)
                    .from_reader(counter);
                let header = reader
                    .headers()
                    .map_err(|e| ImportError::File(format!("the CSV header cannot be read: {e}")))?
                    .clone();
                let mut columns = HashMap::new();
                for (index, name) in header.iter().enumerate() {
                    if let Some(known) = CSV_COLUMNS.iter().find(|c| **c == name.trim()) {
                        columns.entry(*known).or_insert(index);
                    }
                }
                for required in ["username", "created_at"] {
                    if !columns.contains_key(required) {
                        return Err(ImportError::File(format!(
                            "the CSV header has no {required} column; an export's header names \
                             its columns (id,created_at,...,username,...)"
                        )));
                    }
                }
                Inner::Csv {
                    reader,
                    columns,
                    newlines,
                    lines_before: 0,
                }
            }
        };
        Ok(Self { inner })
    }

    /// The next row with its line number: valid, or why not. `None` at the end of the file.
    fn next(&mut self) -> Result<Option<NumberedRow>, ImportError> {
        match &mut self.inner {
            Inner::Csv {
                reader,
                columns,
                newlines,
                lines_before,
            } => {
                let mut record = csv::StringRecord::new();
                let more = reader
                    .read_record(&mut record)
                    .map_err(|e| ImportError::File(format!("the CSV cannot be read: {e}")))?;
                if !more {
                    return Ok(None);
                }
                let start = record.position().map_or(0, |p| p.byte());
                let line = newlines.line_at(start, lines_before);
                let field = |column: &'static str| match columns.get(column) {
                    None => Field {
                        column,
                        ..Field::default()
                    },
                    Some(&index) => match record.get(index) {
                        None => Field {
                            column,
                            value: None,
                            missing: true,
                        },
                        Some(cell) => Field {
                            column,
                            value: Some(unescape_formula(cell).to_owned())
                                .filter(|v| !v.is_empty()),
                            missing: false,
                        },
                    },
                };
                let raw = RawRow {
                    username: field("username"),
                    email: field("email"),
                    name: field("name"),
                    product_title: field("product_title"),
                    referrer: field("referrer"),
                    metadata: field("metadata"),
                    created_at: field("created_at"),
                };
                Ok(Some((line, raw.validate(line))))
            }
            Inner::Ndjson { lines, line } => loop {
                let Some(text) = lines.next() else {
                    return Ok(None);
                };
                let text =
                    text.map_err(|e| ImportError::File(format!("the file cannot be read: {e}")))?;
                *line += 1;
                if text.trim().is_empty() {
                    continue;
                }
                return Ok(Some((*line, ndjson_row(&text, *line))));
            },
        }
    }
}

/// A Lead object's fields.
fn ndjson_row(text: &str, line: u64) -> Result<Row, Rejection> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| reject(line, "line", format_args!("is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(reject(line, "line", "is not a JSON object (a Lead)"));
    }
    let text_at = |column: &'static str, pointer: &str| -> Result<Field, Rejection> {
        let value = match value.pointer(pointer) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(reject(line, column, "must be a string")),
        };
        Ok(Field {
            column,
            value,
            missing: false,
        })
    };
    let metadata = match value.get("metadata") {
        None | Some(Value::Null) => None,
        Some(object) => Some(object.to_string()),
    };
    RawRow {
        username: text_at("user.username", "/user/username")?,
        email: text_at("user.email", "/user/email")?,
        name: text_at("user.name", "/user/name")?,
        product_title: text_at("product.title", "/product/title")?,
        referrer: text_at("referrer", "/referrer")?,
        metadata: Field {
            column: "metadata",
            value: metadata,
            missing: false,
        },
        created_at: text_at("created_at", "/created_at")?,
    }
    .validate(line)
}

/// One batch as the file gave it: its valid rows, the rows rejected among them (in the file's
/// order), and how many rows the file had given up to its end.
struct Parsed {
    rows: Vec<Row>,
    rejections: Vec<Rejection>,
    read: u64,
}

/// Reads `rows` into batches of at most `size` rows (valid or rejected) and sends them to
/// `batches`, stopping at the end of the file, at an error or when nobody listens. At an error
/// it sends the rejections read since the last batch (without its valid rows, which are not
/// written), then the error.
fn parse_ahead(
    mut rows: RowReader,
    size: usize,
    batches: tokio::sync::mpsc::Sender<Result<Parsed, ImportError>>,
) {
    let mut read = 0u64;
    loop {
        let mut parsed = Parsed {
            rows: Vec::with_capacity(size),
            rejections: Vec::new(),
            read,
        };
        let done = loop {
            match rows.next() {
                Err(e) => {
                    // The rows rejected before the error still go to the report.
                    parsed.rows.clear();
                    parsed.read = read;
                    let _ = batches.blocking_send(Ok(parsed));
                    let _ = batches.blocking_send(Err(e));
                    return;
                }
                Ok(None) => break true,
                Ok(Some((_, row))) => {
                    read += 1;
                    match row {
                        Ok(row) => parsed.rows.push(row),
                        Err(rejection) => parsed.rejections.push(rejection),
                    }
                    if parsed.rows.len() + parsed.rejections.len() == size {
                        break false;
                    }
                }
            }
        };
        parsed.read = read;
        if batches.blocking_send(Ok(parsed)).is_err() || done {
            return;
        }
    }
}

/// Imports every row `rows` reads into `company`, a batch at a time. Each rejected row goes to
/// `rejected` (which may fail, stopping the import); `progress` hears how many rows have been
/// read after each batch.
///
/// The file is read and parsed on a thread of its own, up to two batches ahead of the batch
/// being written, so parsing overlaps the database's work. The look-ups and the write of a batch still
/// follow the write of the one before: a batch finds the users and products the one before it
/// created.
pub async fn import(
    stores: &Stores,
    company: &CompanyId,
    rows: RowReader,
    mut rejected: impl FnMut(Rejection) -> io::Result<()>,
    mut progress: impl FnMut(u64),
) -> Result<ImportReport, ImportError> {
    if !stores.imports.company_exists(company.clone()).await? {
        return Err(ImportError::File(format!("there is no company {company}")));
    }
    let (sender, mut batches) = tokio::sync::mpsc::channel(1);
    let parser = tokio::task::spawn_blocking(move || parse_ahead(rows, BATCH, sender));
    let mut report = ImportReport::default();
    let mut seen = HashSet::new();
    let mut read = 0;
    while let Some(parsed) = batches.recv().await {
        let parsed = parsed?;
        for rejection in parsed.rejections {
            report.rejected += 1;
            rejected(rejection)
                .map_err(|e| ImportError::File(format!("cannot write the report: {e}")))?;
        }
        if !parsed.rows.is_empty() {
            let (imported, skipped) = write_batch(stores, company, parsed.rows, &mut seen).await?;
            report.imported += imported;
            report.skipped += skipped;
        }
        read = parsed.read;
        progress(read);
    }
    parser
        .await
        .map_err(|e| ImportError::File(format!("the file reader stopped: {e}")))?;
    if report.imported > 0 {
        stores.directory.analyze().await?;
    }
    progress(read);
    Ok(report)
}

/// Writes one batch; answers how many rows it imported and how many it skipped. `seen` holds
/// the keys imported so far, so a row repeated within the file is skipped too.
async fn write_batch(
    stores: &Stores,
    company: &CompanyId,
    rows: Vec<Row>,
    seen: &mut HashSet<LeadKey>,
) -> Result<(u64, u64), ImportError> {
    let now = Timestamp::now();
    let usernames: Vec<String> = unique(rows.iter().map(|r| r.username.clone()));
    let mut users = stores.imports.users_by_username(usernames).await?;
    let known_users: HashSet<String> = users.values().cloned().collect();
    let titles: Vec<String> = unique(rows.iter().filter_map(|r| r.product_title.clone()));
    let mut products = stores
        .imports
        .products_by_title(company.clone(), titles)
        .await?;
    let mut batch = SeedBatch::default();
    for row in &rows {
        if !users.contains_key(&row.username) {
            let user = User {
                id: UserId::generate().into_string(),
                username: row.username.clone(),
                email: row.email.clone(),
                name: row.name.clone(),
                created_at: now,
            };
            users.insert(user.username.clone(), user.id.clone());
            batch.users.push(user);
        }
        if let Some(title) = &row.product_title {
            if !products.contains_key(title) {
                let product = Product {
                    id: ProductId::generate().into_string(),
                    company_id: company.as_str().to_owned(),
                    title: title.clone(),
                    created_at: now,
                };
                products.insert(title.clone(), product.id.clone());
                batch.products.push(product);
            }
        }
    }
    let keyed: Vec<(LeadKey, Row)> = rows
        .into_iter()
        .map(|row| {
            let key = LeadKey {
                user_id: users[&row.username].clone(),
                product_id: row.product_title.as_ref().map(|t| products[t].clone()),
                created_at: row.created_at,
            };
            (key, row)
        })
        .collect();
    // Only users that existed before this batch can have leads already.
    let candidates: Vec<LeadKey> = keyed
        .iter()
        .filter(|(key, _)| known_users.contains(&key.user_id))
        .map(|(key, _)| key.clone())
        .collect();
    let existing: HashSet<LeadKey> = if candidates.is_empty() {
        HashSet::new()
    } else {
        stores
            .imports
            .existing_leads(company.clone(), candidates)
            .await?
            .into_iter()
            .collect()
    };
    let mut skipped = 0;
    for (key, row) in keyed {
        if existing.contains(&key) || !seen.insert(key.clone()) {
            skipped += 1;
            continue;
        }
        batch.leads.push(SeedLead {
            id: LeadId::generate(),
            company_id: company.as_str().to_owned(),
            user_id: key.user_id,
            product_id: key.product_id,
            referrer: row.referrer,
            metadata: row.metadata,
            created_at: row.created_at,
        });
    }
    let imported = batch.leads.len() as u64;
    if imported > 0 || !batch.users.is_empty() || !batch.products.is_empty() {
        stores.directory.insert_seed(batch).await?;
    }
    Ok((imported, skipped))
}

fn unique(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    items.filter(|item| seen.insert(item.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(csv: &str) -> Vec<NumberedRow> {
        let mut reader =
            RowReader::new(Box::new(io::Cursor::new(csv.to_owned())), ImportFormat::Csv).unwrap();
        let mut out = Vec::new();
        while let Some(row) = reader.next().unwrap() {
            out.push(row);
        }
        out
    }

    #[test]
    fn each_bad_row_names_its_line_and_column() {
        let long = "x".repeat(65);
        let text = format!(
            "username,created_at,metadata,name\r\n\
             alice,2023-12-01T05:00:00.401Z,{{}},'=Alice\r\n\
             bob,yesterday,,\r\n\
             carol,2023-12-01T05:00:00.401Z,[1],\r\n\
             {long},2023-12-01T05:00:00.401Z,,\r\n\
             dave,2023-12-01T05:00:00.401Z\r\n"
        );
        let rows = rows(&text);
        assert_eq!(rows.len(), 5);
        let alice = rows[0].1.as_ref().unwrap();
        assert_eq!(alice.name.as_deref(), Some("=Alice"), "unescaped");
        let columns: Vec<(u64, String)> = rows[1..]
            .iter()
            .map(|(line, row)| (*line, row.as_ref().unwrap_err().column.clone()))
            .collect();
        assert_eq!(
            columns,
            [
                (3, "created_at".to_owned()),
                (4, "metadata".to_owned()),
                (5, "username".to_owned()),
                (6, "name".to_owned()),
            ]
        );
    }

    #[test]
    fn batches_parsed_ahead_keep_the_file_order_and_count_every_row() {
        let text = "username,created_at\r\n\
                    a,2023-12-01T05:00:00Z\r\n\
                    b,yesterday\r\n\
                    c,2023-12-01T05:00:01Z\r\n\
                    d,2023-12-01T05:00:02Z\r\n\
                    e,later\r\n";
        let reader = RowReader::new(
            Box::new(io::Cursor::new(text.to_owned())),
            ImportFormat::Csv,
        )
        .unwrap();
        let (sender, mut receiver) = tokio::sync::mpsc::channel(8);
        parse_ahead(reader, 2, sender);
        let mut batches = Vec::new();
        while let Ok(parsed) = receiver.try_recv() {
            let parsed = parsed.unwrap();
            let names: Vec<String> = parsed.rows.iter().map(|r| r.username.clone()).collect();
            let lines: Vec<u64> = parsed.rejections.iter().map(|r| r.line).collect();
            batches.push((names, lines, parsed.read));
        }
        let expected: Vec<(Vec<String>, Vec<u64>, u64)> = vec![
            (vec!["a".into()], vec![3], 2),
            (vec!["c".into(), "d".into()], vec![], 4),
            (vec![], vec![6], 5),
        ];
        assert_eq!(batches, expected);
    }

    #[test]
    fn rejections_read_before_an_unreadable_record_still_reach_the_report() {
        let mut text = b"username,created_at\r\n\
                         a,2023-12-01T05:00:00Z\r\n\
                         b,yesterday\r\n"
            .to_vec();
        text.extend_from_slice(b"c\xff\xfe,2023-12-01T05:00:01Z\r\n");
        let reader = RowReader::new(Box::new(io::Cursor::new(text)), ImportFormat::Csv).unwrap();
        let (sender, mut receiver) = tokio::sync::mpsc::channel(8);
        parse_ahead(reader, 10, sender);
        let parsed = receiver.try_recv().unwrap().unwrap();
        assert!(parsed.rows.is_empty(), "a partial batch is not written");
        let lines: Vec<u64> = parsed.rejections.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3]);
        let error = receiver.try_recv().unwrap().err().unwrap();
        assert!(error.to_string().contains("cannot be read"), "{error}");
        assert!(receiver.try_recv().is_err(), "nothing after the error");
    }

    #[test]
    fn a_header_without_username_is_refused_as_a_whole() {
        let error = RowReader::new(
            Box::new(io::Cursor::new("id,created_at\r\n".to_owned())),
            ImportFormat::Csv,
        )
        .err()
        .unwrap();
        assert!(error.to_string().contains("no username column"), "{error}");
    }

    #[test]
    fn ndjson_rows_are_lead_objects() {
        let row = ndjson_row(
            r#"{"created_at":"2023-12-01T05:00:00.401Z","user":{"username":"a","email":null,"name":"A"},"product":{"title":"P"},"referrer":"https://x","metadata":{"k":1}}"#,
            7,
        )
        .unwrap();
        assert_eq!(row.product_title.as_deref(), Some("P"));
        assert_eq!(row.metadata.as_deref(), Some(r#"{"k":1}"#));
        let bad =
            ndjson_row(r#"{"created_at":"2023-12-01T05:00:00.401Z","user":{}}"#, 8).unwrap_err();
        assert_eq!((bad.line, bad.column.as_str()), (8, "user.username"));
    }
}
