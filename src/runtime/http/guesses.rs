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
//! given, so a client cannot step to a fresh address per guess.
//!
//! Behind a reverse proxy every request comes from the proxy's address.
//! `X-Forwarded-For` names the client, but anyone can write it, so it is
//! believed only from the addresses of `trusted_proxies` (see
//! [`ClientAddress`]); with none set, one guesser behind a proxy slows
//! everyone who comes through it.

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
    /// Who a request is from.
    clients: ClientAddress,
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
    /// Counts that believe `X-Forwarded-For` from `trusted_proxies`.
    pub fn new(trusted_proxies: Vec<ipnet::IpNet>) -> Guesses {
        Guesses {
            buckets: Mutex::default(),
            clients: ClientAddress::new(trusted_proxies),
        }
    }

    /// The address a request's wrong tokens count under (see
    /// [`ClientAddress`]).
    pub fn client(
        &self,
        extensions: &axum::http::Extensions,
        headers: &axum::http::HeaderMap,
    ) -> Option<IpAddr> {
        self.clients.of(extensions, headers)
    }

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

/// The peer's address, when the server was started with it (`serve` is;
/// an embedder's router may not be).
fn peer_ip(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| canonical(c.0.ip()))
}

/// Which address a request counts under: the peer's, or, when the peer is
/// one of the `trusted_proxies`, the client its `X-Forwarded-For` names.
///
/// The header is read from its right end, where the proxy nearest to us
/// appended the address it saw: every address of a trusted proxy is
/// passed over, and the first other one is the client. What lies to the
/// left of it was written by the client and is never believed. An entry
/// that is not an address ends the walk at the last address believed, so
/// a malformed header cannot choose the bucket.
#[derive(Debug, Clone, Default)]
pub struct ClientAddress {
    trusted: Vec<ipnet::IpNet>,
}

impl ClientAddress {
    /// Believes `X-Forwarded-For` from peers in `trusted` (none: never).
    pub fn new(trusted: Vec<ipnet::IpNet>) -> ClientAddress {
        ClientAddress { trusted }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The address `request`'s wrong tokens count under.
    pub fn of(
        &self,
        extensions: &axum::http::Extensions,
        headers: &axum::http::HeaderMap,
    ) -> Option<IpAddr> {
        let peer = peer_ip(extensions)?;
        if !self.trusts(peer) {
            return Some(peer);
        }
        // Several headers are one list, in order (RFC 9110, 5.3).
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = forwarded_ip(hop) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        Some(client)
    }
}

/// An `X-Forwarded-For` entry as an address: `203.0.113.5`, `2001:db8::1`,
/// and the forms some proxies write with a port (`203.0.113.5:41234`,
/// `[2001:db8::1]:41234`).
fn forwarded_ip(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    hop.parse::<std::net::SocketAddr>()
        .ok()
        .map(|s| canonical(s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    /// The address a request from `peer` with these `X-Forwarded-For`
    /// headers counts under.
    fn client(trusted: &[&str], peer: &str, forwarded: &[&str]) -> Option<IpAddr> {
        let resolver = ClientAddress::new(trusted.iter().map(|t| t.parse().unwrap()).collect());
        let mut extensions = axum::http::Extensions::new();
        let peer: std::net::SocketAddr = peer.parse().unwrap();
        extensions.insert(axum::extract::ConnectInfo(peer));
        let mut headers = axum::http::HeaderMap::new();
        for f in forwarded {
            headers.append("x-forwarded-for", f.parse().unwrap());
        }
        resolver.of(&extensions, &headers)
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy_and_only_its_own_hop() {
        let proxy = ["10.0.0.0/8"];
        // No proxy trusted: the header is anyone's to write.
        assert_eq!(
            client(&[], "10.0.0.2:5000", &["203.0.113.5"]),
            ip("10.0.0.2")
        );
        // Trusted: the client the proxy saw.
        assert_eq!(
            client(&proxy, "10.0.0.2:5000", &["203.0.113.5"]),
            ip("203.0.113.5")
        );
        // Not from the proxy: ignored, whatever it says.
        assert_eq!(
            client(&proxy, "198.51.100.9:5000", &["203.0.113.5"]),
            ip("198.51.100.9")
        );
        // A client that writes its own header gets the proxy's entry
        // appended after it: the rightmost untrusted address counts, so a
        // guesser cannot choose a fresh bucket per request.
        assert_eq!(
            client(&proxy, "10.0.0.2:5000", &["192.0.2.1, 203.0.113.5"]),
            ip("203.0.113.5")
        );
        assert_eq!(
            client(&proxy, "10.0.0.2:5000", &["192.0.2.1", "203.0.113.5"]),
            ip("203.0.113.5"),
            "two headers are one list"
        );
        // Two proxies in a row: both passed over.
        assert_eq!(
            client(&proxy, "10.0.0.2:5000", &["203.0.113.5, 10.1.1.1"]),
            ip("203.0.113.5")
        );
        // A trusted proxy that sent no header (its own request), or junk.
        assert_eq!(client(&proxy, "10.0.0.2:5000", &[]), ip("10.0.0.2"));
        assert_eq!(
            client(&proxy, "10.0.0.2:5000", &["unknown"]),
            ip("10.0.0.2")
        );
        assert_eq!(
            client(&proxy, "10.0.0.2:5000", &["203.0.113.5, junk, 10.1.1.1"]),
            ip("10.1.1.1"),
            "the walk stops at the last address believed"
        );
        // Ports, IPv6 and IPv4 over IPv6.
        assert_eq!(
            client(&proxy, "10.0.0.2:5000", &["203.0.113.5:41234"]),
            ip("203.0.113.5")
        );
        assert_eq!(
            client(&proxy, "10.0.0.2:5000", &["[2001:db8::7]:41234"]),
            ip("2001:db8::7")
        );
        assert_eq!(
            client(&["::1/128"], "[::ffff:203.0.113.5]:5000", &["192.0.2.1"]),
            ip("203.0.113.5"),
            "a mapped IPv4 peer is its IPv4 address, not the trusted ::1"
        );
        assert_eq!(
            client(&["::1/128"], "[::1]:5000", &["192.0.2.1"]),
            ip("192.0.2.1")
        );
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
