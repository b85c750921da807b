//! The exports resource: asynchronous exports of a company's leads (`/exports`).

use crate::client::{Client, Request};
use crate::error::{ApiError, Error};
use leads_types::exports::{CreateExport, Export};
use reqwest::{Method, Url};

/// The exports resource, from [`Client::exports`].
#[derive(Debug, Clone)]
pub struct Exports {
    client: Client,
}

impl Exports {
    pub(crate) fn new(client: Client) -> Self {
        Exports { client }
    }

    /// Starts an export (`POST /exports`); it answers `pending` at once. A resource other than
    /// `leads`, an unknown column or time zone is [`Error::BadRequest`] naming it.
    pub async fn create(&self, params: &CreateExport) -> Result<Export, Error> {
        let url = self.client.url(&["exports"]);
        let request = Request::new(Method::POST, url).json(params);
        self.client.send(request).await
    }

    /// An export's status and, once `completed`, a fresh `download_url` (`GET /exports/{id}`).
    pub async fn retrieve(&self, id: &str) -> Result<Export, Error> {
        let url = self.client.url(&["exports", id]);
        self.client.send(Request::new(Method::GET, url)).await
    }

    /// Starts downloading a `download_url` with a plain GET (no `Authorization`: the link is
    /// its own permission). The answer's body is read by the caller, a chunk at a time; a
    /// refused link (403, expired or altered) is an [`Error`] of its status.
    pub async fn download(&self, download_url: &str) -> Result<reqwest::Response, Error> {
        let url = Url::parse(download_url)
            .map_err(|e| Error::Config(format!("download_url {download_url:?}: {e}")))?;
        let response = self
            .client
            .http()
            .get(url.clone())
            .send()
            .await
            .map_err(|e| Error::transport(&url, e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.unwrap_or_default();
        Err(Error::from_status(ApiError::from_body(
            status, request_id, &body,
        )))
    }
}
