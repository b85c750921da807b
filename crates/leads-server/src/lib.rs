//! The leads server: a self-hostable, Whop-compatible API for a company's leads.
//!
//! [`app::build`] opens the store and gives the router; the `leads` binary only parses its
//! command line and calls into this library, and tests build the very same router.

pub mod admin;
pub mod app;
pub mod auth;
pub mod domain;
pub mod exports;
pub mod formats;
pub mod http;
pub mod import;
pub mod metrics;
pub mod pagination;
pub mod seed;
pub mod server;
pub mod storage;
pub mod webhooks;
