//! Requests the server cannot read as HTTP, sent over a raw TCP socket: every answer written
//! before the router runs (by hyper itself) carries the contract's JSON error body too.

mod common;

use common::TestApp;
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

conformance!(
    a_request_target_over_the_uri_limit_is_a_json_414,
    a_request_line_longer_than_the_head_buffer_is_a_json_414_too,
    a_head_over_the_buffer_or_with_too_many_headers_is_a_json_431,
    malformed_request_lines_and_headers_are_a_json_400,
    a_bad_request_after_a_good_one_on_the_same_connection_is_json_too,
);

/// An answer as read off the socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// Header names in lower case, with their values.
    headers: Vec<(String, String)>,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A JSON error of the contract's shape, `type` `invalid_request_error`, with `status`.
    fn assert_json_error(&self, status: u16, context: &str) {
        assert_eq!(self.status, status, "{context}: {self:?}");
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{context}: {self:?}"
        );
        assert_eq!(
            self.body["error"]["type"], "invalid_request_error",
            "{context}: {self:?}"
        );
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{context}: {self:?}"
        );
        assert!(self.header("x-request-id").is_some(), "{context}: {self:?}");
    }
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// Reads one answer from `stream`: its head, then as many body bytes as `content-length` says.
async fn read_answer(stream: &mut TcpStream, context: &str) -> Answer {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("{context}: no answer within 10 s"))
            .unwrap_or_else(|e| panic!("{context}: reading the answer failed: {e}"));
        assert!(n > 0, "{context}: closed before a whole head: {bytes:?}");
        bytes.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(bytes[..head_end].to_vec()).expect("an ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{context}: status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (name, value) = l.split_once(':').expect("a header line");
            (name.to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse().expect("a number"))
        .unwrap_or_else(|| panic!("{context}: no content-length in {head:?}"));
    let mut body = bytes[head_end..].to_vec();
    while body.len() < length {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("{context}: body not complete within 10 s"))
            .unwrap_or_else(|e| panic!("{context}: reading the body failed: {e}"));
        assert!(n > 0, "{context}: closed in the body");
        body.extend_from_slice(&chunk[..n]);
    }
    let body = serde_json::from_slice(&body[..length]).unwrap_or_else(|e| {
        panic!(
            "{context}: status {status}, body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&body)
        )
    });
    Answer {
        status,
        headers,
        body,
    }
}

/// Sends `request` on a new connection and reads the answer. The request is written from a task
/// of its own, so a server that answers before reading it all cannot deadlock the test.
async fn exchange(app: &TestApp, request: Vec<u8>, context: &str) -> Answer {
    let stream = connect(app).await;
    let (reader, mut writer) = stream.into_split();
    let sending = tokio::spawn(async move {
        // The server may answer and close before it has read everything; that is its right.
        let _ = writer.write_all(&request).await;
        writer
    });
    let mut joined = reader
        .reunite(sending.await.expect("the sender"))
        .expect("one stream");
    read_answer(&mut joined, context).await
}

fn get(target: &str, headers: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nhost: localhost\r\n{headers}\r\n").into_bytes()
}

async fn a_request_target_over_the_uri_limit_is_a_json_414(app: TestApp) {
    let company = app.company(0, None).await;
    let query = format!("company_id={}&x={}", company.id, "a".repeat(70_000));
    let request = get(
        &format!("/api/v1/leads?{query}"),
        &format!("authorization: Bearer {}\r\n", company.key),
    );
    let answer = exchange(&app, request, "70,000-character query").await;
    answer.assert_json_error(414, "70,000-character query");
    assert_eq!(answer.header("connection"), Some("close"));
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("65534"), "{message}");
}

async fn a_request_line_longer_than_the_head_buffer_is_a_json_414_too(app: TestApp) {
    let request = get(&format!("/healthz?x={}", "a".repeat(300_000)), "");
    let answer = exchange(&app, request, "300,000-character query").await;
    answer.assert_json_error(414, "300,000-character query");
}

async fn a_head_over_the_buffer_or_with_too_many_headers_is_a_json_431(app: TestApp) {
    let big = format!("x-big: {}\r\n", "b".repeat(300 * 1024));
    let answer = exchange(&app, get("/healthz", &big), "a 300 KiB header").await;
    answer.assert_json_error(431, "a 300 KiB header");
    let many: String = (0..101).map(|i| format!("x-h{i}: {i}\r\n")).collect();
    let answer = exchange(&app, get("/healthz", &many), "101 headers").await;
    answer.assert_json_error(431, "101 headers");
    // A hundred (with host) is within the limit.
    let hundred: String = (0..99).map(|i| format!("x-h{i}: {i}\r\n")).collect();
    let answer = exchange(&app, get("/healthz", &hundred), "100 headers").await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

async fn malformed_request_lines_and_headers_are_a_json_400(app: TestApp) {
    for (what, request) in [
        ("a bad method", &b"G(T /healthz HTTP/1.1\r\nhost: x\r\n\r\n"[..]),
        ("a space in the target", b"GET /health z HTTP/1.1\r\nhost: x\r\n\r\n"),
        ("a control byte in the target", b"GET /healthz\x01 HTTP/1.1\r\nhost: x\r\n\r\n"),
        ("an unknown version", b"GET /healthz HTTP/9.9\r\nhost: x\r\n\r\n"),
        ("no version", b"GET /healthz\r\nhost: x\r\n\r\n"),
        ("a bad header name", b"GET /healthz HTTP/1.1\r\nhost: x\r\nx bad: 1\r\n\r\n"),
        ("a control byte in a header", b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-a: a\x01b\r\n\r\n"),
        ("a header without a colon", b"GET /healthz HTTP/1.1\r\nhost: x\r\nnonsense\r\n\r\n"),
        (
            "a content-length that is not a number",
            b"POST /api/v1/leads HTTP/1.1\r\nhost: x\r\ncontent-length: ten\r\n\r\n",
        ),
        (
            "two different content-lengths",
            b"POST /api/v1/leads HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
        ),
        (
            "a transfer-encoding that does not end in chunked",
            b"POST /api/v1/leads HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\n\r\n",
        ),
        (
            "a transfer-encoding in HTTP/1.0",
            b"POST /api/v1/leads HTTP/1.0\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
    ] {
        let answer = exchange(&app, request.to_vec(), what).await;
        answer.assert_json_error(400, what);
    }
}

async fn a_bad_request_after_a_good_one_on_the_same_connection_is_json_too(app: TestApp) {
    let mut stream = connect(&app).await;
    stream.write_all(&get("/healthz", "")).await.unwrap();
    let first = read_answer(&mut stream, "the good request").await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.body["status"], "ok");
    stream
        .write_all(
            format!(
                "GET /healthz?x={} HTTP/1.1\r\nhost: x\r\n\r\n",
                "a".repeat(70_000)
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let second = read_answer(&mut stream, "the long request").await;
    second.assert_json_error(414, "the long request");
    // The answer to an unreadable request ends the connection.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0))), "{read:?} {rest:?}");
}
