//! The per-caller rate limit: a token bucket per principal,
//! or per client address for requests without one. `GATEWAY_RATE_LIMIT`
//! tokens come back per second, up to a burst of twice that; a request
//! takes one, and finding none is a 429 with `Retry-After`.
//!
//! A few lines of arithmetic under one mutex, not a crate: the lock is held
//! for a map lookup and a multiplication. Buckets that have filled up again
//! are dropped every [`PRUNE_EVERY`], so the map holds only the callers of
//! the last few seconds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const PRUNE_EVERY: Duration = Duration::from_secs(10);

pub struct Limiter {
    rate: f64,
    burst: f64,
    state: Mutex<State>,
}

struct State {
    buckets: HashMap<String, Bucket>,
    pruned: Instant,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant, rate: f64, burst: f64) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.at = now;
    }
}

/// Whose bucket a request takes from.
pub fn principal_key(sub: &str) -> String {
    format!("p:{sub}")
}

/// An anonymous caller's bucket: its IPv4 address, or its IPv6 /64 (one
/// host usually holds a whole /64, so finer keys would be free to spread).
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("a:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("a:{v4}"),
            None => {
                let s = v6.segments();
                format!("a:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

impl Limiter {
    /// `None` for a rate of 0 (no limit).
    pub fn new(per_second: u32) -> Option<Limiter> {
        (per_second > 0).then(|| Limiter {
            rate: per_second as f64,
            burst: 2.0 * per_second as f64,
            state: Mutex::new(State {
                buckets: HashMap::new(),
                pruned: Instant::now(),
            }),
        })
    }

    /// Takes a token from `key`'s bucket; when it is empty, the whole
    /// seconds until one is back.
    pub fn take(&self, key: &str) -> Result<(), u64> {
        self.take_at(key, Instant::now())
    }

    fn take_at(&self, key: &str, now: Instant) -> Result<(), u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if now.saturating_duration_since(state.pruned) >= PRUNE_EVERY {
            let (rate, burst) = (self.rate, self.burst);
            state.buckets.retain(|_, b| {
                b.refill(now, rate, burst);
                b.tokens < burst
            });
            state.pruned = now;
        }
        let bucket = match state.buckets.get_mut(key) {
            Some(bucket) => bucket,
            None => state.buckets.entry(key.to_string()).or_insert(Bucket {
                tokens: self.burst,
                at: now,
            }),
        };
        bucket.refill(now, self.rate, self.burst);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - bucket.tokens) / self.rate).ceil() as u64).max(1))
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.state.lock().unwrap().buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate_then_refusal_per_key() {
        let limiter = Limiter::new(5).unwrap();
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(limiter.take_at("a", t0).is_ok(), "burst {i}");
        }
        assert_eq!(limiter.take_at("a", t0), Err(1));
        assert!(limiter.take_at("b", t0).is_ok(), "another key has its own");
        let later = t0 + Duration::from_millis(400); // two tokens back
        assert!(limiter.take_at("a", later).is_ok());
        assert!(limiter.take_at("a", later).is_ok());
        assert!(limiter.take_at("a", later).is_err());
        assert!(Limiter::new(0).is_none());
    }

    #[test]
    fn slow_rates_say_how_long_to_wait_and_full_buckets_are_dropped() {
        let limiter = Limiter::new(1).unwrap();
        let t0 = Instant::now();
        assert!(limiter.take_at("a", t0).is_ok());
        assert!(limiter.take_at("a", t0).is_ok());
        assert_eq!(limiter.take_at("a", t0), Err(1));
        limiter.take_at("b", t0).unwrap();
        assert_eq!(limiter.len(), 2);
        limiter.take_at("c", t0 + PRUNE_EVERY).unwrap();
        assert_eq!(limiter.len(), 1, "a and b were full again");
    }

    #[test]
    fn address_keys() {
        assert_eq!(address_key("10.1.2.3".parse().unwrap()), "a:10.1.2.3");
        assert_eq!(
            address_key("::ffff:10.1.2.3".parse().unwrap()),
            "a:10.1.2.3"
        );
        assert_eq!(
            address_key("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            address_key("2001:db8:1:2:ffff::1".parse().unwrap())
        );
    }
}
