//! The HTTP policy every client shares: one reqwest client per upstream with a timeout per call,
//! a connect timeout, our user agent and no redirects (a token header would follow a redirect to
//! any host); exponential backoff with ±20 % jitter; `Retry-After` in both of its forms, honoured
//! up to the cap; and the pauses a 429 puts on every call of the same caller (host and
//! credential), not only on the request it answered. The waits are pure, so they are tested
//! without waiting. Every try is told to the upstream's [`CallObserver`] (the service's metrics).
use std::{
    collections::HashMap,
    fmt,
    future::Future,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime},
};

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use url::Url;

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

/// How one try at an upstream ended, as the operator counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    /// A 2xx answer that was understood.
    Ok,
    /// A 4xx other than 408 and 429: the request was refused.
    ClientError,
    /// 429.
    Throttled,
    /// A 5xx.
    ServerError,
    /// The call timed out, or the upstream answered 408.
    Timeout,
    /// The connection failed (refused, reset, name not resolved).
    Transport,
    /// An answer that was not understood, or a call refused before it was sent.
    Invalid,
}

impl CallOutcome {
    /// How a failed try ended, from what it says about trying again.
    pub fn of(retry: Retry) -> Self {
        match retry {
            Retry::Throttled(_) => Self::Throttled,
            Retry::Later {
                overloaded: true, ..
            } => Self::Timeout,
            Retry::Later { status: None, .. } => Self::Transport,
            Retry::Later {
                status: Some(s), ..
            }
            | Retry::Never { status: Some(s) } => match s {
                429 => Self::Throttled,
                408 => Self::Timeout,
                s if s >= 500 => Self::ServerError,
                _ => Self::ClientError,
            },
            Retry::Never { status: None } => Self::Invalid,
        }
    }

    /// The label `/metrics` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::ClientError => "client_error",
            Self::Throttled => "throttled",
            Self::ServerError => "server_error",
            Self::Timeout => "timeout",
            Self::Transport => "transport",
            Self::Invalid => "invalid",
        }
    }
}

/// Who hears how each try at an upstream ended: the service's metrics. Clients know only this
/// trait, not who implements it.
pub trait CallObserver: fmt::Debug + Send + Sync {
    /// One try at `host` (`name:port`, as [`Caller::host`]) ended as `outcome`.
    fn observe(&self, host: &str, outcome: CallOutcome);

    /// Calls to `host` are now paced at `per_second` requests a second (the program's pacer).
    fn paced(&self, _host: &str, _per_second: u32) {}
}

/// An observer shared by every call of one upstream client.
pub type SharedObserver = Arc<dyn CallObserver>;

/// Nobody listens: clients built outside the service (tools, tests) until they are observed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unobserved;

impl CallObserver for Unobserved {
    fn observe(&self, _host: &str, _outcome: CallOutcome) {}
}

/// The client and retry policy of one upstream, from its `[amazon]` or `[program]` keys.
pub fn policy(h: HttpSettings) -> reqwest::Result<(reqwest::Client, RetryPolicy)> {
    Ok((
        client(Duration::from_secs(h.request_timeout_secs))?,
        retry_policy(h),
    ))
}

/// The retry policy of one upstream, from its `[amazon]` or `[program]` keys.
pub fn retry_policy(h: HttpSettings) -> RetryPolicy {
    RetryPolicy {
        attempts: h.retry_attempts,
        base: Duration::from_millis(h.retry_base_ms),
        cap: Duration::from_millis(h.retry_cap_ms),
        later: true,
    }
}

/// A client for one upstream: every call gives up after `timeout`.
pub fn client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    builder(timeout).build()
}

/// The shared policy (timeouts, no redirects, user agent), for a client that adds to it.
pub fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("attribution-bridge/", env!("CARGO_PKG_VERSION")))
}

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
    /// Whether 408, 5xx, timeouts and connection errors are tried again inline. Not for a call
    /// whose outcome is unknown after them (a create): only a 429, which refused the request
    /// before anything was done, is then tried again; the rest is the job schedule's.
    pub later: bool,
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

    /// Whether an inline retry may wait as long as a `Retry-After` asks. Beyond the cap it may
    /// not: the call gives up at once (its job's schedule honours longer waits) rather than
    /// sending before the upstream said it would listen.
    pub fn waits_for(&self, retry_after: Option<Duration>) -> bool {
        retry_after.is_none_or(|after| after <= self.cap)
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): delta-seconds or an HTTP-date (any of its three formats),
/// as a wait from `now`. A date already past is no wait; a value of neither form is no hint. A
/// delta too large to count is the longest wait there is: callers clamp it to their cap.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(value.parse().map_or(Duration::MAX, Duration::from_secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Whose calls a 429 pauses: one host (with its port) and one credential, kept as a fingerprint
/// (the first 8 bytes of its SHA-256), never as the secret itself.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Caller {
    host: String,
    credential: [u8; 8],
}

