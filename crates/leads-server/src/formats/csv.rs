//! Leads as CSV, in one place for every CSV the product writes (the CLI's `--format csv`, and
//! exports): the columns, the writer, and the rule that keeps spreadsheets from executing cells.
//!
//! The format is RFC 4180 (<https://www.rfc-editor.org/rfc/rfc4180>), written by the `csv`
//! crate: a header row of column names, then one record a lead, fields separated by commas,
//! records ended by CRLF; a field holding a comma, a double quote, a CR or an LF is enclosed in
//! double quotes, its double quotes doubled. A null is an empty field, `metadata` its JSON text,
//! a date RFC 3339 in UTC with three fractional digits, as in the API, or, given a time zone
//! ([`LeadCsvOptions::time_zone`], an export's `timezone`), the same instant in that zone with
//! its offset (`2023-12-01T00:00:00.401-05:00`).
//!
//! Names, usernames, referrers and metadata come from prospects, and a spreadsheet program runs
//! a cell that starts with `=`, `+`, `-` or `@` (or a tab or CR before one) as a formula: OWASP
//! calls this "CSV Injection" (<https://owasp.org/www-community/attacks/CSV_Injection>). So by
//! default such a cell is written with a leading `'`, which spreadsheets take to mean "text"
//! and do not show; see [`escape_formula`]. [`Escaping::Raw`] writes every cell as it is.

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use leads_types::{Lead, Timestamp};
use std::borrow::Cow;
use std::fmt;
use std::io;
use std::str::FromStr;

/// A column of leads' CSV. Its [`name`](LeadColumn::name) is its header, and what
/// [`FromStr`] reads back, so a caller can take a list of columns from a user and refuse an
/// unknown one with [`UnknownColumn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeadColumn {
    Id,
    CreatedAt,
    UpdatedAt,
    UserId,
    Username,
    /// Empty unless the credential may read emails.
    Email,
    Name,
    ProductId,
    ProductTitle,
    /// Empty until the lead's user became a member (converted).
    MemberId,
    Referrer,
    /// The metadata object's JSON text.
    Metadata,
}

impl LeadColumn {
    /// Every column, in the order a CSV without a chosen subset has them.
    pub const ALL: [LeadColumn; 12] = [
        LeadColumn::Id,
        LeadColumn::CreatedAt,
        LeadColumn::UpdatedAt,
        LeadColumn::UserId,
        LeadColumn::Username,
        LeadColumn::Email,
        LeadColumn::Name,
        LeadColumn::ProductId,
        LeadColumn::ProductTitle,
        LeadColumn::MemberId,
        LeadColumn::Referrer,
        LeadColumn::Metadata,
    ];

    /// The column's name: its header, and what [`FromStr`] accepts.
    pub fn name(self) -> &'static str {
        match self {
            LeadColumn::Id => "id",
            LeadColumn::CreatedAt => "created_at",
            LeadColumn::UpdatedAt => "updated_at",
            LeadColumn::UserId => "user_id",
            LeadColumn::Username => "username",
            LeadColumn::Email => "email",
            LeadColumn::Name => "name",
            LeadColumn::ProductId => "product_id",
            LeadColumn::ProductTitle => "product_title",
            LeadColumn::MemberId => "member_id",
            LeadColumn::Referrer => "referrer",
            LeadColumn::Metadata => "metadata",
        }
    }

    /// The lead's value in this column, before escaping; a null is empty. Dates are written in
    /// `zone` with its offset, or in UTC with `Z` when there is none.
    fn cell(self, lead: &Lead, zone: Option<Tz>) -> Cow<'_, str> {
        fn text(value: Option<&str>) -> Cow<'_, str> {
            Cow::Borrowed(value.unwrap_or_default())
        }
        match self {
            LeadColumn::Id => Cow::Borrowed(&lead.id),
            LeadColumn::CreatedAt => Cow::Owned(date(lead.created_at, zone)),
            LeadColumn::UpdatedAt => Cow::Owned(date(lead.updated_at, zone)),
            LeadColumn::UserId => Cow::Borrowed(&lead.user.id),
            LeadColumn::Username => Cow::Borrowed(&lead.user.username),
            LeadColumn::Email => text(lead.user.email.as_deref()),
            LeadColumn::Name => text(lead.user.name.as_deref()),
            LeadColumn::ProductId => text(lead.product.as_ref().map(|p| p.id.as_str())),
            LeadColumn::ProductTitle => text(lead.product.as_ref().map(|p| p.title.as_str())),
            LeadColumn::MemberId => text(lead.member.as_ref().map(|m| m.id.as_str())),
            LeadColumn::Referrer => text(lead.referrer.as_deref()),
            LeadColumn::Metadata => text(lead.metadata.as_ref().map(|m| m.get())),
        }
    }
}

