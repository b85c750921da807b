//! Rate limits: a token bucket per credential and operation, in this process's memory.
//!
//! Each bucket holds up to `burst` requests and refills at `per_minute / 60` a second, so a
//! credential that has been quiet may spend `burst` requests at once and then keeps to the rate.
//! Limits are per instance: several instances behind a load balancer each allow the full rate.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many requests a credential may make of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// The sustained rate; 0 turns limiting off.
    pub per_minute: u32,
    /// The most requests allowed at once after a quiet spell (at least 1).
    pub burst: u32,
}

impl RateLimit {
    /// Whop's limit: 600 requests a minute, a whole minute's worth allowed at once.
    pub const DEFAULT_PER_MINUTE: u32 = 600;

    /// `per_minute` with a burst of the same size.
    pub fn per_minute(per_minute: u32) -> Self {
        Self {
            per_minute,
            burst: per_minute.max(1),
        }
    }

    pub fn unlimited() -> Self {
        Self::per_minute(0)
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::per_minute(Self::DEFAULT_PER_MINUTE)
    }
}

/// Buckets kept at most, over all shards; past it, full (idle) buckets are dropped first, which
/// loses nothing, and then the longest-untouched ones.
const MAX_BUCKETS: usize = 100_000;
const SHARDS: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

type Shard = HashMap<(String, String), Bucket>;

/// The buckets of every credential and operation this instance has seen lately.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit: RateLimit {
                burst: limit.burst.max(1),
                ..limit
            },
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes one request from the bucket of (`credential`, `operation`), or says how long until
    /// one is available.
    pub fn check(&self, credential: &str, operation: &str) -> Result<(), Duration> {
        self.check_at(Instant::now(), credential, operation)
    }

    fn refill_per_second(&self) -> f64 {
        f64::from(self.limit.per_minute) / 60.0
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        (bucket.tokens + elapsed * self.refill_per_second()).min(f64::from(self.limit.burst))
    }

    pub(crate) fn check_at(
        &self,
        now: Instant,
        credential: &str,
        operation: &str,
    ) -> Result<(), Duration> {
        if self.limit.per_minute == 0 {
            return Ok(());
        }
        let key = (credential.to_owned(), operation.to_owned());
        let shard = self.hasher.hash_one(&key) as usize % SHARDS;
        let mut buckets = self.shards[shard]
            .lock()
            .expect("rate limit shard poisoned");
        if !buckets.contains_key(&key) && buckets.len() >= MAX_BUCKETS / SHARDS {
            self.evict(&mut buckets, now);
        }
        let full = f64::from(self.limit.burst);
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: full,
            updated: now,
        });
        let tokens = self.refilled(bucket, now);
        bucket.updated = now;
        if tokens >= 1.0 {
            bucket.tokens = tokens - 1.0;
            Ok(())
        } else {
            bucket.tokens = tokens;
            Err(Duration::from_secs_f64(
                (1.0 - tokens) / self.refill_per_second(),
            ))
        }
    }

    /// Makes room in a full shard.
    fn evict(&self, buckets: &mut Shard, now: Instant) {
        let full = f64::from(self.limit.burst);
        buckets.retain(|_, bucket| self.refilled(bucket, now) < full);
        if buckets.len() >= MAX_BUCKETS / SHARDS {
            let oldest = buckets
                .iter()
                .min_by_key(|(_, bucket)| bucket.updated)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                buckets.remove(&oldest);
            }
        }
    }

    /// Buckets held now, for tests.
    pub fn buckets(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().expect("rate limit shard poisoned").len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_the_rate_holds() {
        let limiter = RateLimiter::new(RateLimit {
            per_minute: 60,
            burst: 3,
        });
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at(start, "key_a", "list").is_ok());
        }
        let wait = limiter.check_at(start, "key_a", "list").unwrap_err();
        assert!(wait > Duration::from_millis(990) && wait <= Duration::from_secs(1));
        // Another operation and another credential have buckets of their own.
        assert!(limiter.check_at(start, "key_a", "create").is_ok());
        assert!(limiter.check_at(start, "key_b", "list").is_ok());
        // Half a second later half a request has come back: still half a second to wait.
        let later = start + Duration::from_millis(500);
        let wait = limiter.check_at(later, "key_a", "list").unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 0.01, "{wait:?}");
        assert!(limiter
            .check_at(start + Duration::from_secs(1), "key_a", "list")
            .is_ok());
        // A long rest refills no more than the burst.
        let rested = start + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(limiter.check_at(rested, "key_a", "list").is_ok());
        }
        assert!(limiter.check_at(rested, "key_a", "list").is_err());
    }

    #[test]
    fn zero_turns_limiting_off() {
        let limiter = RateLimiter::new(RateLimit::unlimited());
        let now = Instant::now();
        for _ in 0..10_000 {
            assert!(limiter.check_at(now, "key", "op").is_ok());
        }
        assert_eq!(limiter.buckets(), 0);
    }

    #[test]
    fn memory_stays_bounded_whatever_the_number_of_credentials() {
        let limiter = RateLimiter::new(RateLimit::per_minute(600));
        let now = Instant::now();
        for i in 0..(MAX_BUCKETS + 5_000) {
            let _ = limiter.check_at(now, &format!("key_{i}"), "op");
        }
        assert!(limiter.buckets() <= MAX_BUCKETS);
        // Once idle long enough to be full again, buckets are dropped to make room.
        let later = now + Duration::from_secs(120);
        for i in 0..500 {
            let _ = limiter.check_at(later, &format!("new_{i}"), "op");
        }
        assert!(limiter.buckets() < 1_000, "{}", limiter.buckets());
    }
}
