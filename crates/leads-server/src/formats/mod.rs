//! The file formats the product writes leads in, beyond the API's JSON.

pub mod csv;
