//! `leads`: serve the API, administer its data, seed synthetic data, and use the API over HTTP.

mod cli;
mod export;
mod import;
mod output;
mod remote;
mod stats;
mod webhooks;

use clap::Parser;
use std::process::ExitCode;

/// mimalloc rather than glibc's malloc: a list request allocates and frees a few hundred small
/// strings, and glibc spent a fifth of the server's CPU on them (`malloc_consolidate`,
/// `_int_free`); mimalloc's thread-local free lists also keep the blocking pool's threads from
/// each growing an arena of their own.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
