//! Printing leads: a table that fits the terminal, JSON, NDJSON or CSV.
//!
//! Lists are written a page at a time as they arrive and flushed after each, so a walk over
//! any number of leads holds one page in memory and a pipe sees lines as soon as they exist.
//! CSV is the server library's, which exports write too: the same columns and the same
//! escaping of cells a spreadsheet would run as formulas.

use clap::ValueEnum;
use leads_server::formats::csv::{Escaping, LeadCsvOptions, LeadCsvWriter};
use leads_types::Lead;
use std::io::{self, Write};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns cut to the terminal's width.
    Table,
    /// One JSON document: an array for a list, an object for one lead.
    Json,
    /// One JSON object a line.
    Ndjson,
    /// RFC 4180 CSV with a header row; a cell starting with =, +, -, @, a tab or a carriage
    /// return gets a leading ' so that spreadsheets do not run it (see --csv-raw).
    Csv,
}

/// The width a table may take: `COLUMNS` when set, else the terminal's, else no limit
/// (output to a file or pipe is not cut).
pub fn terminal_width() -> Option<usize> {
    let from_env = std::env::var("COLUMNS")
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok())
        .filter(|&width| width > 0);
    from_env.or_else(|| {
        let term = console::Term::stdout();
        term.is_term()
            .then(|| term.size_checked())
            .flatten()
            .map(|(_, columns)| usize::from(columns))
    })
}

/// Writes a list of leads page by page.
pub struct ListWriter<W: Write> {
    format: Format,
    /// How CSV cells are escaped.
    escaping: Escaping,
    out: W,
    width: Option<usize>,
    /// Whether the header (if the format has one) is out.
    started: bool,
    /// The table's columns, fixed by the first page.
    columns: Vec<(Column, usize)>,
    written: usize,
}

impl<W: Write> ListWriter<W> {
    pub fn new(format: Format, escaping: Escaping, out: W, width: Option<usize>) -> Self {
        ListWriter {
            format,
            escaping,
            out,
            width,
            started: false,
            columns: Vec::new(),
            written: 0,
        }
    }

    /// Writes one page of the list and flushes it.
    pub fn page(&mut self, leads: &[Lead]) -> io::Result<()> {
        self.start(leads)?;
        for lead in leads {
            match self.format {
                Format::Table => write_row(&mut self.out, &self.columns, |c| c.cell(lead))?,
                Format::Json => {
                    self.out
                        .write_all(if self.written == 0 { b"[\n" } else { b",\n" })?;
                    let text = serde_json::to_string_pretty(lead)?;
                    for (i, line) in text.lines().enumerate() {
                        if i > 0 {
                            self.out.write_all(b"\n")?;
                        }
                        write!(self.out, "  {line}")?;
                    }
                }
                Format::Ndjson => {
                    serde_json::to_writer(&mut self.out, lead)?;
                    self.out.write_all(b"\n")?;
                }
                Format::Csv => {
                    let mut csv = self.csv();
                    csv.write_lead(lead)?;
                    csv.flush()?;
                }
            }
            self.written += 1;
        }
        self.out.flush()
    }

    /// Ends the list (the table's header or CSV's when it was empty, JSON's closing bracket).
    pub fn finish(mut self) -> io::Result<()> {
        self.start(&[])?;
        if self.format == Format::Json {
            self.out
                .write_all(if self.written == 0 { b"[]\n" } else { b"\n]\n" })?;
        }
        self.out.flush()
    }

    /// The header, before the first row.
    fn start(&mut self, first_page: &[Lead]) -> io::Result<()> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        match self.format {
            Format::Table => {
                self.columns = layout(first_page, self.width);
                write_row(&mut self.out, &self.columns, |c| c.header().to_owned())
            }
            Format::Csv => {
                let mut csv = self.csv();
                csv.write_header()?;
                csv.flush()
            }
            Format::Json | Format::Ndjson => Ok(()),
        }
    }

    /// A CSV writer over the output; it buffers, so it is flushed before it is dropped.
    fn csv(&mut self) -> LeadCsvWriter<&mut W> {
        let options = LeadCsvOptions {
            columns: Vec::new(),
            escaping: self.escaping,
            time_zone: None,
        };
        LeadCsvWriter::new(&mut self.out, options)
    }
}