/// `at` as RFC 3339 with milliseconds: in UTC with `Z`, or in `zone` with its offset.
fn date(at: Timestamp, zone: Option<Tz>) -> String {
    match (zone, DateTime::<Utc>::from_timestamp_millis(at.as_millis())) {
        (Some(zone), Some(utc)) if zone != Tz::UTC => utc
            .with_timezone(&zone)
            .to_rfc3339_opts(SecondsFormat::Millis, false),
        _ => at.to_string(),
    }
}

impl fmt::Display for LeadColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LeadColumn {
    type Err = UnknownColumn;

    /// A column by its exact [`name`](LeadColumn::name).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        LeadColumn::ALL
            .into_iter()
            .find(|column| column.name() == name)
            .ok_or_else(|| UnknownColumn(name.to_owned()))
    }
}

/// A name that is no [`LeadColumn`]'s; its message lists the names there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownColumn(pub String);

impl fmt::Display for UnknownColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown column {:?}; the columns are ", self.0)?;
        for (i, column) in LeadColumn::ALL.iter().enumerate() {
            let separator = if i == 0 { "" } else { ", " };
            write!(f, "{separator}{column}")?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownColumn {}

/// Whether cells a spreadsheet would run as formulas are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Escaping {
    /// The default: cells go through [`escape_formula`].
    #[default]
    Formulas,
    /// Every cell exactly as it is, for programs that read the CSV as data (the CLI's
    /// `--csv-raw`).
    Raw,
}

impl Escaping {
    fn apply(self, cell: &str) -> Cow<'_, str> {
        match self {
            Escaping::Formulas => escape_formula(cell),
            Escaping::Raw => Cow::Borrowed(cell),
        }
    }
}

/// The first characters that make a spreadsheet program read a cell as a formula: OWASP's list
/// for "CSV Injection" (<https://owasp.org/www-community/attacks/CSV_Injection>).
pub const FORMULA_TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `cell` with a leading `'` when it starts with one of [`FORMULA_TRIGGERS`], as OWASP
/// recommends against "CSV Injection"; any other cell, an empty one included, as it is.
///
/// Leading `'`s are skipped before looking, so `'=1` becomes `''=1`: a spreadsheet shows the
/// original `'=1` (it hides only the first `'`), and [`unescape_formula`] undoes every escape
/// exactly, for a program that reads the CSV back.
pub fn escape_formula(cell: &str) -> Cow<'_, str> {
    if cell.trim_start_matches('\'').starts_with(FORMULA_TRIGGERS) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// The cell [`escape_formula`] was given: one leading `'` dropped where it added one.
pub fn unescape_formula(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.trim_start_matches('\'').starts_with(FORMULA_TRIGGERS) => rest,
        _ => cell,
    }
}

/// What a [`LeadCsvWriter`] writes.
#[derive(Debug, Clone, Default)]
pub struct LeadCsvOptions {
    /// The columns, in this order; empty means [`LeadColumn::ALL`].
    pub columns: Vec<LeadColumn>,
    pub escaping: Escaping,
    /// The time zone dates are written in, with their offset; UTC (`Z`) when `None`.
    pub time_zone: Option<Tz>,
}

