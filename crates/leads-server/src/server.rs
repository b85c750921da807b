//! The HTTP server loop: connection limits, slow-client timeouts and graceful shutdown.
//!
//! Written on hyper directly (rather than `axum::serve`) because operators need knobs that
//! only the connection layer has: a cap on open connections and a deadline for reading a
//! request's headers, so clients that trickle bytes cannot hold connections forever.
//!
//! It is also where the answers hyper writes itself, before any router runs, are given the
//! contract's JSON error body ([`JsonErrorAnswers`]).

use crate::http::error::ApiError;
use axum::http::StatusCode;
use axum::Router;
use bytes::{Buf, Bytes};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Sleep;
use tower::Service;

/// Connection-level limits.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Open connections at most; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// A client must send a request's whole header within this time.
    pub header_read_timeout: Duration,
    /// After a shutdown signal, in-flight requests get this long to finish.
    pub shutdown_grace: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// The largest request head hyper buffers; heads between the API's own limit and this get the
/// router's JSON 431, larger ones hyper's, given the same JSON body by [`JsonErrorAnswers`].
pub const MAX_BUFFER: usize = 256 * 1024;

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, lets
/// in-flight requests finish (up to the grace period) and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_BUFFER)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            router.clone().call(request)
        });
        let io = TokioIo::new(JsonErrorAnswers::new(stream));
        let connection = graceful.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections finished"),
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!(grace = ?limits.shutdown_grace, "shutdown deadline passed; closing remaining connections");
        }
    }
    Ok(())
}

/// The longest request target hyper accepts (it keeps offsets in 16 bits); longer is a 414.
pub const MAX_REQUEST_TARGET_BYTES: usize = u16::MAX as usize - 1;

/// At most this many headers in a request; more is a 431 (hyper's own limit).
pub const MAX_HEADERS: usize = 100;

/// After a JSON answer written in place of hyper's, what the client still sends is read and
/// dropped for at most this long, or this many bytes, before the connection closes.
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 4 * 1024 * 1024;

/// A client connection on which the answers hyper writes by itself get the contract's JSON body.
///
/// hyper refuses a request it cannot read before any service runs, and answers with an empty
/// body: 400 for a malformed request line or header (a bad method, target, version, header name
/// or value, `content-length` or `transfer-encoding`), 414 for a request target over
/// [`MAX_REQUEST_TARGET_BYTES`], 431 for a request head over [`MAX_BUFFER`] bytes or
/// [`MAX_HEADERS`] headers; then it closes the connection. It has no hook for those answers, so
/// this wrapper recognises them as they are written (one of those statuses and no
/// `content-type`, which every answer of the router carries) and writes in their place the same
/// status with the JSON error body, `content-type: application/json`, `connection: close` and
/// an `x-request-id`. A head too large because its request line never ended is answered 414, as a
/// too-long target is, rather than hyper's 431.
///
/// Closing a socket with unread input makes the kernel reset the connection, which can destroy
/// the answer before the client reads it; so after such an answer the connection first reads and
/// drops what the client is still sending (RFC 9112 §9.6, "lingering close"), within limits.
///
/// Other ways hyper ends a connection send no answer at all, so there is nothing to shape: a
/// client too slow to send its headers (`--header-read-timeout`), an HTTP/2 preface on this
/// HTTP/1.1 server, and a client that goes away.
pub struct JsonErrorAnswers<S> {
    inner: S,
    /// The JSON answer being written in place of hyper's, from where the socket left off.
    pending: Option<Bytes>,
    /// Whether a line ended in what was read since the last answer was written: if not when a
    /// head overflows, the request line is what is too long.
    line_ended: bool,
    /// Set once an answer was replaced: until when, and how many more bytes, to drain on close.
    linger: Option<(Pin<Box<Sleep>>, usize)>,
}

