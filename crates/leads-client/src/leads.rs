//! The leads resource: list, create, retrieve, update, and their parameters.

use crate::client::{Client, Request};
use crate::error::Error;
use crate::pagination::{ListQuery, Paginated};
use leads_types::{CreateLead, Lead, Timestamp, UpdateLead};
use reqwest::Method;

/// The leads resource, from [`Client::leads`].
#[derive(Debug, Clone)]
pub struct Leads {
    client: Client,
}

impl Leads {
    pub(crate) fn new(client: Client) -> Self {
        Leads { client }
    }

    /// A company's leads, newest first, as a stream that fetches page after page as it is
    /// consumed (`GET /leads`). See [`Paginated`] for page-by-page access.
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/demo.rs"));
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), leads_client::Error> {
    /// # let demo = Demo::start().await;
    /// use futures_util::TryStreamExt;
    /// use leads_client::{Client, ListLeadsParams};
    ///
    /// let client = Client::from_env()?;
    /// let params = ListLeadsParams::new(&demo.company).page_size(100);
    /// let mut leads = client.leads().list(params);
    /// let mut count = 0;
    /// while let Some(lead) = leads.try_next().await? {
    ///     assert!(lead.id.starts_with("lead_"));
    ///     count += 1;
    /// }
    /// assert_eq!(count, 250); // three pages, fetched one after the other
    /// # Ok(())
    /// # }
    /// ```
    pub fn list(&self, params: ListLeadsParams) -> Paginated<Lead> {
        let mut url = self.client.url(&["leads"]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("company_id", &params.company_id);
            for product in &params.product_ids {
                query.append_pair("product_ids[]", product);
            }
            if let Some(after) = params.created_after {
                query.append_pair("created_after", &after.to_string());
            }
            if let Some(before) = params.created_before {
                query.append_pair("created_before", &before.to_string());
            }
            if let Some(text) = &params.query {
                query.append_pair("query", text);
            }
            if let Some(email) = &params.email {
                query.append_pair("email", email);
            }
            if let Some(size) = params.page_size {
                query.append_pair("first", &size.to_string());
            }
        }
        Paginated::new(ListQuery {
            client: self.client.clone(),
            url,
            start_after: params.after,
        })
    }

    /// Records a lead (`POST /leads`) and answers it as stored.
    ///
    /// Without an [idempotency key](CreateLeadParams::idempotency_key) a create is sent once
    /// and never retried (a retry could record the lead twice), unless the client was built
    /// with [`generate_idempotency_keys`](crate::ClientBuilder::generate_idempotency_keys).
    ///
    /// ```
    /// # include!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/demo.rs"));
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), leads_client::Error> {
    /// # let demo = Demo::start().await;
    /// use leads_client::{Client, CreateLeadParams, UpdateLeadParams};
    ///
    /// let client = Client::from_env()?;
    /// let lead = client
    ///     .leads()
    ///     .create(
    ///         CreateLeadParams::new(&demo.company)
    ///             .user_id(&demo.user)
    ///             .referrer("https://twitter.com/whabormarket")
    ///             .metadata(serde_json::json!({"campaign": "spring"}))
    ///             .idempotency_key("signup-form-4711"),
    ///     )
    ///     .await?;
    /// assert_eq!(lead.referrer.as_deref(), Some("https://twitter.com/whabormarket"));
    ///
    /// // Clear the referrer, leave the metadata as it is.
    /// let lead = client
    ///     .leads()
    ///     .update(&lead.id, UpdateLeadParams::new().clear_referrer())
    ///     .await?;
    /// assert_eq!(lead.referrer, None);
    /// assert!(lead.metadata.is_some());
    ///
    /// let again = client.leads().retrieve(&lead.id).await?;
    /// assert_eq!(again, lead);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn create(&self, params: CreateLeadParams) -> Result<Lead, Error> {
        let mut request =
            Request::new(Method::POST, self.client.url(&["leads"])).json(&params.body);
        request.idempotency_key = params.idempotency_key;
        self.client.send(request).await
    }

    /// One lead (`GET /leads/{id}`). A lead the key may not see is [`Error::NotFound`].
    pub async fn retrieve(&self, id: &str) -> Result<Lead, Error> {
        let url = self.client.url(&["leads", id]);
        self.client.send(Request::new(Method::GET, url)).await
    }

    /// Changes a lead's `referrer` and/or `metadata` (`PATCH /leads/{id}`); whatever the
    /// parameters leave out stays as it is. Answers the lead as changed.
    pub async fn update(&self, id: &str, params: UpdateLeadParams) -> Result<Lead, Error> {
        let url = self.client.url(&["leads", id]);
        let request = Request::new(Method::PATCH, url).json(&params.body);
        self.client.send(request).await
    }
}

/// What [`Leads::list`] lists: one company's leads, optionally filtered.
///
/// ```
/// use leads_client::ListLeadsParams;
/// use leads_types::Timestamp;
///
/// let params = ListLeadsParams::new("biz_xxxxxxxxxxxxxx")
///     .product_id("prod_xxxxxxxxxxxxx")
///     .created_after(Timestamp::parse("2024-01-01T00:00:00Z").unwrap())
///     .page_size(100);
/// # let _ = params;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListLeadsParams {
    company_id: String,
    product_ids: Vec<String>,
    created_after: Option<Timestamp>,
    created_before: Option<Timestamp>,
    query: Option<String>,
    email: Option<String>,
    page_size: Option<u32>,
    after: Option<String>,
}

