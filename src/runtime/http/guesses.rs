//! Slowing down token guessing: wrong tokens (a bearer token that is not
//! the API token, a sign-in with no one's token) are counted per client
//! address, and an address that sent [`BURST`] of them is refused for a
//! while, right or wrong, before its token is even compared.
//!
//! Each address has a bucket of [`BURST`] tries that refills one every
//! [`REFILL`]: a person who mistypes a few times never notices, a script
//! trying tokens gets about one guess per [`REFILL`]. Tokens on a network
//! address are at least 16 characters (`config::MIN_NETWORK_TOKEN_CHARS`),
//! so this is a second line, not the first.
//!
//! IPv6 addresses count by their /64, the block one machine is usually
//! given, so a client cannot step to a fresh address per guess. Behind a
//! reverse proxy every request comes from the proxy's address (forwarded
//! headers are not trusted: anyone can write them), so one guesser slows
//! everyone's sign-in; the README says to throttle at the proxy there.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong tokens an address may send before it waits.
pub const BURST: u32 = 10;
/// How long an address waits for each further try.
pub const REFILL: Duration = Duration::from_secs(6);
/// Addresses remembered at once. Past it, addresses not yet known share
/// one bucket, so a guesser with many addresses cannot grow the map (or
/// escape the limit); a bucket that has refilled is forgotten first.
const MAX_ADDRESSES: usize = 10_000;

/// The counts, shared by every request of a server.
#[derive(Debug, Default)]
pub struct Guesses {
    buckets: Mutex<HashMap<Key, Bucket>>,
}

/// Whom a bucket is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6(u64),
    /// Unknown addresses once [`MAX_ADDRESSES`] are known, and requests
    /// whose address the server was not given (an embedder's router).
    Shared,
}

impl Key {
    fn of(ip: Option<IpAddr>) -> Key {
        match ip.map(canonical) {
            Some(IpAddr::V4(v4)) => Key::V4(v4.octets()),
            Some(IpAddr::V6(v6)) => Key::V6((u128::from(v6) >> 64) as u64),
            None => Key::Shared,
        }
    }
}

/// An IPv4 client reached over an IPv6 socket (`::ffff:a.b.c.d`) counts
/// as its IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tries left when last looked at.
    tries: f64,
    at: Instant,
}

impl Bucket {
    fn full(now: Instant) -> Bucket {
        Bucket {
            tries: f64::from(BURST),
            at: now,
        }
    }

    /// The bucket refilled up to `now`.
    fn at(self, now: Instant) -> Bucket {
        let refilled = now.saturating_duration_since(self.at).as_secs_f64() / REFILL.as_secs_f64();
        Bucket {
            tries: (self.tries + refilled).min(f64::from(BURST)),
            at: now,
        }
    }
}

impl Guesses {
    /// `Err(wait)` when `ip` has no try left: answer 429 with
    /// `Retry-After: wait` without looking at its token.
    pub fn check(&self, ip: Option<IpAddr>) -> Result<(), Duration> {
        self.check_at(ip, Instant::now())
    }

    /// Counts a wrong token from `ip`.
    pub fn wrong(&self, ip: Option<IpAddr>) {
        self.wrong_at(ip, Instant::now());
    }

    fn check_at(&self, ip: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let key = Self::key_in(&buckets, ip);
        let Some(bucket) = buckets.get(&key) else {
            return Ok(());
        };
        let bucket = bucket.at(now);
        if bucket.tries >= 1.0 {
            return Ok(());
        }
        let missing = (1.0 - bucket.tries) * REFILL.as_secs_f64();
        Err(Duration::from_secs_f64(missing.max(0.0)))
    }