/// Writes one lead: JSON pretty-printed, a table as one field a line.
pub fn write_one(
    format: Format,
    escaping: Escaping,
    out: &mut impl Write,
    width: Option<usize>,
    lead: &Lead,
) -> io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, lead)?;
            out.write_all(b"\n")?;
        }
        Format::Table => {
            let key_width = DETAIL_KEYS.iter().map(|k| k.len()).max().unwrap_or(0);
            let value_width = width.map(|w| w.saturating_sub(key_width + GAP).max(8));
            for (key, value) in DETAIL_KEYS.iter().zip(detail_values(lead)) {
                let value = match value_width {
                    Some(width) => fit(&value, width, false),
                    None => clean(&value),
                };
                writeln!(out, "{key:key_width$}{:GAP$}{value}", "")?;
            }
        }
        Format::Ndjson | Format::Csv => {
            let mut list = ListWriter::new(format, escaping, &mut *out, width);
            list.page(std::slice::from_ref(lead))?;
            list.finish()?;
        }
    }
    out.flush()
}

/// Spaces between table columns.
const GAP: usize = 2;
const NULL: &str = "-";

/// The table's columns, most important first: the last ones go first when space is short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Id,
    Created,
    User,
    Product,
    Email,
    Member,
    Referrer,
}

const COLUMNS: [Column; 7] = [
    Column::Id,
    Column::Created,
    Column::User,
    Column::Product,
    Column::Email,
    Column::Member,
    Column::Referrer,
];

impl Column {
    fn header(self) -> &'static str {
        match self {
            Column::Id => "ID",
            Column::Created => "CREATED",
            Column::User => "USER",
            Column::Product => "PRODUCT",
            Column::Email => "EMAIL",
            Column::Member => "MEMBER",
            Column::Referrer => "REFERRER",
        }
    }

    fn cell(self, lead: &Lead) -> String {
        let or_null = |value: Option<&str>| value.unwrap_or(NULL).to_owned();
        match self {
            Column::Id => lead.id.clone(),
            Column::Created => lead.created_at.to_string(),
            Column::User => lead.user.username.clone(),
            Column::Product => or_null(lead.product.as_ref().map(|p| p.title.as_str())),
            Column::Email => or_null(lead.user.email.as_deref()),
            Column::Member => or_null(lead.member.as_ref().map(|m| m.id.as_str())),
            Column::Referrer => or_null(lead.referrer.as_deref()),
        }
    }

    /// The narrowest a column gets before it is dropped instead. Ids and times are never cut:
    /// a cut one is of no use to `leads get` or `--created-before`.
    fn min_width(self, natural: usize) -> usize {
        match self {
            Column::Id | Column::Created | Column::Member => natural,
            Column::User | Column::Product => natural.min(12),
            Column::Email | Column::Referrer => natural.min(16),
        }
    }
}

/// Column widths from the first page's content, narrowed to `limit`: first dropping the
/// least important columns until the rest can fit, then narrowing the widest. The last column
/// gets whatever room is left (all it needs without a limit), as later pages may hold longer
/// values than the first.
fn layout(sample: &[Lead], limit: Option<usize>) -> Vec<(Column, usize)> {
    let mut columns: Vec<(Column, usize)> = COLUMNS
        .iter()
        .map(|&column| {
            let widest = sample
                .iter()
                .map(|lead| clean(&column.cell(lead)).width())
                .max()
                .unwrap_or(0);
            (column, widest.max(column.header().len()))
        })
        .collect();
    let total = |columns: &[(Column, usize)], width: &dyn Fn(Column, usize) -> usize| {
        columns.iter().map(|&(c, w)| width(c, w)).sum::<usize>()
            + GAP * columns.len().saturating_sub(1)
    };
    if let Some(limit) = limit {
        while columns.len() > 1 && total(&columns, &|c, w| c.min_width(w)) > limit {
            columns.pop();
        }
        let natural: Vec<usize> = columns.iter().map(|&(_, w)| w).collect();
        while total(&columns, &|_, w| w) > limit {
            let widest = columns
                .iter()
                .enumerate()
                .filter(|(i, (c, w))| *w > c.min_width(natural[*i]))
                .max_by_key(|(_, (_, w))| *w)
                .map(|(i, _)| i);
            match widest {
                Some(i) => columns[i].1 -= 1,
                None => break,
            }
        }
    }
    let room = limit.map_or(usize::MAX, |limit| {
        limit.saturating_sub(total(&columns, &|_, w| w))
    });
    if let Some((_, width)) = columns.last_mut() {
        *width = width.saturating_add(room);
    }
    columns
}

