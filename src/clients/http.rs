//! The HTTP policy every client shares: one reqwest client per upstream with a timeout per call,
//! a connect timeout, our user agent and no redirects (a token header would follow a redirect to
//! any host); exponential backoff with ±20 % jitter, a `Retry-After` honoured up to the cap. The
//! waits are pure, so they are tested without waiting.
use std::time::Duration;

use rand::Rng;

use crate::config::HttpSettings;

/// What a failed call to an upstream says about trying it again (DESIGN §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// 429: the caller must slow down; `Retry-After` when the upstream gave one.
    Throttled(Option<Duration>),
    /// 408, 5xx, timeouts (`overloaded`) and connection errors: worth another try later.
    Later {
        status: Option<u16>,
        overloaded: bool,
    },
    /// Any other answer: the same request would fail the same way.
    Never { status: Option<u16> },
}

impl Retry {
    pub fn is_worth_it(self) -> bool {
        !matches!(self, Self::Never { .. })
    }

    /// A transport error: a timeout means the upstream needs room.
    pub fn transport(e: &reqwest::Error) -> Self {
        Self::Later {
            status: None,
            overloaded: e.is_timeout(),
        }
    }
}

/// The client and retry policy of one upstream, from its `[amazon]` or `[program]` keys.
pub fn policy(h: HttpSettings) -> reqwest::Result<(reqwest::Client, RetryPolicy)> {
    let retry = RetryPolicy {
        attempts: h.retry_attempts,
        base: Duration::from_millis(h.retry_base_ms),
        cap: Duration::from_millis(h.retry_cap_ms),
    };
    Ok((client(Duration::from_secs(h.request_timeout_secs))?, retry))
}

/// A client for one upstream: every call gives up after `timeout`.
pub fn client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("attribution-bridge/", env!("CARGO_PKG_VERSION")))
        .build()
}

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl RetryPolicy {
    /// The wait before try number `attempt + 1` (attempt counts from 1).
    pub fn delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.cap);
        }
        let exp = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let jitter = rng.random_range(0.8..=1.2);
        exp.mul_f64(jitter).min(self.cap)
    }
}

/// `Retry-After` as delta seconds (the HTTP-date form is rare from these APIs and ignored).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        attempts: 5,
        base: Duration::from_secs(2),
        cap: Duration::from_secs(30),
    };

    #[test]
    fn backoff_doubles_within_twenty_percent_and_stops_at_the_cap() {
        let mut rng = StdRng::seed_from_u64(7);
        for (attempt, nominal) in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0)] {
            let d = POLICY.delay(attempt, None, &mut rng).as_secs_f64();
            assert!(
                d >= nominal * 0.8 && d <= nominal * 1.2,
                "attempt {attempt}: {d}"
            );
        }
        assert_eq!(POLICY.delay(10, None, &mut rng), Duration::from_secs(30));
    }

    #[test]
    fn retry_after_is_honoured_but_clamped() {
        let mut rng = StdRng::seed_from_u64(7);
        assert_eq!(
            POLICY.delay(1, Some(Duration::from_secs(3)), &mut rng),
            Duration::from_secs(3)
        );
        assert_eq!(
            POLICY.delay(1, Some(Duration::from_secs(3600)), &mut rng),
            Duration::from_secs(30)
        );
    }
}
