//! The database alone: the very statements the server issues for a list, run on as many
//! threads or connections as the load generator opens, with nothing in between.

pub mod postgres;
pub mod sqlite;