    fn wrong_at(&self, ip: Option<IpAddr>, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let mut key = Key::of(ip);
        if !buckets.contains_key(&key) && buckets.len() >= MAX_ADDRESSES {
            // Forget the addresses whose buckets have refilled; if that
            // frees nothing, this address shares the overflow bucket.
            buckets.retain(|_, b| b.at(now).tries < f64::from(BURST));
            if buckets.len() >= MAX_ADDRESSES {
                key = Key::Shared;
            }
        }
        let bucket = buckets.entry(key).or_insert_with(|| Bucket::full(now));
        let mut refilled = bucket.at(now);
        refilled.tries = (refilled.tries - 1.0).max(0.0);
        *bucket = refilled;
    }

    /// The bucket `ip` counts in: its own once known, the shared one when
    /// the map is full and `ip` is not in it.
    fn key_in(buckets: &HashMap<Key, Bucket>, ip: Option<IpAddr>) -> Key {
        let key = Key::of(ip);
        if buckets.contains_key(&key) || buckets.len() < MAX_ADDRESSES {
            key
        } else {
            Key::Shared
        }
    }
}

/// Whole seconds for `Retry-After`, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// The client's address, when the server was started with it
/// (`serve` is; an embedder's router may not be).
pub fn client_ip(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn an_address_waits_after_a_burst_of_wrong_tokens_and_gets_a_try_back_per_refill() {
        let g = Guesses::default();
        let t0 = Instant::now();
        let a = ip("192.0.2.7");
        for i in 0..BURST {
            assert!(g.check_at(a, t0).is_ok(), "try {i}");
            g.wrong_at(a, t0);
        }
        let wait = g.check_at(a, t0).unwrap_err();
        assert_eq!(wait, REFILL);
        assert_eq!(retry_after_secs(wait), REFILL.as_secs());
        // Another address is not slowed.
        assert!(g.check_at(ip("192.0.2.8"), t0).is_ok());
        // One refill later: one try, and after it a wait again.
        let t1 = t0 + REFILL;
        assert!(g.check_at(a, t1).is_ok());
        g.wrong_at(a, t1);
        assert!(g.check_at(a, t1).is_err());
        // Half a refill: still waiting, for the other half.
        let wait = g.check_at(a, t1 + REFILL / 2).unwrap_err();
        assert_eq!(retry_after_secs(wait), REFILL.as_secs() / 2);
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64_block_and_a_mapped_ipv4_as_itself() {
        let g = Guesses::default();
        let t0 = Instant::now();
        for i in 0..BURST {
            g.wrong_at(ip(&format!("2001:db8:1:2::{i:x}")), t0);
        }
        assert!(g.check_at(ip("2001:db8:1:2:ffff::1"), t0).is_err());
        assert!(g.check_at(ip("2001:db8:1:3::1"), t0).is_ok());

        for _ in 0..BURST {
            g.wrong_at(ip("::ffff:198.51.100.4"), t0);
        }
        assert!(g.check_at(ip("198.51.100.4"), t0).is_err());
    }

    #[test]
    fn past_the_map_s_size_new_addresses_share_one_bucket() {
        let g = Guesses::default();
        let t0 = Instant::now();
        for n in 0..MAX_ADDRESSES as u32 {
            g.wrong_at(Some(IpAddr::V4(n.to_be_bytes().into())), t0);
        }
        // Every known bucket is still short of full: a new address shares.
        let fresh = |n: u32| Some(IpAddr::V4((0xC000_0000 + n).to_be_bytes().into()));
        for n in 0..BURST {
            assert!(g.check_at(fresh(n), t0).is_ok());
            g.wrong_at(fresh(n), t0);
        }
        assert!(
            g.check_at(fresh(BURST), t0).is_err(),
            "the shared bucket is empty"
        );
        assert!(g.buckets.lock().unwrap().len() <= MAX_ADDRESSES + 1);
        // Once the known buckets have refilled they are forgotten.
        let later = t0 + REFILL * BURST;
        g.wrong_at(fresh(100), later);
        assert!(g.buckets.lock().unwrap().len() < 10);
    }
}