impl Caller {
    /// `credential` names who calls (a token, a profile id); callers prefix it with its kind, so
    /// that a token never collides with a profile id.
    pub fn new(url: &Url, credential: &str) -> Self {
        let host = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        );
        let digest = Sha256::digest(credential.as_bytes());
        let mut fingerprint = [0; 8];
        fingerprint.copy_from_slice(&digest[..8]);
        Self {
            host,
            credential: fingerprint,
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("host", &self.host)
            .field("credential", &hex::encode(self.credential))
            .finish()
    }
}

/// The pauses 429s put on callers, shared by every worker of this instance: a caller waits until
/// its pause has passed before each call to that host.
#[derive(Debug, Default)]
pub struct Pauses(Mutex<HashMap<Caller, Instant>>);

impl Pauses {
    /// Until when `caller` must not call, while a pause is on.
    pub fn until(&self, caller: &Caller) -> Option<Instant> {
        let now = Instant::now();
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(caller).copied().filter(|until| *until > now)
    }

    /// Returns once `caller`'s pause has passed (one lengthened meanwhile is waited out too).
    pub async fn wait(&self, caller: &Caller) {
        while let Some(until) = self.until(caller) {
            tokio::time::sleep_until(until).await;
        }
    }

    /// A 429: `caller` sends nothing more for `wait` from now. A longer pause already on stays.
    /// `wait` is the caller's to clamp (to its cap); one past the clock's range is ignored.
    pub fn pause(&self, caller: &Caller, wait: Duration) {
        let now = Instant::now();
        let Some(until) = now.checked_add(wait) else {
            return;
        };
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, t| *t > now);
        let entry = map.entry(caller.clone()).or_insert(until);
        *entry = (*entry).max(until);
    }
}