fn write_row(
    out: &mut impl Write,
    columns: &[(Column, usize)],
    cell: impl Fn(Column) -> String,
) -> io::Result<()> {
    let mut line = String::new();
    for (i, &(column, width)) in columns.iter().enumerate() {
        let last = i + 1 == columns.len();
        if i > 0 {
            line.push_str(&" ".repeat(GAP));
        }
        line.push_str(&fit(&cell(column), width, !last));
    }
    writeln!(out, "{}", line.trim_end())
}

/// Control characters (a newline in a referrer, a terminal escape sequence) shown as `?`, so a
/// value can neither break the table nor drive the terminal.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// `text` in exactly `width` columns when `pad`, else at most: cut with `…` when too wide.
fn fit(text: &str, width: usize, pad: bool) -> String {
    let text = clean(text);
    let mut out = String::new();
    let mut used = 0;
    if text.width() <= width {
        out.push_str(&text);
        used = text.width();
    } else if width > 0 {
        for c in text.chars() {
            let w = c.width().unwrap_or(0);
            if used + w > width - 1 {
                break;
            }
            out.push(c);
            used += w;
        }
        out.push('…');
        used += 1;
    }
    if pad {
        out.push_str(&" ".repeat(width.saturating_sub(used)));
    }
    out
}

const DETAIL_KEYS: [&str; 11] = [
    "id",
    "created_at",
    "updated_at",
    "user",
    "username",
    "email",
    "name",
    "product",
    "member",
    "referrer",
    "metadata",
];

