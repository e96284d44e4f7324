//! The pace of calls to each program host (DESIGN §4.4, `[program] max_requests_per_sec`): one
//! rate limiter per host (`name:port`, as [`Caller::host`](super::http::Caller::host)), shared by
//! every worker of this instance and by every store's token at that host, waited on before each
//! request. Bursts are one request, so a program that counts requests per second never sees more
//! than the rate in any second.
//!
//! The rate adapts: a 429 drops it to the highest rate that went a quiet spell without a 429, else
//! halves it (never below 1/s); a 429 at that very rate (requests bunched at
//! the edge of the program's window) tries one below it, and a second one forgets it. After a
//! quiet spell the rate climbs slowly, staying below the rate that was refused for a while, never
//! above the setting. The rule is [`Pace`], a pure value fed with events and the instants they
//! happen at, so it is tested without waiting; the limiters are `governor`'s, rebuilt when the
//! rate changes (its quotas are fixed).
use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::NoOpMiddleware,
    state::{InMemoryState, NotKeyed},
};

use super::http::CallObserver;

/// The lowest pace a host is ever given, in requests per second.
pub const FLOOR: u32 = 1;
/// 429s this soon after a drop answer requests sent at the old pace: they drop it no further.
pub const SETTLE: Duration = Duration::from_secs(1);
/// The quiet spell after which a busy pace is known good and climbs one step: this long since
/// the last drop or climb, with no 429 but those [`SETTLE`] ignores, and at least as many
/// requests asking for a turn as the rate allows in a second (half of what the spell allows): a
/// pause or an idle spell proves nothing about the rate.
pub const CLIMB_EVERY: Duration = Duration::from_secs(2);
/// How long the rate a 429 refused is remembered: climbing stays below it until then, and then
/// probes above it again (the program's limit may have been raised).
pub const PROBE_AFTER: Duration = Duration::from_secs(60);

/// The adaptive pace of one host, in requests per second: a pure value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    setting: u32,
    rate: u32,
    /// The rate the last 429 answered, while it is remembered.
    refused: Option<u32>,
    /// The highest rate known good: it went a quiet spell without a 429 (`sure`), or it is one
    /// below such a rate that a 429 answered once (not `sure`).
    good: Option<u32>,
    /// Whether `good` went a quiet spell itself.
    sure: bool,
    last_429: Option<Instant>,
    /// The last drop or climb: the start of the quiet spell.
    changed: Instant,
    /// Requests that asked for a turn since `changed`.
    turns: u32,
    dropped: Option<Instant>,
}

impl Pace {
    /// A host's pace at the start: the setting (at least the floor).
    pub fn new(setting: u32, now: Instant) -> Self {
        let setting = setting.max(FLOOR);
        Self {
            setting,
            rate: setting,
            refused: None,
            good: None,
            sure: false,
            last_429: None,
            changed: now,
            turns: 0,
            dropped: None,
        }
    }

    /// Requests per second allowed now.
    pub fn per_second(&self) -> u32 {
        self.rate
    }

    /// The host answered 429 at `now`, unless the pace dropped less than [`SETTLE`] ago (then
    /// the 429 answers a request sent before the drop). The pace drops to the highest rate known
    /// good below the refused one, else to half of it, never below the floor. A 429 at the rate
    /// known good and sure (requests bunched at the edge of the program's window) makes one below
    /// it the rate known good, not sure; a 429 at a rate not sure forgets it (the program's limit
    /// fell). Returns whether the pace changed.
    pub fn throttled(&mut self, now: Instant) -> bool {
        self.last_429 = Some(now);
        if self
            .dropped
            .is_some_and(|at| now.saturating_duration_since(at) < SETTLE)
        {
            return false;
        }
        let refused = self.rate;
        self.refused = Some(refused);
        self.good = match self.good {
            Some(good) if good == refused && self.sure => {
                self.sure = false;
                Some(refused - 1).filter(|below| *below >= FLOOR)
            }
            good => good.filter(|good| *good < refused),
        };
        self.dropped = Some(now);
        self.changed = now;
        self.turns = 0;
        self.rate = self.good.unwrap_or(refused / 2).max(FLOOR);
        self.rate != refused
    }