/// One call with the inline retries every client shares. Before each try it waits out the
/// caller's pause. A 429 pauses the caller (for its `Retry-After` up to the cap, or the backoff)
/// and is tried again once the pause has passed, unless the upstream asked for longer than the
/// cap; 408, 5xx and the network are tried again after the backoff (when `policy.later`);
/// `policy.attempts` tries in all. The last failure is returned as it is. Each try's outcome is told to `observer`.
pub async fn call<T, E, Fut>(
    policy: RetryPolicy,
    pauses: &Pauses,
    caller: &Caller,
    observer: &dyn CallObserver,
    retry_of: impl Fn(&E) -> Retry,
    mut send: impl FnMut() -> Fut,
) -> Result<T, E>
where
    E: fmt::Display,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        pauses.wait(caller).await;
        let error = match send().await {
            Ok(answer) => {
                observer.observe(caller.host(), CallOutcome::Ok);
                return Ok(answer);
            }
            Err(e) => e,
        };
        let retry = retry_of(&error);
        observer.observe(caller.host(), CallOutcome::of(retry));
        let more = attempt < policy.attempts;
        let (wait, throttled) = match retry {
            Retry::Throttled(after) => {
                let wait = policy.delay(attempt, after, &mut rand::rng());
                pauses.pause(caller, wait);
                if !(more && policy.waits_for(after)) {
                    return Err(error);
                }
                (wait, true)
            }
            Retry::Later { .. } if more && policy.later => {
                (policy.delay(attempt, None, &mut rand::rng()), false)
            }
            Retry::Later { .. } | Retry::Never { .. } => return Err(error),
        };
        tracing::warn!(
            host = caller.host(),
            error = %error,
            attempt,
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "upstream call failed; retrying"
        );
        if !throttled {
            // Not the caller's fault: this request waits, the caller's other calls do not.
            tokio::time::sleep(wait).await;
        }
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        attempts: 5,
        base: Duration::from_secs(2),
        cap: Duration::from_secs(30),
        later: true,
    };

    #[test]
    fn each_answer_is_counted_under_its_outcome() {
        let later = |status, overloaded| Retry::Later { status, overloaded };
        for (retry, outcome) in [
            (Retry::Throttled(None), CallOutcome::Throttled),
            (later(Some(503), false), CallOutcome::ServerError),
            (later(Some(408), true), CallOutcome::Timeout),
            (later(None, true), CallOutcome::Timeout),
            (later(None, false), CallOutcome::Transport),
            (Retry::Never { status: Some(400) }, CallOutcome::ClientError),
            (Retry::Never { status: Some(401) }, CallOutcome::ClientError),
            (Retry::Never { status: None }, CallOutcome::Invalid),
        ] {
            assert_eq!(CallOutcome::of(retry), outcome, "{retry:?}");
        }
    }

    /// Remembers every try it is told of.
    #[derive(Debug, Default)]
    struct Recorder(Mutex<Vec<(String, CallOutcome)>>);

    impl CallObserver for Recorder {
        fn observe(&self, host: &str, outcome: CallOutcome) {
            self.0.lock().unwrap().push((host.to_owned(), outcome));
        }
    }

    #[tokio::test]
    async fn every_try_is_observed_once_retries_included() {
        let policy = RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(2),
            later: true,
        };
        let caller = Caller::new(&Url::parse("https://api.example:8443/v1").unwrap(), "t");
        let recorder = Recorder::default();
        let answers = Mutex::new(vec![Ok(7), Err(Retry::Throttled(None)), Err(later_5xx())]);
        let got: Result<i32, String> = call(
            policy,
            &Pauses::default(),
            &caller,
            &recorder,
            |e: &String| match e.as_str() {
                "429" => Retry::Throttled(None),
                _ => later_5xx(),
            },
            || {
                let next = answers.lock().unwrap().pop().unwrap();
                async move {
                    next.map_err(|r| match r {
                        Retry::Throttled(_) => "429".to_owned(),
                        _ => "503".to_owned(),
                    })
                }
            },
        )
        .await;
        assert_eq!(got, Ok(7));
        let host = "api.example:8443".to_owned();
        assert_eq!(
            *recorder.0.lock().unwrap(),
            [
                (host.clone(), CallOutcome::ServerError),
                (host.clone(), CallOutcome::Throttled),
                (host, CallOutcome::Ok),
            ]
        );
    }

    #[tokio::test]
    async fn without_later_retries_only_a_429_is_tried_again() {
        let policy = RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(2),
            later: false,
        };
        let run = |answers: Vec<Result<i32, &'static str>>| {
            let caller = Caller::new(&Url::parse("https://api.example/v1").unwrap(), "t");
            let answers = Mutex::new(answers);
            let tries = Mutex::new(0);
            async move {
                let got: Result<i32, &str> = call(
                    policy,
                    &Pauses::default(),
                    &caller,
                    &Unobserved,
                    |e: &&str| match *e {
                        "429" => Retry::Throttled(None),
                        _ => later_5xx(),
                    },
                    || {
                        *tries.lock().unwrap() += 1;
                        let next = answers.lock().unwrap().pop().unwrap();
                        async move { next }
                    },
                )
                .await;
                (got, *tries.lock().unwrap())
            }
        };
        assert_eq!(run(vec![Ok(7), Err("429")]).await, (Ok(7), 2));
        assert_eq!(run(vec![Ok(7), Err("503")]).await, (Err("503"), 1));
        // Still bounded by the attempts.
        assert_eq!(
            run(vec![Ok(7), Err("429"), Err("429"), Err("429")]).await,
            (Err("429"), 3)
        );
    }

    fn later_5xx() -> Retry {
        Retry::Later {
            status: Some(503),
            overloaded: false,
        }
    }

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

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, value.parse().unwrap());
        h
    }

    /// Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example date.
    fn example_date() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    #[test]
    fn retry_after_reads_delta_seconds() {
        let now = example_date();
        assert_eq!(
            retry_after(&headers("120"), now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after(&headers(" 7 "), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(retry_after(&headers("0"), now), Some(Duration::ZERO));
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn retry_after_reads_an_http_date_in_each_of_its_formats_against_now() {
        let now = example_date() - Duration::from_secs(6);
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                retry_after(&headers(date), now),
                Some(Duration::from_secs(6)),
                "{date}"
            );
        }
        // The date as the upstream writes it, from our own clock.
        let real_now = SystemTime::now();
        let ahead = httpdate::fmt_http_date(real_now + Duration::from_secs(90));
        let wait = retry_after(&headers(&ahead), real_now).unwrap();
        assert!(
            wait > Duration::from_secs(89) && wait <= Duration::from_secs(90),
            "{wait:?}"
        );
    }

    #[test]
    fn a_date_in_the_past_is_no_wait() {
        let now = example_date() + Duration::from_secs(3600);
        assert_eq!(
            retry_after(&headers("Sun, 06 Nov 1994 08:49:37 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after(&headers("Sun, 06 Nov 1994 08:49:37 GMT"), example_date()),
            Some(Duration::ZERO),
            "a date that is now"
        );
    }

    #[test]
    fn garbage_is_no_hint() {
        for value in [
            "",
            "soon",
            "-5",
            "1.5",
            "5s",
            "+5",
            "0x10",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "2026-11-20T10:00:06Z",
            "Sun, 06 Nov 1994",
        ] {
            assert_eq!(
                retry_after(&headers(value), example_date()),
                None,
                "{value:?}"
            );
        }
        let mut not_text = HeaderMap::new();
        not_text.insert(
            RETRY_AFTER,
            reqwest::header::HeaderValue::from_bytes(b"\xff12").unwrap(),
        );
        assert_eq!(retry_after(&not_text, example_date()), None);
    }

    #[test]
    fn huge_values_are_read_and_then_clamped_to_the_cap() {
        let now = example_date();
        let beyond_u64 = "99999999999999999999999999";
        assert_eq!(retry_after(&headers(beyond_u64), now), Some(Duration::MAX));
        let max = u64::MAX.to_string();
        assert_eq!(
            retry_after(&headers(&max), now),
            Some(Duration::from_secs(u64::MAX))
        );
        let far = retry_after(&headers("Fri, 31 Dec 9999 23:59:59 GMT"), now).unwrap();
        assert!(far > Duration::from_secs(250_000_000_000));
        let mut rng = StdRng::seed_from_u64(7);
        for after in [Duration::MAX, far] {
            assert_eq!(POLICY.delay(1, Some(after), &mut rng), POLICY.cap);
            assert!(!POLICY.waits_for(Some(after)));
        }
        assert!(POLICY.waits_for(Some(POLICY.cap)));
        assert!(POLICY.waits_for(None));
        // A pause that long is still bounded by the cap, and adds to the clock without panicking.
        let pauses = Pauses::default();
        let caller = Caller::new(&Url::parse("https://api.example").unwrap(), "token:t");
        pauses.pause(&caller, Duration::MAX);
        assert_eq!(
            pauses.until(&caller),
            None,
            "an impossible instant is no pause"
        );
    }

    #[test]
    fn a_pause_binds_one_credential_at_one_host() {
        let url = |u: &str| Url::parse(u).unwrap();
        let store_a = Caller::new(&url("https://api.goaffpro.com/v1"), "token:gpat_a");
        let pauses = Pauses::default();
        pauses.pause(&store_a, Duration::from_secs(30));
        let until = pauses.until(&store_a).expect("paused");
        assert!(until > Instant::now() + Duration::from_secs(29));
        // The same caller whatever the path; another token, host or port is another caller.
        let same = Caller::new(
            &url("https://api.goaffpro.com/v1/admin/orders"),
            "token:gpat_a",
        );
        assert_eq!(pauses.until(&same), Some(until));
        for other in [
            Caller::new(&url("https://api.goaffpro.com/v1"), "token:gpat_b"),
            Caller::new(&url("https://other.example/v1"), "token:gpat_a"),
            Caller::new(&url("https://api.goaffpro.com:8443/v1"), "token:gpat_a"),
        ] {
            assert_eq!(pauses.until(&other), None, "{other:?}");
        }
        // A shorter pause does not cut a longer one short.
        pauses.pause(&store_a, Duration::from_secs(1));
        assert_eq!(pauses.until(&store_a), Some(until));
        // The secret never shows.
        let shown = format!("{store_a:?}");
        assert!(
            !shown.contains("gpat_a") && shown.contains("api.goaffpro.com:443"),
            "{shown}"
        );
    }
}