fn detail_values(lead: &Lead) -> [String; 11] {
    let or_null = |value: Option<&str>| value.unwrap_or(NULL).to_owned();
    [
        lead.id.clone(),
        lead.created_at.to_string(),
        lead.updated_at.to_string(),
        lead.user.id.clone(),
        lead.user.username.clone(),
        or_null(lead.user.email.as_deref()),
        or_null(lead.user.name.as_deref()),
        or_null(
            lead.product
                .as_ref()
                .map(|p| format!("{} ({})", p.title, p.id))
                .as_deref(),
        ),
        or_null(lead.member.as_ref().map(|m| m.id.as_str())),
        or_null(lead.referrer.as_deref()),
        or_null(lead.metadata.as_ref().map(|m| m.get())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use leads_types::{LeadProduct, LeadUser, Timestamp};

    fn lead(id: &str, referrer: Option<&str>) -> Lead {
        Lead {
            id: id.into(),
            created_at: Timestamp::from_millis(1_701_406_800_401).unwrap(),
            updated_at: Timestamp::from_millis(1_701_406_800_401).unwrap(),
            referrer: referrer.map(str::to_owned),
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

    fn render(format: Format, width: Option<usize>, pages: &[Vec<Lead>]) -> String {
        render_with(format, Escaping::default(), width, pages)
    }

    fn render_with(
        format: Format,
        escaping: Escaping,
        width: Option<usize>,
        pages: &[Vec<Lead>],
    ) -> String {
        let mut out = Vec::new();
        let mut writer = ListWriter::new(format, escaping, &mut out, width);
        for page in pages {
            writer.page(page).unwrap();
        }
        writer.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_table_fits_the_width_it_is_given() {
        let long = "https://example.com/a/very/long/referrer/that/goes/on/and/on?utm_source=x";
        let page = vec![
            lead("lead_aaaaaaaaaaaaa", Some(long)),
            lead("lead_bbbbbbbbbbbbb", None),
        ];
        let wide = render(Format::Table, None, std::slice::from_ref(&page));
        assert!(wide.lines().next().unwrap().ends_with("REFERRER"));
        assert!(wide.contains(long));
        for width in [60, 80, 100, 120] {
            let text = render(Format::Table, Some(width), std::slice::from_ref(&page));
            for line in text.lines() {
                assert!(line.width() <= width, "{width}: {line:?}");
                assert!(
                    line.starts_with("ID") || line.starts_with("lead_"),
                    "{line}"
                );
            }
            assert_eq!(text.lines().count(), 3);
        }
        // Space short: the least important columns go, ids are never cut.
        let narrow = render(Format::Table, Some(50), &[page]);
        assert!(narrow.contains("lead_aaaaaaaaaaaaa"));
        assert!(!narrow.contains("REFERRER"));
    }

    #[test]
    fn later_pages_keep_the_first_pages_columns_and_cut_what_does_not_fit() {
        let first = vec![lead("lead_aaaaaaaaaaaaa", Some("https://a.test/"))];
        let longer = "https://a.much.longer.test/path";
        let second = vec![lead("lead_bbbbbbbbbbbbb", Some(longer))];
        let pages = [first, second];
        let text = render(Format::Table, None, &pages);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[2].ends_with(longer), "{}", lines[2]);
        let text = render(Format::Table, Some(120), &pages);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[2].ends_with('…'), "{}", lines[2]);
        assert!(lines[2].width() <= 120);
        // The columns line up across pages.
        let at = |line: &str| line.find("2023-").unwrap();
        assert_eq!(at(lines[1]), at(lines[2]));
    }

    #[test]
    fn control_characters_cannot_reach_the_terminal() {
        let page = vec![lead("lead_aaaaaaaaaaaaa", Some("x\u{1b}[2Jy\nz"))];
        let text = render(Format::Table, None, &[page]);
        assert!(text.contains("x?[2Jy?z"));
        assert_eq!(text.lines().count(), 2);
    }

    #[test]
    fn json_streams_one_array_and_ndjson_one_line_each() {
        let pages = [
            vec![lead("lead_a", None)],
            vec![lead("lead_b", None), lead("lead_c", None)],
        ];
        let json: serde_json::Value =
            serde_json::from_str(&render(Format::Json, None, &pages)).unwrap();
        assert_eq!(json.as_array().unwrap().len(), 3);
        assert_eq!(render(Format::Json, None, &[]), "[]\n");
        let ndjson = render(Format::Ndjson, None, &pages);
        assert_eq!(ndjson.lines().count(), 3);
        for line in ndjson.lines() {
            serde_json::from_str::<Lead>(line).unwrap();
        }
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let text = render(
            Format::Csv,
            None,
            &[vec![lead("lead_a", Some("https://x.test/?a=1,2"))]],
        );
        let mut lines = text.split("\r\n");
        assert_eq!(
            lines.next().unwrap(),
            "id,created_at,updated_at,user_id,username,email,name,product_id,product_title,\
             member_id,referrer,metadata"
        );
        assert_eq!(
            lines.next().unwrap(),
            "lead_a,2023-12-01T05:00:00.401Z,2023-12-01T05:00:00.401Z,user_xxxxxxxxxxxxx,\
             johndoe42,john.doe@example.com,\"John \"\"JD\"\" Doe\",prod_xxxxxxxxxxxxx,\
             Pickaxe Analytics,,\"https://x.test/?a=1,2\",\"{\"\"a\"\":\"\"b,c\"\"}\""
        );
        assert_eq!(lines.collect::<Vec<_>>(), [""], "CRLF after each record");
        let empty = render(Format::Csv, None, &[]);
        assert!(empty.starts_with("id,created_at,"), "{empty}");
        assert_eq!(empty.matches("\r\n").count(), 1, "the header alone");
    }

    #[test]
    fn csv_escapes_formulas_unless_raw() {
        let mut evil = lead("lead_a", Some("@SUM(1+1)"));
        evil.user.name = Some("=HYPERLINK(\"https://evil.example\",\"Click\")".into());
        let pages = [vec![evil.clone()], vec![evil]];
        let escaped = render(Format::Csv, None, &pages);
        let records: Vec<&str> = escaped.split("\r\n").skip(1).take(2).collect();
        for record in records {
            assert!(
                record.contains(",\"'=HYPERLINK(\"\"https://evil.example\"\",\"\"Click\"\")\","),
                "{record}"
            );
            assert!(record.contains(",'@SUM(1+1),"), "{record}");
        }
        let raw = render_with(Format::Csv, Escaping::Raw, None, &pages);
        assert!(raw.contains(",\"=HYPERLINK("), "{raw}");
        assert!(raw.contains(",@SUM(1+1),"), "{raw}");
        assert!(!raw.contains('\''), "{raw}");
    }

    #[test]
    fn one_lead_as_a_table_is_one_field_a_line() {
        let mut out = Vec::new();
        write_one(
            Format::Table,
            Escaping::Formulas,
            &mut out,
            Some(40),
            &lead("lead_a", None),
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), DETAIL_KEYS.len());
        assert!(text.contains("referrer    -"));
        assert!(text.lines().all(|line| line.width() <= 40), "{text}");
    }
}
