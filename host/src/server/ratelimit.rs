//! The per-tenant API rate (`api_requests_per_s`, `api_burst`): one token
//! bucket per tenant, shared by all its tokens. A request takes a token; an
//! empty bucket answers 429 naming the quota, with `Retry-After`. The
//! operator is not limited.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Every tenant's bucket.
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Takes one request from `tenant`'s bucket, refilled at `per_s` a
    /// second up to `burst`. `Err(wait)`: empty; the next token comes after `wait`.
    pub fn take(&self, tenant: &str, per_s: u64, burst: u64) -> Result<(), Duration> {
        self.take_at(tenant, per_s, burst, Instant::now())
    }

    fn take_at(&self, tenant: &str, per_s: u64, burst: u64, now: Instant) -> Result<(), Duration> {
        let (per_s, burst) = (per_s.max(1) as f64, burst.max(1) as f64);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = buckets.entry(tenant.to_string()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * per_s).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / per_s))
        }
    }

    /// Forgets a deleted tenant's bucket.
    pub fn forget(&self, tenant: &str) {
        self.buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_drains_the_bucket_and_time_refills_it_per_tenant() {
        let r = RateLimiter::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(r.take_at("a", 2, 3, t0).is_ok());
        }
        let wait = r.take_at("a", 2, 3, t0).expect_err("empty after the burst");
        assert_eq!(wait, Duration::from_millis(500));
        // Another tenant has its own bucket.
        assert!(r.take_at("b", 2, 3, t0).is_ok());
        // Half a second later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        assert!(r.take_at("a", 2, 3, t1).is_ok());
        assert_eq!(r.take_at("a", 2, 3, t1), Err(Duration::from_millis(500)));
        // Long idle refills up to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(r.take_at("a", 2, 3, t2).is_ok());
        }
        assert_eq!(r.take_at("a", 2, 3, t2), Err(Duration::from_millis(500)));
    }
}