impl ListLeadsParams {
    /// The company whose leads to list (sent as `company_id`).
    pub fn new(company_id: impl Into<String>) -> Self {
        ListLeadsParams {
            company_id: company_id.into(),
            product_ids: Vec::new(),
            created_after: None,
            created_before: None,
            query: None,
            email: None,
            page_size: None,
            after: None,
        }
    }

    /// Only leads for this product; call again to add more (up to 100 in all).
    pub fn product_id(mut self, product_id: impl Into<String>) -> Self {
        self.product_ids.push(product_id.into());
        self
    }

    /// Only leads for these products.
    pub fn product_ids<I, S>(mut self, product_ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.product_ids
            .extend(product_ids.into_iter().map(Into::into));
        self
    }

    /// Only leads created strictly after this instant.
    pub fn created_after(mut self, instant: Timestamp) -> Self {
        self.created_after = Some(instant);
        self
    }

    /// Only leads created strictly before this instant.
    pub fn created_before(mut self, instant: Timestamp) -> Self {
        self.created_before = Some(instant);
        self
    }

    /// Only leads whose user's username, name or email, or whose referrer, contains `text`
    /// (1 to 100 characters; one or two match the start of username, name or email only),
    /// compared without regard to case. Emails take part only for a key that may see them.
    /// An extension of this server: Whop's API ignores it.
    pub fn query(mut self, text: impl Into<String>) -> Self {
        self.query = Some(text.into());
        self
    }

    /// Only leads of the user whose email is exactly `address`, compared without regard to
    /// case. Needs the `member:email:read` permission (a 403 otherwise). An extension of this
    /// server: Whop's API ignores it.
    pub fn email(mut self, address: impl Into<String>) -> Self {
        self.email = Some(address.into());
        self
    }

    /// Leads per request, 1..=100 (sent as `first`); the server's default is 20.
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = Some(size);
        self
    }

    /// Start after this cursor (an `end_cursor` from an earlier page) instead of at the newest.
    pub fn after(mut self, cursor: impl Into<String>) -> Self {
        self.after = Some(cursor.into());
        self
    }
}

/// A lead to record with [`Leads::create`].
#[derive(Debug, Clone, Default)]
pub struct CreateLeadParams {
    body: CreateLead,
    idempotency_key: Option<String>,
}

impl CreateLeadParams {
    /// A lead of this company (sent as `company_id`).
    pub fn new(company_id: impl Into<String>) -> Self {
        CreateLeadParams {
            body: CreateLead {
                company_id: Some(company_id.into()),
                ..CreateLead::default()
            },
            idempotency_key: None,
        }
    }

    /// The user the lead is about; required with a company or app key, implied by a user token.
    pub fn user_id(mut self, user_id: impl Into<String>) -> Self {
        self.body.user_id = Some(user_id.into());
        self
    }

    /// The product the lead is interested in; one of the company's products.
    pub fn product_id(mut self, product_id: impl Into<String>) -> Self {
        self.body.product_id = Some(product_id.into());
        self
    }

    /// Where the lead came from, such as a URL.
    pub fn referrer(mut self, referrer: impl Into<String>) -> Self {
        self.body.referrer = Some(referrer.into());
        self
    }

    /// A JSON object of the company's own, kept verbatim.
    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.body.metadata = Some(leads_types::raw_json(&metadata));
        self
    }

    /// Makes the create safe to retry: the server records one lead however often a request
    /// with this key and body arrives, and answers each with that lead. Sent as
    /// `Idempotency-Key`.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// A change for [`Leads::update`]: only what is set here changes.
///
/// ```
/// use leads_client::UpdateLeadParams;
///
/// // Replace the metadata, clear the referrer.
/// let change = UpdateLeadParams::new()
///     .metadata(serde_json::json!({"stage": "qualified"}))
///     .clear_referrer();
/// assert_eq!(
///     serde_json::to_value(change.as_body()).unwrap(),
///     serde_json::json!({"metadata": {"stage": "qualified"}, "referrer": null})
/// );
/// // Nothing set: a PATCH with `{}`, which changes nothing but `updated_at`.
/// assert_eq!(serde_json::to_string(UpdateLeadParams::new().as_body()).unwrap(), "{}");
/// ```
#[derive(Debug, Clone, Default)]
pub struct UpdateLeadParams {
    body: UpdateLead,
}

impl UpdateLeadParams {
    /// A change that leaves everything as it is.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the referrer.
    pub fn referrer(mut self, referrer: impl Into<String>) -> Self {
        self.body.referrer = Some(Some(referrer.into()));
        self
    }

    /// Sets the referrer to `null`.
    pub fn clear_referrer(mut self) -> Self {
        self.body.referrer = Some(None);
        self
    }

    /// Replaces the whole metadata object.
    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.body.metadata = Some(Some(leads_types::raw_json(&metadata)));
        self
    }

    /// Sets the metadata to `null`.
    pub fn clear_metadata(mut self) -> Self {
        self.body.metadata = Some(None);
        self
    }

    /// The body as it will be sent.
    pub fn as_body(&self) -> &UpdateLead {
        &self.body
    }
}