/// Writes leads as RFC 4180 CSV: [`write_header`](Self::write_header) once, then
/// [`write_lead`](Self::write_lead) for each lead. Output is buffered until
/// [`flush`](Self::flush) (or drop, which ignores errors).
///
/// Errors are the underlying writer's, as they are: a closed pipe stays
/// [`io::ErrorKind::BrokenPipe`].
pub struct LeadCsvWriter<W: io::Write> {
    csv: csv::Writer<W>,
    columns: Vec<LeadColumn>,
    escaping: Escaping,
    time_zone: Option<Tz>,
}

impl<W: io::Write> LeadCsvWriter<W> {
    pub fn new(out: W, options: LeadCsvOptions) -> Self {
        let columns = if options.columns.is_empty() {
            LeadColumn::ALL.to_vec()
        } else {
            options.columns
        };
        LeadCsvWriter {
            csv: csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(out),
            columns,
            escaping: options.escaping,
            time_zone: options.time_zone,
        }
    }

    /// The header record: the columns' names.
    pub fn write_header(&mut self) -> io::Result<()> {
        let names = self.columns.iter().map(|column| column.name());
        self.csv.write_record(names).map_err(io_error)
    }

    /// One record: the lead's value in each column, escaped as the options say.
    pub fn write_lead(&mut self, lead: &Lead) -> io::Result<()> {
        for column in &self.columns {
            let cell = column.cell(lead, self.time_zone);
            let cell = self.escaping.apply(&cell);
            self.csv.write_field(cell.as_bytes()).map_err(io_error)?;
        }
        self.csv.write_record(None::<&[u8]>).map_err(io_error)
    }

    /// Writes out what is buffered and flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.csv.flush()
    }

    /// Flushes, and gives back the underlying writer.
    pub fn into_inner(self) -> io::Result<W> {
        self.csv.into_inner().map_err(|e| e.into_error())
    }
}

