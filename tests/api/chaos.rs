//! Seeded upstream faults for the doubles: a share of calls fail the way real upstreams do (5xx,
//! 429 with `Retry-After` in seconds or as an HTTP-date, a timeout), and writes may take effect
//! while their answer is lost. Every fault is counted by kind, so a scenario can check that each
//! one shows in the app's attempts log.
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::json;
use wiremock::ResponseTemplate;

/// The app's request timeout in the scenarios (`APP__*__REQUEST_TIMEOUT_SECS`); a "timeout" fault
/// answers later than that.
pub const TIMEOUT_SECS: u64 = 1;

pub struct ChaosState {
    rng: StdRng,
    /// Share of calls that fail, 0.0 to 1.0.
    pub fail_share: f64,
    /// Each answer is delayed by up to this many ms (kills then land mid-call).
    pub max_delay_ms: u64,
    /// Faults injected, by kind.
    pub injected: BTreeMap<&'static str, usize>,
}

/// Shared between a double and the scenario that reads its counts.
#[derive(Clone)]
pub struct Chaos(pub Arc<Mutex<ChaosState>>);

/// What a call gets: a fault or the normal answer, after a delay.
pub struct Draw {
    /// The fault's answer; `None`: the normal answer.
    pub fault: Option<ResponseTemplate>,
    /// A write takes effect although `fault` is what the caller sees.
    pub effect_anyway: bool,
    pub delay: Duration,
}

impl Chaos {
    pub fn new(seed: u64, fail_share: f64, max_delay_ms: u64) -> Self {
        Self(Arc::new(Mutex::new(ChaosState {
            rng: StdRng::seed_from_u64(seed),
            fail_share,
            max_delay_ms,
            injected: BTreeMap::new(),
        })))
    }

    /// Faults injected in all.
    pub fn total(&self) -> usize {
        self.0.lock().unwrap().injected.values().sum()
    }

    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        self.0.lock().unwrap().injected.clone()
    }

    /// Draws the fate of one call; `write`: a call with an effect (a create or an update).
    pub fn draw(&self, write: bool) -> Draw {
        let mut guard = self.0.lock().unwrap();
        let s = &mut *guard;
        let delay = Duration::from_millis(s.rng.random_range(0..=s.max_delay_ms));
        if !s.rng.random_bool(s.fail_share) {
            return Draw {
                fault: None,
                effect_anyway: false,
                delay,
            };
        }
        let kinds: &[&'static str] = if write {
            &[
                "500",
                "502",
                "503",
                "429 seconds",
                "429 date",
                "timeout",
                "lost 500",
                "lost timeout",
            ]
        } else {
            &["500", "502", "503", "429 seconds", "429 date", "timeout"]
        };
        let kind = kinds[s.rng.random_range(0..kinds.len())];
        *s.injected.entry(kind).or_default() += 1;
        let late = Duration::from_millis(TIMEOUT_SECS * 1000 + 500);
        let error = |status: u16| {
            ResponseTemplate::new(status)
                .set_body_json(json!({"error": "injected", "code": status}))
        };
        let (fault, effect_anyway, delay) = match kind {
            "500" | "lost 500" => (error(500), kind == "lost 500", delay),
            "502" => (error(502), false, delay),
            "503" => (error(503), false, delay),
            "429 seconds" => (error(429).insert_header("retry-after", "1"), false, delay),
            "429 date" => {
                let at = SystemTime::now() + Duration::from_secs(2);
                let date = httpdate::fmt_http_date(at);
                (
                    error(429).insert_header("retry-after", date.as_str()),
                    false,
                    delay,
                )
            }
            _ => (error(504), kind == "lost timeout", late),
        };
        Draw {
            fault: Some(fault),
            effect_anyway,
            delay,
        }
    }
}
