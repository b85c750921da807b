//! When to retry a request and how long to wait, as the official SDKs do.
//!
//! 408, 409, 429 and 5xx answers and connection failures are retried, unless the server says
//! otherwise with `x-should-retry`. The wait is what the server asks for with `retry-after-ms`
//! or `retry-after` (seconds or an HTTP date) when that is more than zero and at most a minute,
//! else an exponential backoff from 0.5 s, doubling up to 8 s, less up to a quarter at random
//! so that many clients that failed together do not retry together.

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use std::time::{Duration, SystemTime};

/// The header with which a server overrides the rules by status.
pub const SHOULD_RETRY: &str = "x-should-retry";
/// The wait a server asks for, in milliseconds (fractions allowed).
pub const RETRY_AFTER_MS: &str = "retry-after-ms";

const INITIAL_DELAY_SECS: f64 = 0.5;
const MAX_DELAY_SECS: f64 = 8.0;
/// A server's requested wait longer than this is ignored in favour of the backoff.
const MAX_RETRY_AFTER_SECS: f64 = 60.0;

/// Whether an answer with this status and headers is worth trying again.
pub fn should_retry(status: StatusCode, headers: &HeaderMap) -> bool {
    match headers.get(SHOULD_RETRY).map(|v| v.as_bytes()) {
        Some(b"true") => return true,
        Some(b"false") => return false,
        _ => {}
    }
    matches!(status.as_u16(), 408 | 409 | 429) || status.is_server_error()
}

/// The wait before retry number `retry` (0 for the first), given the failed answer's headers
/// (none for a connection failure) and a `jitter` drawn uniformly from `0.0..1.0`.
pub fn delay(retry: u32, headers: Option<&HeaderMap>, now: SystemTime, jitter: f64) -> Duration {
    headers
        .and_then(|headers| requested_wait(headers, now))
        .unwrap_or_else(|| backoff(retry, jitter))
}

fn backoff(retry: u32, jitter: f64) -> Duration {
    let exponent = i32::try_from(retry).unwrap_or(i32::MAX).min(16);
    let secs = (INITIAL_DELAY_SECS * 2f64.powi(exponent)).min(MAX_DELAY_SECS);
    Duration::from_secs_f64(secs * (1.0 - jitter.clamp(0.0, 1.0) * 0.25))
}

/// `retry-after-ms`, else `retry-after`, when it asks for a usable wait.
fn requested_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let secs = text(RETRY_AFTER_MS)
        .and_then(|ms| ms.parse::<f64>().ok())
        .map(|ms| ms / 1000.0)
        .or_else(|| {
            let value = text(RETRY_AFTER.as_str())?;
            value.parse::<f64>().ok().or_else(|| {
                let when = httpdate::parse_http_date(value).ok()?;
                Some(when.duration_since(now).map_or(0.0, |d| d.as_secs_f64()))
            })
        })?;
    (secs.is_finite() && secs > 0.0 && secs <= MAX_RETRY_AFTER_SECS)
        .then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn status(code: u16) -> StatusCode {
        StatusCode::from_u16(code).unwrap()
    }

    #[test]
    fn retries_timeouts_conflicts_rate_limits_and_server_errors() {
        let none = HeaderMap::new();
        for code in [408, 409, 429, 500, 502, 503, 504] {
            assert!(should_retry(status(code), &none), "{code}");
        }
        for code in [400, 401, 403, 404, 405, 413, 422] {
            assert!(!should_retry(status(code), &none), "{code}");
        }
    }

    #[test]
    fn x_should_retry_overrides_the_status() {
        assert!(!should_retry(
            status(503),
            &headers(&[(SHOULD_RETRY, "false")])
        ));
        assert!(should_retry(
            status(400),
            &headers(&[(SHOULD_RETRY, "true")])
        ));
        assert!(should_retry(
            status(503),
            &headers(&[(SHOULD_RETRY, "maybe")])
        ));
    }

    #[test]
    fn backoff_doubles_from_half_a_second_up_to_eight() {
        let now = SystemTime::now();
        let waits: Vec<f64> = (0..7)
            .map(|retry| delay(retry, None, now, 0.0).as_secs_f64())
            .collect();
        assert_eq!(waits, [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]);
        assert_eq!(delay(u32::MAX, None, now, 0.0), Duration::from_secs(8));
    }

    #[test]
    fn jitter_takes_off_at_most_a_quarter() {
        let now = SystemTime::now();
        assert_eq!(delay(1, None, now, 0.999_999).as_millis(), 750);
        assert_eq!(delay(0, None, now, 0.5), Duration::from_micros(437_500));
    }

    #[test]
    fn the_servers_wait_wins_in_either_header() {
        let now = SystemTime::now();
        let wait = |pairs: &[(&'static str, &str)]| delay(3, Some(&headers(pairs)), now, 0.0);
        assert_eq!(wait(&[(RETRY_AFTER_MS, "250")]), Duration::from_millis(250));
        assert_eq!(
            wait(&[(RETRY_AFTER_MS, "12.5")]),
            Duration::from_micros(12_500)
        );
        assert_eq!(wait(&[("retry-after", "2")]), Duration::from_secs(2));
        assert_eq!(
            wait(&[(RETRY_AFTER_MS, "100"), ("retry-after", "7")]),
            Duration::from_millis(100)
        );
        let in_ten_seconds = httpdate::fmt_http_date(now + Duration::from_secs(10));
        let waited = wait(&[("retry-after", &in_ten_seconds)]);
        assert!(
            waited > Duration::from_secs(8) && waited <= Duration::from_secs(10),
            "{waited:?}"
        );
    }

    #[test]
    fn an_unusable_wait_falls_back_to_the_backoff() {
        let now = SystemTime::now();
        let backoff = Duration::from_secs(4);
        let wait = |pairs: &[(&'static str, &str)]| delay(3, Some(&headers(pairs)), now, 0.0);
        assert_eq!(wait(&[]), backoff);
        assert_eq!(wait(&[("retry-after", "0")]), backoff);
        assert_eq!(wait(&[("retry-after", "-1")]), backoff);
        assert_eq!(wait(&[("retry-after", "61")]), backoff);
        assert_eq!(wait(&[("retry-after", "soon")]), backoff);
        assert_eq!(wait(&[(RETRY_AFTER_MS, "NaN")]), backoff);
        let past = httpdate::fmt_http_date(now - Duration::from_secs(10));
        assert_eq!(wait(&[("retry-after", &past)]), backoff);
    }
}