    /// A request is about to wait its turn at `now`: after a quiet spell ([`CLIMB_EVERY`], busy
    /// and without a 429) the pace is known good and, below the setting, climbs one step: one
    /// request per second, staying below the rate last refused until [`PROBE_AFTER`] without a
    /// 429 has passed; with no refusal remembered, by 10 % (at least 1/s). Returns whether the
    /// pace changed.
    pub fn tick(&mut self, now: Instant) -> bool {
        self.turns = self.turns.saturating_add(1);
        if now.saturating_duration_since(self.changed) < CLIMB_EVERY || self.turns < self.rate {
            return false;
        }
        if self.good.is_none_or(|good| good <= self.rate) {
            self.good = Some(self.rate);
            self.sure = true;
        }
        if self.rate >= self.setting {
            return false;
        }
        if self
            .last_429
            .is_some_and(|at| now.saturating_duration_since(at) >= PROBE_AFTER)
        {
            self.refused = None;
        }
        let next = match self.refused {
            Some(refused) => (self.rate + 1).min(refused.saturating_sub(1)),
            None => self.rate.saturating_add((self.rate / 10).max(1)),
        }
        .min(self.setting);
        if next <= self.rate {
            return false;
        }
        self.rate = next;
        self.changed = now;
        self.turns = 0;
        true
    }
}

/// A limiter of one host at one rate, on any clock (a fake one in tests).
type Limiter<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// `per_second` requests a second, one at a time: no burst.
pub fn quota(per_second: u32) -> Quota {
    let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(NonZeroU32::MIN)
}

/// A limiter at the new rate in place of `old`. If `old` had let a request through less than a
/// period ago, the new one starts with that turn taken: the change never lets two requests
/// through back to back.
fn rebuilt<C: Clock + Clone>(old: &Limiter<C>, per_second: u32, clock: &C) -> Limiter<C> {
    let new = RateLimiter::direct_with_clock(quota(per_second), clock.clone());
    if old.check().is_err() {
        let _ = new.check();
    }
    new
}

/// One host's pace and the limiter that applies it, replaced whenever the pace changes.
#[derive(Debug)]
struct Host {
    pace: Pace,
    limiter: Arc<Limiter<DefaultClock>>,
}

/// The pace of every program host this instance calls, shared by all its workers.
#[derive(Debug)]
pub struct Pacer {
    setting: u32,
    clock: DefaultClock,
    hosts: Mutex<HashMap<String, Arc<Mutex<Host>>>>,
}

impl Pacer {
    /// At most `per_second` requests a second to each host.
    pub fn new(per_second: u32) -> Self {
        Self {
            setting: per_second.max(FLOOR),
            clock: DefaultClock::default(),
            hosts: Mutex::default(),
        }
    }

    /// `host`'s pace and limiter, and whether they were made just now.
    fn host(&self, host: &str) -> (Arc<Mutex<Host>>, bool) {
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(h) = hosts.get(host) {
            return (h.clone(), false);
        }
        let h = Arc::new(Mutex::new(Host {
            pace: Pace::new(self.setting, Instant::now()),
            limiter: Arc::new(RateLimiter::direct_with_clock(
                quota(self.setting),
                self.clock.clone(),
            )),
        }));
        hosts.insert(host.to_owned(), h.clone());
        (h, true)
    }

    /// Applies `change` to `host`'s pace at `now`; a changed pace gets a new limiter. A new or
    /// changed pace is told to `observer`. Returns the limiter in force.
    fn update(
        &self,
        host: &str,
        observer: &dyn CallObserver,
        change: impl FnOnce(&mut Pace, Instant) -> bool,
    ) -> Arc<Limiter<DefaultClock>> {
        let (entry, new) = self.host(host);
        let mut h = entry.lock().unwrap_or_else(PoisonError::into_inner);
        let changed = change(&mut h.pace, Instant::now());
        if changed {
            let rate = h.pace.per_second();
            h.limiter = Arc::new(rebuilt(&h.limiter, rate, &self.clock));
        }
        if changed || new {
            observer.paced(host, h.pace.per_second());
        }
        h.limiter.clone()
    }

    /// Returns when `host` may be sent the next request. A request that got its turn from a
    /// limiter replaced meanwhile (the pace changed) waits for a turn of the new one.
    pub async fn wait(&self, host: &str, observer: &dyn CallObserver) {
        let mut limiter = self.update(host, observer, Pace::tick);
        loop {
            limiter.until_ready().await;
            let now = self.update(host, observer, |_, _| false);
            if Arc::ptr_eq(&now, &limiter) {
                return;
            }
            limiter = now;
        }
    }

