//! `leads list | get | create | update`: the API over HTTP, through the `leads-client` crate,
//! against this server or Whop's own.

use crate::cli::Failure;
use crate::output::{self, Format, ListWriter};
use clap::{ArgGroup, Args};
use futures_util::TryStreamExt;
use leads_client::{
    Client, CreateLeadParams, Error, ListLeadsParams, Timestamp, UpdateLeadParams, DEFAULT_BASE_URL,
};
use leads_server::formats::csv::Escaping;
use std::io::{self, Write};
use std::time::Duration;

/// Most leads one request asks for.
const MAX_PAGE_SIZE: usize = 100;

/// Where the API is and who is asking.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// API key, sent as a bearer token.
    #[arg(long, env = "WHOP_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Base URL of the API, such as http://127.0.0.1:8080/api/v1.
    #[arg(long, env = "WHOP_BASE_URL", default_value = DEFAULT_BASE_URL)]
    base_url: String,
    /// Seconds one request may take.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
    /// How often a failed request is tried again (429, 5xx, connection failures).
    #[arg(long, default_value_t = 2)]
    max_retries: u32,
}

impl ConnectionArgs {
    pub(crate) fn client(&self) -> Result<Client, Failure> {
        let api_key = self.api_key.clone().filter(|key| !key.trim().is_empty());
        let api_key = api_key.ok_or_else(|| Failure {
            message: "no API key: pass --api-key or set WHOP_API_KEY".into(),
            code: 2,
        })?;
        Client::builder()
            .api_key(api_key)
            .base_url(&self.base_url)
            .timeout(Duration::from_secs(self.timeout))
            .max_retries(self.max_retries)
            .build()
            .map_err(Failure::from)
    }
}

/// How `--format csv` writes cells.
#[derive(Debug, Args)]
pub struct CsvArgs {
    /// Write CSV cells exactly as they are, without the leading ' that guards formulas.
    ///
    /// By default, --format csv writes a cell starting with =, +, -, @, a tab or a carriage
    /// return with a leading ', so that spreadsheet programs show it as text instead of running
    /// it as a formula (OWASP "CSV Injection"): names, usernames, referrers and metadata come
    /// from prospects. --csv-raw is for programs that read the CSV as data.
    #[arg(long)]
    csv_raw: bool,
}

impl CsvArgs {
    fn escaping(&self) -> Escaping {
        if self.csv_raw {
            Escaping::Raw
        } else {
            Escaping::Formulas
        }
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// The company whose leads to list (biz_...).
    #[arg(long)]
    company: String,
    /// Only leads for this product (prod_...); repeat for several.
    #[arg(long = "product", value_name = "PRODUCT")]
    products: Vec<String>,
    /// Only leads created strictly after this RFC 3339 time.
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    created_after: Option<Timestamp>,
    /// Only leads created strictly before this RFC 3339 time.
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    created_before: Option<Timestamp>,
    /// Only leads whose user's username, name or email, or whose referrer, contains this text,
    /// ignoring case (1 to 100 characters; one or two match the start of username, name or
    /// email). An extension of this server.
    #[arg(long, value_name = "TEXT")]
    query: Option<String>,
    /// Only leads of the user with exactly this email, ignoring case. Needs member:email:read.
    /// An extension of this server.
    #[arg(long, value_name = "ADDRESS")]
    email: Option<String>,
    /// Print at most this many leads (newest first); all of them when left out.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    csv: CsvArgs,
    #[command(flatten)]
    connection: ConnectionArgs,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The lead's id (lead_...).
    id: String,
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    #[command(flatten)]
    csv: CsvArgs,
    #[command(flatten)]
    connection: ConnectionArgs,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The company the lead is for (biz_...).
    #[arg(long)]
    company: String,
    /// The user the lead is about (user_...); needed with a company key.
    #[arg(long)]
    user: Option<String>,
    /// The product the lead is interested in (prod_...).
    #[arg(long)]
    product: Option<String>,
    /// Where the lead came from.
    #[arg(long)]
    referrer: Option<String>,
    /// A JSON object of your own, such as '{"campaign":"spring"}'.
    #[arg(long, value_parser = parse_json_object, value_name = "JSON")]
    metadata: Option<serde_json::Value>,
    /// Makes the create safe to retry (and so retried): the same key and body record one lead.
    #[arg(long)]
    idempotency_key: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    #[command(flatten)]
    csv: CsvArgs,
    #[command(flatten)]
    connection: ConnectionArgs,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("change").required(true).multiple(true)))]