impl<S> JsonErrorAnswers<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            pending: None,
            line_ended: false,
            linger: None,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> JsonErrorAnswers<S> {
    /// If `written` starts with an answer of hyper's own, takes it: answers how many bytes of
    /// `written` it stands for, with the JSON answer queued in its place.
    fn replace(&mut self, written: &[u8]) -> Option<usize> {
        let (head_len, mut status) = bare_error_head(written)?;
        if status == StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE && !self.line_ended {
            status = StatusCode::URI_TOO_LONG;
        }
        self.pending = Some(json_answer(status, &written[..head_len]));
        self.linger = Some((Box::pin(tokio::time::sleep(LINGER_TIME)), LINGER_BYTES));
        Some(head_len)
    }

    /// Writes what is left of a replaced answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(pending) = self.pending.as_mut().filter(|p| p.has_remaining()) {
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, pending.chunk()))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            pending.advance(written);
        }
        self.pending = None;
        Poll::Ready(Ok(()))
    }

    /// Reads and drops the client's input until it stops sending, or the limits run out.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some((deadline, left)) = self.linger.as_mut() else {
            return Poll::Ready(());
        };
        let mut scratch = [0u8; 8192];
        while *left > 0 && deadline.as_mut().poll(cx).is_pending() {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    *left = left.saturating_sub(buf.filled().len());
                }
                Poll::Ready(_) => break, // end of input, or the client is gone
                Poll::Pending => return Poll::Pending,
            }
        }
        self.linger = None;
        Poll::Ready(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonErrorAnswers<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if !this.line_ended {
            this.line_ended = buf.filled()[before..].contains(&b'\n');
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for JsonErrorAnswers<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(taken) = this.replace(buf) {
            return Poll::Ready(Ok(taken));
        }
        this.line_ended = false;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        // hyper puts a response's head in a buffer of its own, ahead of the body's.
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            if let Some(taken) = this.replace(first) {
                return Poll::Ready(Ok(taken));
            }
        }
        this.line_ended = false;
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
        ready!(this.poll_linger(cx));
        Poll::Ready(Ok(()))
    }
}

/// If `written` starts with a whole response head of the kind hyper writes for a request it
/// could not read, its length and status.
fn bare_error_head(written: &[u8]) -> Option<(usize, StatusCode)> {
    let rest = written
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| written.strip_prefix(b"HTTP/1.0 "))?;
    let status = match rest.get(..4)? {
        b"400 " => StatusCode::BAD_REQUEST,
        b"414 " => StatusCode::URI_TOO_LONG,
        b"431 " => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        _ => return None,
    };
    let head_len = written.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let has_content_type = written[..head_len]
        .windows(15)
        .any(|w| w.eq_ignore_ascii_case(b"\r\ncontent-type:"));
    (!has_content_type).then_some((head_len, status))
}

/// The JSON answer for `status`, keeping the `date` of hyper's `head`.
fn json_answer(status: StatusCode, head: &[u8]) -> Bytes {
    let message = match status {
        StatusCode::URI_TOO_LONG => format!(
            "The request target (path and query string) is longer than \
             {MAX_REQUEST_TARGET_BYTES} bytes."
        ),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => format!(
            "The request head is too large: at most {MAX_BUFFER} bytes and {MAX_HEADERS} headers."
        ),
        _ => "The request is not valid HTTP/1.1: its request line or a header could not be read."
            .to_owned(),
    };
    let body = serde_json::to_vec(&ApiError::new(status, message).body())
        .expect("an error body serializes");
    let date = head
        .split(|&b| b == b'\n')
        .find(|line| line.len() > 5 && line[..5].eq_ignore_ascii_case(b"date:"));
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\nx-request-id: req_{}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("Error"),
        body.len(),
        crate::domain::ids::random_base62(20),
    )
    .into_bytes();
    if let Some(date) = date {
        answer.extend_from_slice(date);
        answer.push(b'\n');
    }
    answer.extend_from_slice(b"\r\n");
    answer.extend_from_slice(&body);
    answer.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bodiless_error_heads_are_taken() {
        let hyper_414 = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Sun, 29 Nov 2026 12:00:00 GMT\r\n\r\n";
        assert_eq!(
            bare_error_head(hyper_414),
            Some((hyper_414.len(), StatusCode::URI_TOO_LONG))
        );
        for not_hypers in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n",
            b"{\"HTTP/1.1 400 \": 1}",
        ] {
            assert_eq!(bare_error_head(not_hypers), None);
        }
    }

    #[test]
    fn the_json_answer_keeps_the_status_and_date() {
        let answer = json_answer(
            StatusCode::URI_TOO_LONG,
            b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Sun, 29 Nov 2026 12:00:00 GMT\r\n\r\n",
        );
        let text = String::from_utf8(answer.to_vec()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{head}");
        assert!(head.contains("\r\ncontent-type: application/json\r\n"));
        assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())));
        assert!(head.contains("\r\ndate: Sun, 29 Nov 2026 12:00:00 GMT"));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["type"], "invalid_request_error");
    }
}
