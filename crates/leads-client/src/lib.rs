//! An async Rust client for the leads API: this project's server, or Whop's own API, which
//! speaks the same wire format.
//!
//! Like the official SDKs it reads `WHOP_API_KEY` and `WHOP_BASE_URL`, walks lists page after
//! page for you, and retries what is worth retrying (408, 409, 429, 5xx and connection
//! failures, with exponential backoff, honouring `retry-after`), but never a create without
//! an idempotency key.
//!
//! ```
//! # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/demo.rs"));
//! # #[tokio::main]
//! # async fn main() -> Result<(), leads_client::Error> {
//! # let demo = Demo::start().await;
//! use futures_util::TryStreamExt;
//! use leads_client::{Client, ListLeadsParams};
//!
//! let client = Client::from_env()?; // WHOP_API_KEY, and WHOP_BASE_URL for this server
//! let mut leads = client.leads().list(ListLeadsParams::new(&demo.company));
//! // Fetches more pages as needed.
//! while let Some(lead) = leads.try_next().await? {
//!     println!("{} {}", lead.id, lead.user.username);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Page by page, for when the cursors matter:
//!
//! ```
//! # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/demo.rs"));
//! # #[tokio::main]
//! # async fn main() -> Result<(), leads_client::Error> {
//! # let demo = Demo::start().await;
//! use leads_client::{Client, ListLeadsParams};
//!
//! let client = Client::from_env()?;
//! let list = client.leads().list(ListLeadsParams::new(&demo.company).page_size(100));
//! let mut page = list.first_page().await?;
//! let mut sizes = vec![page.data().len()];
//! while let Some(next) = page.next_page().await? {
//!     sizes.push(next.data().len());
//!     page = next;
//! }
//! assert_eq!(sizes, [100, 100, 50]);
//! assert!(!page.page_info().has_next_page);
//! # Ok(())
//! # }
//! ```
//!
//! Errors say what the server said:
//!
//! ```
//! # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/demo.rs"));
//! # #[tokio::main]
//! # async fn main() {
//! # let demo = Demo::start().await;
//! use leads_client::{Client, Error};
//!
//! let client = Client::from_env().unwrap();
//! match client.leads().retrieve("lead_doesnotexist1").await {
//!     Err(Error::NotFound(api)) => assert_eq!(api.kind, "not_found"),
//!     other => panic!("{other:?}"),
//! }
//! let wrong_key = Client::builder().api_key("not-a-key").build().unwrap();
//! let error = wrong_key.leads().retrieve("lead_doesnotexist1").await.unwrap_err();
//! assert!(matches!(error, Error::Unauthorized(_)));
//! assert_eq!(error.status(), Some(401));
//! # }
//! ```

mod client;
mod error;
mod exports;
mod leads;
mod pagination;
mod retry;
mod stats;
pub mod webhooks;

pub use client::{
    Client, ClientBuilder, API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT, IDEMPOTENCY_KEY, REQUEST_ID,
};
pub use error::{ApiError, Error};
pub use exports::Exports;
pub use leads::{CreateLeadParams, Leads, ListLeadsParams, UpdateLeadParams};
pub use leads_types::exports::{CreateExport, Export};
pub use leads_types::{Lead, LeadMember, LeadProduct, LeadUser, PageInfo, Timestamp};
pub use pagination::{CursorPage, Paginated};
pub use stats::{Stats, TimeSeriesParams};
pub use webhooks::{verify, VerifyError, Webhooks};