    /// `host` answered 429: its pace drops.
    pub fn throttled(&self, host: &str, observer: &dyn CallObserver) {
        self.update(host, observer, Pace::throttled);
    }

    /// `host`'s pace now, in requests per second.
    pub fn per_second(&self, host: &str) -> u32 {
        let (entry, _) = self.host(host);
        let h = entry.lock().unwrap_or_else(PoisonError::into_inner);
        h.pace.per_second()
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// Requests ask for turns at `t`, as many as the pace allows in a second (a busy spell if
    /// it lasted [`CLIMB_EVERY`]). Returns whether the pace changed.
    fn busy(pace: &mut Pace, t: Instant) -> bool {
        (0..pace.per_second()).any(|_| pace.tick(t))
    }

    #[test]
    fn a_429_halves_the_pace_once_per_settle_and_never_below_the_floor() {
        let t0 = Instant::now();
        let mut pace = Pace::new(10, t0);
        assert_eq!(pace.per_second(), 10);
        assert!(pace.throttled(t0));
        assert_eq!(pace.per_second(), 5);
        // The answers to requests sent at the old pace: no further drop.
        assert!(!pace.throttled(t0 + S / 2));
        assert_eq!(pace.per_second(), 5);
        for (after, rate) in [(1, 2), (2, 1), (3, 1), (4, 1)] {
            pace.throttled(t0 + S * after);
            assert_eq!(pace.per_second(), rate, "{after} s");
        }
        assert_eq!(Pace::new(0, t0).per_second(), FLOOR);
    }

    #[test]
    fn the_pace_climbs_slowly_below_the_refused_rate_then_to_the_setting() {
        let t0 = Instant::now();
        let mut pace = Pace::new(100, t0);
        assert!(!pace.tick(t0 + S / 2), "at the setting already");
        pace.throttled(t0 + S);
        assert_eq!(pace.per_second(), 50, "nothing known good: halved");
        assert!(
            !busy(&mut pace, t0 + S + CLIMB_EVERY - S / 10),
            "not before a quiet spell"
        );
        // One request per second a step, below the refused rate.
        let mut t = t0 + S;
        let mut seen = vec![];
        for _ in 0..25 {
            t += CLIMB_EVERY;
            busy(&mut pace, t);
            seen.push(pace.per_second());
        }
        assert_eq!(&seen[..3], [51, 52, 53]);
        assert_eq!(seen[24], 75);
        // Refused at 75 before it went a quiet spell: straight back to 74, which did.
        pace.throttled(t + S);
        assert_eq!(pace.per_second(), 74);
        t += S;
        for step in 1..10 {
            busy(&mut pace, t + CLIMB_EVERY * step);
        }
        assert_eq!(pace.per_second(), 74, "below the refused 75");
        // Long without a 429: the refused rate is probed again, up to the setting and no further.
        t += PROBE_AFTER;
        assert!(busy(&mut pace, t));
        assert_eq!(pace.per_second(), 81);
        for step in 1..10 {
            busy(&mut pace, t + CLIMB_EVERY * step);
        }
        assert_eq!(pace.per_second(), 100);
    }

    #[test]
    fn a_429_at_the_rate_known_good_tries_one_below_it_then_forgets_it() {
        let t0 = Instant::now();
        let mut pace = Pace::new(50, t0);
        // A quiet spell at the setting: 50 is known good.
        assert!(!busy(&mut pace, t0 + CLIMB_EVERY));
        // A 429 there (requests bunched at the edge of a window): one below it, not half.
        assert!(pace.throttled(t0 + CLIMB_EVERY * 2));
        assert_eq!(pace.per_second(), 49);
        // 49 holds a quiet spell: it is known good, and 50 (refused) is not tried for a while.
        assert!(!busy(&mut pace, t0 + CLIMB_EVERY * 3));
        assert!(pace.throttled(t0 + CLIMB_EVERY * 4));
        assert_eq!(pace.per_second(), 48, "49 was sure: one below again");
        // A 429 at 48 before it went a quiet spell: the program's limit fell, 48 is forgotten.
        assert!(pace.throttled(t0 + CLIMB_EVERY * 4 + SETTLE));
        assert_eq!(pace.per_second(), 24);
        assert!(busy(&mut pace, t0 + CLIMB_EVERY * 6));
        assert_eq!(pace.per_second(), 25, "slowly, not back to 48");
    }

    #[test]
    fn a_pause_or_an_idle_spell_proves_nothing_about_the_pace() {
        let t0 = Instant::now();
        let mut pace = Pace::new(100, t0);
        assert!(pace.throttled(t0));
        assert_eq!(pace.per_second(), 50);
        // A pause (a Retry-After of 3 s), then one request: no climb, and 50 is not known good.
        assert!(!pace.tick(t0 + S * 3));
        assert!(pace.throttled(t0 + S * 4));
        assert_eq!(pace.per_second(), 25, "halved, not one below 50");
        // Idle at the setting: not known good either.
        let mut idle = Pace::new(10, t0);
        for after in 1..10 {
            assert!(!idle.tick(t0 + S * after));
        }
        assert!(idle.throttled(t0 + S * 10));
        assert_eq!(idle.per_second(), 5);
        // At the floor, known good or not, a 429 leaves the pace at 1/s.
        let mut floor = Pace::new(1, t0);
        assert!(!busy(&mut floor, t0 + CLIMB_EVERY));
        assert!(!floor.throttled(t0 + CLIMB_EVERY * 2));
        assert_eq!(floor.per_second(), FLOOR);
        assert!(!floor.tick(t0 + CLIMB_EVERY * 4));
        assert_eq!(floor.per_second(), FLOOR);
    }

    #[test]
    fn with_no_refusal_remembered_the_pace_climbs_by_a_tenth() {
        let t0 = Instant::now();
        let mut pace = Pace::new(40, t0);
        pace.throttled(t0);
        pace.throttled(t0 + S * 2);
        pace.throttled(t0 + S * 4);
        assert_eq!(pace.per_second(), 5);
        let mut t = t0 + S * 4 + PROBE_AFTER;
        let mut seen = vec![];
        while busy(&mut pace, t) {
            seen.push(pace.per_second());
            assert!(!pace.tick(t + CLIMB_EVERY / 2), "one step per quiet spell");
            t += CLIMB_EVERY;
        }
        assert_eq!(
            seen,
            [
                6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 22, 24, 26, 28, 30, 33, 36,
                39, 40
            ]
        );
    }

    #[test]
    fn a_limiter_lets_one_request_through_per_period_without_a_burst() {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::direct_with_clock(quota(50), clock.clone());
        assert!(limiter.check().is_ok());
        assert!(limiter.check().is_err(), "no burst");
        clock.advance(Duration::from_millis(19));
        assert!(limiter.check().is_err());
        clock.advance(Duration::from_millis(1));
        assert!(limiter.check().is_ok());
        // Over one second (from a standing start): 50 requests, not one more.
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::direct_with_clock(quota(50), clock.clone());
        let mut passed = 0;
        for _ in 0..1000 {
            passed += usize::from(limiter.check().is_ok());
            clock.advance(Duration::from_millis(1));
        }
        assert_eq!(passed, 50);
    }

    #[test]
    fn a_rebuilt_limiter_keeps_a_turn_just_taken() {
        let clock = FakeRelativeClock::default();
        let old = RateLimiter::direct_with_clock(quota(10), clock.clone());
        assert!(old.check().is_ok());
        let new = rebuilt(&old, 20, &clock);
        assert!(new.check().is_err(), "the turn was just taken");
        clock.advance(Duration::from_millis(50));
        assert!(new.check().is_ok(), "one period of the new pace later");
        // An idle limiter's replacement lets the next request through at once.
        clock.advance(Duration::from_secs(1));
        let idle = rebuilt(&new, 5, &clock);
        assert!(idle.check().is_ok());
    }

    #[test]
    fn each_host_has_a_pace_of_its_own() {
        let pacer = Pacer::new(10);
        let observer = crate::clients::http::Unobserved;
        pacer.throttled("a.example:443", &observer);
        assert_eq!(pacer.per_second("a.example:443"), 5);
        assert_eq!(pacer.per_second("b.example:443"), 10);
        assert_eq!(pacer.per_second("a.example:8443"), 10);
    }
}
