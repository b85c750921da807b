//! Cursor pagination, in one place: a page with its way to the next, and the stream that walks
//! every page for you.
//!
//! A list is walked as the official SDKs walk it: the first query again with `after` set to
//! the last page's `end_cursor`. The walk ends at a page that says `has_next_page: false`,
//! has no `end_cursor`, or is empty.

use crate::client::{Client, Request};
use crate::error::Error;
use futures_core::Stream;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use leads_types::PageInfo;
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A list request: its URL with every parameter but `after`, and where it starts.
#[derive(Clone)]
pub(crate) struct ListQuery {
    pub client: Client,
    pub url: Url,
    pub start_after: Option<String>,
}

impl ListQuery {
    async fn fetch<T: DeserializeOwned>(
        &self,
        after: Option<&str>,
    ) -> Result<CursorPage<T>, Error> {
        let mut url = self.url.clone();
        if let Some(cursor) = after {
            url.query_pairs_mut().append_pair("after", cursor);
        }
        let page: leads_types::Page<T> = self.client.send(Request::new(Method::GET, url)).await?;
        Ok(CursorPage {
            data: page.data,
            page_info: page.page_info,
            query: self.clone(),
        })
    }
}

/// One page of a list, which knows how to fetch the page after it.
pub struct CursorPage<T> {
    data: Vec<T>,
    page_info: PageInfo,
    query: ListQuery,
}

impl<T: fmt::Debug> fmt::Debug for CursorPage<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CursorPage")
            .field("data", &self.data)
            .field("page_info", &self.page_info)
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned> CursorPage<T> {
    /// The items on this page, in list order.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// The items on this page, taken out of it.
    pub fn into_data(self) -> Vec<T> {
        self.data
    }

    /// The page's cursors and flags, as the server sent them.
    pub fn page_info(&self) -> &PageInfo {
        &self.page_info
    }

    /// Whether [`next_page`](Self::next_page) would fetch anything.
    pub fn has_next_page(&self) -> bool {
        self.next_cursor().is_some()
    }

    /// The cursor the next page starts after, if there is a next page.
    pub fn next_cursor(&self) -> Option<&str> {
        if self.data.is_empty() || !self.page_info.has_next_page {
            return None;
        }
        self.page_info.end_cursor.as_deref()
    }

    /// Fetches the page after this one, or answers `None` when this is the last.
    pub async fn next_page(&self) -> Result<Option<CursorPage<T>>, Error> {
        match self.next_cursor() {
            Some(cursor) => self.query.fetch(Some(cursor)).await.map(Some),
            None => Ok(None),
        }
    }
}

/// A list being walked: a [`Stream`] of every item on every page, fetching each page only
/// when the one before it has been consumed, plus access page by page.
///
/// Nothing is sent until the stream is first polled (or a page is asked for). A failed request
/// (after its retries) ends the stream with that error.
pub struct Paginated<T> {
    query: ListQuery,
    items: Option<BoxStream<'static, Result<T, Error>>>,
}

impl<T> fmt::Debug for Paginated<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut url = self.query.url.clone();
        url.set_query(None);
        f.debug_struct("Paginated")
            .field("url", &url.as_str())
            .field("started", &self.items.is_some())
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned + Send + 'static> Paginated<T> {
    pub(crate) fn new(query: ListQuery) -> Self {
        Paginated { query, items: None }
    }

    /// Fetches the first page; walk on with [`CursorPage::next_page`].
    pub async fn first_page(&self) -> Result<CursorPage<T>, Error> {
        self.query.fetch(self.query.start_after.as_deref()).await
    }

    /// Every page in turn, each fetched when the one before it has been consumed.
    pub fn pages(&self) -> BoxStream<'static, Result<CursorPage<T>, Error>> {
        enum Next {
            First,
            After(String),
            Done,
        }
        stream::try_unfold(
            (self.query.clone(), Next::First),
            |(query, next)| async move {
                let page = match next {
                    Next::First => query.fetch(query.start_after.as_deref()).await?,
                    Next::After(cursor) => query.fetch(Some(&cursor)).await?,
                    Next::Done => return Ok(None),
                };
                let next = match page.next_cursor() {
                    Some(cursor) => Next::After(cursor.to_owned()),
                    None => Next::Done,
                };
                Ok(Some((page, (query, next))))
            },
        )
        .boxed()
    }
}

impl<T: DeserializeOwned + Send + 'static> Stream for Paginated<T> {
    type Item = Result<T, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let query = &this.query;
        let items = this.items.get_or_insert_with(|| {
            Paginated::<T>::new(query.clone())
                .pages()
                .map_ok(|page| stream::iter(page.into_data().into_iter().map(Ok)))
                .try_flatten()
                .boxed()
        });
        items.poll_next_unpin(cx)
    }
}