/// The `csv` crate wraps I/O errors in its own; this unwraps them. Its other errors (unequal
/// record lengths, serde) cannot happen here: every record has the same columns, all text.
fn io_error(error: csv::Error) -> io::Error {
    match error.into_kind() {
        csv::ErrorKind::Io(error) => error,
        other => io::Error::other(format!("CSV: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leads_types::{LeadProduct, LeadUser, Timestamp};

    fn lead() -> Lead {
        Lead {
            id: "lead_aaaaaaaaaaaaa".into(),
            created_at: Timestamp::from_millis(1_701_406_800_401).unwrap(),
            updated_at: Timestamp::from_millis(1_701_406_800_402).unwrap(),
            referrer: Some("https://x.test/?a=1,2".into()),
            metadata: Some(
                serde_json::value::RawValue::from_string(r#"{"a":"b,c"}"#.into()).unwrap(),
            ),
            user: LeadUser {
                id: "user_xxxxxxxxxxxxx".into(),
                email: Some("john.doe@example.com".into()),
                name: Some("John \"JD\" Doe".into()),
                username: "johndoe42".into(),
            },
            product: Some(LeadProduct {
                id: "prod_xxxxxxxxxxxxx".into(),
                title: "Pickaxe Analytics".into(),
            }),
            member: None,
        }
    }

    fn render(options: LeadCsvOptions, leads: &[Lead]) -> String {
        let mut writer = LeadCsvWriter::new(Vec::new(), options);
        writer.write_header().unwrap();
        for lead in leads {
            writer.write_lead(lead).unwrap();
        }
        String::from_utf8(writer.into_inner().unwrap()).unwrap()
    }

    /// The one record after the header.
    fn record(options: LeadCsvOptions, lead: &Lead) -> String {
        let text = render(options, std::slice::from_ref(lead));
        let (_, record) = text.split_once("\r\n").unwrap();
        record.strip_suffix("\r\n").unwrap().to_owned()
    }

    fn only(column: LeadColumn, escaping: Escaping) -> LeadCsvOptions {
        LeadCsvOptions {
            columns: vec![column],
            escaping,
            time_zone: None,
        }
    }

    #[test]
    fn every_column_under_its_name_with_rfc_4180_quoting() {
        let text = render(LeadCsvOptions::default(), &[lead()]);
        assert_eq!(
            text,
            "id,created_at,updated_at,user_id,username,email,name,product_id,product_title,\
             member_id,referrer,metadata\r\n\
             lead_aaaaaaaaaaaaa,2023-12-01T05:00:00.401Z,2023-12-01T05:00:00.402Z,\
             user_xxxxxxxxxxxxx,johndoe42,john.doe@example.com,\"John \"\"JD\"\" Doe\",\
             prod_xxxxxxxxxxxxx,Pickaxe Analytics,,\"https://x.test/?a=1,2\",\
             \"{\"\"a\"\":\"\"b,c\"\"}\"\r\n"
        );
    }

    #[test]
    fn no_leads_is_the_header_alone() {
        let header = LeadColumn::ALL.map(LeadColumn::name).join(",");
        assert_eq!(
            render(LeadCsvOptions::default(), &[]),
            format!("{header}\r\n")
        );
    }

    #[test]
    fn a_chosen_subset_of_columns_in_the_order_chosen() {
        let options = LeadCsvOptions {
            columns: vec![LeadColumn::Username, LeadColumn::Id, LeadColumn::MemberId],
            escaping: Escaping::Formulas,
            time_zone: None,
        };
        assert_eq!(
            render(options, &[lead()]),
            "username,id,member_id\r\njohndoe42,lead_aaaaaaaaaaaaa,\r\n"
        );
    }

    #[test]
    fn columns_are_read_back_by_name_and_an_unknown_one_is_refused() {
        for column in LeadColumn::ALL {
            assert_eq!(column.name().parse::<LeadColumn>(), Ok(column));
            assert_eq!(column.to_string(), column.name());
        }
        let error = "user".parse::<LeadColumn>().unwrap_err();
        assert_eq!(error, UnknownColumn("user".into()));
        assert!(
            error.to_string().starts_with(
                "unknown column \"user\"; the columns are id, created_at, updated_at, user_id,"
            ),
            "{error}"
        );
        assert!(error.to_string().ends_with(", metadata"), "{error}");
        assert!("ID".parse::<LeadColumn>().is_err(), "names are exact");
    }

    #[test]
    fn a_cell_starting_with_any_trigger_gets_a_leading_quote() {
        for (cell, escaped) in [
            (
                "=HYPERLINK(\"https://evil.example\",\"Click\")",
                "'=HYPERLINK(\"https://evil.example\",\"Click\")",
            ),
            ("+1+2", "'+1+2"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("=", "'="),
        ] {
            assert_eq!(escape_formula(cell), escaped, "{cell:?}");
        }
    }

    #[test]
    fn a_cell_that_merely_contains_a_trigger_later_or_is_empty_is_left_alone() {
        for cell in [
            "",
            "a=b",
            "1+1",
            "john-doe",
            "john@example.com",
            " =1",
            "x\t=1",
            "'",
            "'a",
        ] {
            assert_eq!(escape_formula(cell), cell, "{cell:?}");
            assert!(matches!(escape_formula(cell), Cow::Borrowed(_)));
        }
    }

    #[test]
    fn a_cell_already_starting_with_quotes_keeps_them_all_and_gets_one_more() {
        assert_eq!(escape_formula("'=1"), "''=1");
        assert_eq!(escape_formula("''-1"), "'''-1");
    }

    #[test]
    fn unescaping_gives_back_exactly_what_was_escaped() {
        for cell in [
            "", "'", "''", "'a", "=1", "'=1", "''=1", "-", "@x", "\t", "\r", "a=b", "'''+",
        ] {
            assert_eq!(unescape_formula(&escape_formula(cell)), cell, "{cell:?}");
        }
    }

    #[test]
    fn escaped_cells_are_still_quoted_where_rfc_4180_says() {
        let mut lead = lead();
        for (name, written) in [
            ("=1,2", "\"'=1,2\""),
            ("=\"a\"", "\"'=\"\"a\"\"\""),
            ("=a\nb", "\"'=a\nb\""),
            ("\r=1", "\"'\r=1\""),
            ("\t=1", "'\t=1"),
            // A lone empty field is quoted, or its record would be a blank line.
            ("", "\"\""),
        ] {
            lead.user.name = Some(name.into());
            let options = only(LeadColumn::Name, Escaping::Formulas);
            assert_eq!(record(options, &lead), written, "{name:?}");
        }
    }

    #[test]
    fn empty_cells_stay_empty() {
        let mut lead = lead();
        lead.user.name = None;
        lead.referrer = Some(String::new());
        let options = LeadCsvOptions {
            columns: vec![LeadColumn::Name, LeadColumn::Referrer, LeadColumn::Id],
            escaping: Escaping::Formulas,
            time_zone: None,
        };
        assert_eq!(record(options, &lead), ",,lead_aaaaaaaaaaaaa");
    }

    #[test]
    fn every_column_a_prospect_fills_is_escaped() {
        let mut lead = lead();
        lead.user.username = "-cmd".into();
        lead.user.name = Some("=1+1".into());
        lead.user.email = Some("@evil.example".into());
        lead.referrer = Some("+1".into());
        lead.product.as_mut().unwrap().title = "=T()".into();
        let options = LeadCsvOptions {
            columns: vec![
                LeadColumn::Username,
                LeadColumn::Name,
                LeadColumn::Email,
                LeadColumn::Referrer,
                LeadColumn::ProductTitle,
            ],
            escaping: Escaping::Formulas,
            time_zone: None,
        };
        assert_eq!(
            record(options, &lead),
            "'-cmd,'=1+1,'@evil.example,'+1,'=T()"
        );
    }

    #[test]
    fn raw_writes_every_cell_as_it_is() {
        let mut lead = lead();
        for name in [
            "=HYPERLINK(\"https://evil.example\",\"Click\")",
            "-1",
            "'=1",
        ] {
            lead.user.name = Some(name.into());
            let options = only(LeadColumn::Name, Escaping::Raw);
            let expected = if name.contains('"') {
                format!("\"{}\"", name.replace('"', "\"\""))
            } else {
                name.to_owned()
            };
            assert_eq!(record(options, &lead), expected, "{name:?}");
        }
    }

    #[test]
    fn dates_are_written_in_the_chosen_time_zone_with_its_offset() {
        let columns = vec![LeadColumn::CreatedAt, LeadColumn::UpdatedAt];
        let zoned = |zone: Option<Tz>| LeadCsvOptions {
            columns: columns.clone(),
            escaping: Escaping::Formulas,
            time_zone: zone,
        };
        assert_eq!(
            record(zoned(Some(chrono_tz::America::New_York)), &lead()),
            "2023-12-01T00:00:00.401-05:00,2023-12-01T00:00:00.402-05:00"
        );
        assert_eq!(
            record(zoned(Some(chrono_tz::Asia::Kolkata)), &lead()),
            "2023-12-01T10:30:00.401+05:30,2023-12-01T10:30:00.402+05:30"
        );
        for utc in [None, Some(Tz::UTC)] {
            assert_eq!(
                record(zoned(utc), &lead()),
                "2023-12-01T05:00:00.401Z,2023-12-01T05:00:00.402Z"
            );
        }
    }

    #[test]
    fn escaping_is_on_by_default() {
        assert_eq!(LeadCsvOptions::default().escaping, Escaping::Formulas);
    }

    #[test]
    fn a_closed_pipe_is_reported_as_one() {
        struct Closed;
        impl io::Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut writer = LeadCsvWriter::new(Closed, LeadCsvOptions::default());
        let lead = lead();
        // Enough records to overflow the writer's buffer, so a write itself fails.
        let error = (0..1000)
            .try_for_each(|_| writer.write_lead(&lead))
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(
            writer.flush().unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
    }
}
