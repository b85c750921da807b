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

/// A command whose output goes to a program that stops reading (`leads list | head`,
/// `leads admin ... | true`) ends as Unix tools do, killed by SIGPIPE, rather than panicking:
/// Rust ignores SIGPIPE, so a write to the closed pipe fails, and `println!` panics on that.
/// Not for `leads serve`, whose log pipe closing must not end the server (its sockets are
/// written with `MSG_NOSIGNAL` either way). A write made before the pipe closed has happened:
/// an admin command's change is committed before it prints.
fn end_quietly_on_a_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: `signal` with SIG_DFL only resets the process's disposition of SIGPIPE; it reads
    // and writes no memory of ours, and nothing in this program installs a SIGPIPE handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if !cli.serves() {
        end_quietly_on_a_closed_pipe();
    }
    match cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
