//! When to try a failed delivery again: exponential backoff with jitter,
//! and the sink's own `Retry-After`.
//!
//! The wait after the n-th failure is drawn from `[d/2, d]` where
//! `d = min(max, base × 2^(n-1))` ("equal jitter"): the waits double, the
//! random half spreads deliveries that failed together (a CRM outage) so
//! they do not come back at the same instant, and the fixed half keeps a
//! floor so a struggling sink is not hammered. A `Retry-After` from the
//! sink is a lower bound, clamped to `max` so a bad header cannot park an
//! action for a year.
//!
//! The random numbers come from a seeded SplitMix64 of our own rather than
//! the `rand` crate: a test fixes the seed and gets the same waits on every
//! run and every version (rand does not promise its generators' output
//! across releases), and eight lines is all we need.

use std::time::Duration;

use jiff::Timestamp;

/// A small seeded random source (SplitMix64).
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    /// The same sequence for the same seed.
    pub fn seeded(seed: u64) -> Jitter {
        Jitter(seed)
    }

    /// Seeded from the clock, for production.
    pub fn from_clock() -> Jitter {
        let now = Timestamp::now();
        Jitter((now.as_nanosecond() as u64) ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..=n`.
    fn up_to(&mut self, n: u64) -> u64 {
        if n == u64::MAX {
            return self.next_u64();
        }
        // The modulo bias is below 2^-40 for the microsecond spans we use.
        self.next_u64() % (n + 1)
    }
}

/// The backoff schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure (before jitter).
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Backoff {
    /// The ceiling of the wait after `failures` failures (1 or more).
    pub fn ceiling(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(62);
        let factor = 1u32.checked_shl(doublings.min(31)).unwrap_or(u32::MAX);
        let d = if doublings > 31 {
            self.max
        } else {
            self.base.saturating_mul(factor)
        };
        d.min(self.max)
    }

    /// The wait after `failures` failures: in `[ceiling/2, ceiling]`.
    pub fn delay(&self, failures: u32, jitter: &mut Jitter) -> Duration {
        let ceiling = self.ceiling(failures);
        let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
        let half = micros / 2;
        Duration::from_micros(half + jitter.up_to(micros - half))
    }

    /// The wait, raised to the sink's `Retry-After` (clamped to `max`).
    pub fn delay_honouring(
        &self,
        failures: u32,
        retry_after: Option<Duration>,
        jitter: &mut Jitter,
    ) -> Duration {
        let own = self.delay(failures, jitter);
        match retry_after {
            Some(asked) => own.max(asked.min(self.max)),
            None => own,
        }
    }
}

impl Backoff {
    /// How many failures' worth of wait an action throttled for `age`
    /// has earned: rate limits do not count as failures (the attempts stay
    /// put), yet a sink that keeps answering 429 without a `Retry-After`
    /// must be asked less and less often, not every `base` for a day. The
    /// wait doubles with each `base` × 2^n the action has been around.
    pub fn throttled_failures(&self, age: Duration) -> u32 {
        let base = self.base.as_secs_f64().max(f64::MIN_POSITIVE);
        let ratio = age.as_secs_f64() / base;
        if ratio < 1.0 {
            1
        } else {
            // floor(log2(ratio)) + 1, at most 32 (past the cap anyway).
            (ratio.log2().floor() as u32).saturating_add(1).min(32)
        }
    }
}

/// A `Retry-After` header's wait: delta-seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`), measured from `now`. A date in the
/// past is no wait; anything else unreadable is `None`.
pub fn retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let wait = now.duration_until(at);
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        base: Duration::from_secs(10),
        max: Duration::from_secs(3600),
    };

    /// A sink answering 429 without `Retry-After` for a day is asked a few
    /// dozen times, not every 10 s: the wait grows with the action's age.
    #[test]
    fn a_throttled_action_waits_longer_the_longer_it_has_been_throttled() {
        let waits: Vec<u64> = [0, 9, 10, 25, 80, 3600, 86_400]
            .iter()
            .map(|&s| {
                B.ceiling(B.throttled_failures(Duration::from_secs(s)))
                    .as_secs()
            })
            .collect();
        // About as long as it has been throttled so far, up to the max.
        assert_eq!(waits, [10, 10, 10, 20, 80, 2560, 3600]);
        // Simulated: a day of 429s at the longest wait each time.
        let (mut age, mut tries) = (Duration::ZERO, 0);
        while age < Duration::from_secs(86_400) {
            age += B.ceiling(B.throttled_failures(age));
            tries += 1;
        }
        assert!(tries < 40, "{tries} tries in a day");
        assert_eq!(B.throttled_failures(Duration::MAX), 32);
    }

    #[test]
    fn the_ceiling_doubles_up_to_the_max() {
        let secs: Vec<u64> = (1..=11).map(|n| B.ceiling(n).as_secs()).collect();
        assert_eq!(
            secs,
            [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
        );
        assert_eq!(B.ceiling(0), Duration::from_secs(10));
        assert_eq!(B.ceiling(u32::MAX), Duration::from_secs(3600));
    }

    #[test]
    fn every_wait_is_between_half_and_the_whole_ceiling() {
        let mut j = Jitter::seeded(7);
        for n in 1..=40 {
            for _ in 0..50 {
                let d = B.delay(n, &mut j);
                let c = B.ceiling(n);
                assert!(d >= c / 2 && d <= c, "attempt {n}: {d:?} outside {c:?}");
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_waits_and_waits_spread() {
        let waits = |seed| {
            let mut j = Jitter::seeded(seed);
            (0..20).map(|_| B.delay(3, &mut j)).collect::<Vec<_>>()
        };
        assert_eq!(waits(42), waits(42));
        assert_ne!(waits(42), waits(43));
        // Twenty actions that failed together do not come back together.
        let mut w = waits(42);
        w.sort();
        w.dedup();
        assert!(w.len() >= 18, "{w:?}");
        // SplitMix64's published first output for seed 0.
        assert_eq!(Jitter::seeded(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn retry_after_is_a_floor_clamped_to_the_max() {
        let mut j = Jitter::seeded(1);
        let asked = Some(Duration::from_secs(90));
        let d = B.delay_honouring(1, asked, &mut j);
        assert_eq!(d, Duration::from_secs(90));
        let d = B.delay_honouring(1, Some(Duration::from_secs(86_400 * 365)), &mut j);
        assert_eq!(d, Duration::from_secs(3600));
        // A short Retry-After does not shorten our own wait.
        let d = B.delay_honouring(5, Some(Duration::from_secs(1)), &mut j);
        assert!(d >= Duration::from_secs(80), "{d:?}");
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now: Timestamp = "2015-10-21T07:27:00Z".parse().unwrap();
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-5", now), None);
    }
}