pub struct UpdateArgs {
    /// The lead's id (lead_...).
    id: String,
    /// Set the referrer.
    #[arg(long, group = "change", conflicts_with = "clear_referrer")]
    referrer: Option<String>,
    /// Set the referrer to null.
    #[arg(long, group = "change")]
    clear_referrer: bool,
    /// Replace the metadata with this JSON object.
    #[arg(long, group = "change", value_parser = parse_json_object, value_name = "JSON", conflicts_with = "clear_metadata")]
    metadata: Option<serde_json::Value>,
    /// Set the metadata to null.
    #[arg(long, group = "change")]
    clear_metadata: bool,
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    #[command(flatten)]
    csv: CsvArgs,
    #[command(flatten)]
    connection: ConnectionArgs,
}

fn parse_time(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse(text)
        .ok_or_else(|| "expected an RFC 3339 date-time such as 2024-01-01T00:00:00Z".to_owned())
}

fn parse_json_object(text: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str(text) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        Ok(_) => Err("expected a JSON object such as '{\"key\":\"value\"}'".to_owned()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let code = match error {
            Error::Config(_) => 2,
            _ => 1,
        };
        Failure {
            message: error.to_string(),
            code,
        }
    }
}

/// A closed pipe (`leads list | head`) ends the output quietly; other write errors are failures.
fn written(result: io::Result<()>) -> Result<bool, Failure> {
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Failure {
            message: format!("cannot write the output: {e}"),
            code: 1,
        }),
    }
}

pub async fn list(args: ListArgs) -> Result<(), Failure> {
    let client = args.connection.client()?;
    let page_size = args.limit.map_or(MAX_PAGE_SIZE, |limit| {
        limit.min(MAX_PAGE_SIZE as u64) as usize
    });
    let mut params = ListLeadsParams::new(&args.company)
        .product_ids(args.products)
        .page_size(page_size as u32);
    if let Some(after) = args.created_after {
        params = params.created_after(after);
    }
    if let Some(before) = args.created_before {
        params = params.created_before(before);
    }
    if let Some(text) = args.query {
        params = params.query(text);
    }
    if let Some(address) = args.email {
        params = params.email(address);
    }

    let stdout = io::stdout();
    let mut out = ListWriter::new(
        args.format,
        args.csv.escaping(),
        stdout.lock(),
        output::terminal_width(),
    );
    let mut remaining = args.limit.unwrap_or(u64::MAX);
    let mut pages = client.leads().list(params).pages();
    while remaining > 0 {
        let Some(page) = pages.try_next().await? else {
            break;
        };
        let mut leads = page.into_data();
        leads.truncate(usize::try_from(remaining).unwrap_or(usize::MAX));
        remaining -= leads.len() as u64;
        if !written(out.page(&leads))? {
            return Ok(());
        }
    }
    written(out.finish()).map(drop)
}

pub async fn get(args: GetArgs) -> Result<(), Failure> {
    let lead = args.connection.client()?.leads().retrieve(&args.id).await?;
    print_one(args.format, &args.csv, &lead)
}

pub async fn create(args: CreateArgs) -> Result<(), Failure> {
    let client = args.connection.client()?;
    let mut params = CreateLeadParams::new(args.company);
    if let Some(user) = args.user {
        params = params.user_id(user);
    }
    if let Some(product) = args.product {
        params = params.product_id(product);
    }
    if let Some(referrer) = args.referrer {
        params = params.referrer(referrer);
    }
    if let Some(metadata) = args.metadata {
        params = params.metadata(metadata);
    }
    if let Some(key) = args.idempotency_key {
        params = params.idempotency_key(key);
    }
    let lead = client.leads().create(params).await?;
    print_one(args.format, &args.csv, &lead)
}

pub async fn update(args: UpdateArgs) -> Result<(), Failure> {
    let client = args.connection.client()?;
    let mut params = UpdateLeadParams::new();
    if let Some(referrer) = args.referrer {
        params = params.referrer(referrer);
    }
    if args.clear_referrer {
        params = params.clear_referrer();
    }
    if let Some(metadata) = args.metadata {
        params = params.metadata(metadata);
    }
    if args.clear_metadata {
        params = params.clear_metadata();
    }
    let lead = client.leads().update(&args.id, params).await?;
    print_one(args.format, &args.csv, &lead)
}

fn print_one(format: Format, csv: &CsvArgs, lead: &leads_client::Lead) -> Result<(), Failure> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let width = output::terminal_width();
    let result =
        output::write_one(format, csv.escaping(), &mut out, width, lead).and_then(|()| out.flush());
    written(result).map(drop)
}
