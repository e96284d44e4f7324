//! When a failed job runs again (svix's schedule, DESIGN §4.4): the configured schedule with ±20 %
//! jitter; throttling without a `Retry-After`, and timeouts, wait at least the floor; a
//! `Retry-After` is the upstream's word and is honoured as said (RFC 9110), never sooner than
//! scheduled and never longer than the schedule's longest wait; permanent failures and an
//! exhausted schedule go to the dead letters.

use std::time::Duration;

use rand::Rng;

use super::JobError;

#[derive(Debug, Clone)]
pub struct Schedule {
    pub delays: Vec<Duration>,
    pub overload_floor: Duration,
}

impl Schedule {
    fn longest(&self) -> Duration {
        self.delays.iter().copied().max().unwrap_or_default()
    }

    /// The wait after failed attempt number `attempt` (1-based), or None: give up.
    pub fn next_delay(
        &self,
        attempt: u32,
        error: &JobError,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        let (overloaded, retry_after) = match error {
            JobError::Transient { overloaded, .. } => (*overloaded, None),
            JobError::Throttled { retry_after, .. } => (true, *retry_after),
            JobError::Permanent { .. } | JobError::Bug(_) | JobError::Cancelled(_) => return None,
        };
        let base = *self
            .delays
            .get(usize::try_from(attempt).ok()?.checked_sub(1)?)?;
        Some(match retry_after {
            // Honoured: never sooner than asked, nor than scheduled; capped at the schedule's
            // longest wait so a hostile header cannot park a job for days.
            Some(after) => after.clamp(base, self.longest().max(base)),
            // No word from the upstream: the schedule, and room for an overloaded one.
            None if overloaded => base
                .mul_f64(rng.random_range(0.8..=1.2))
                .max(self.overload_floor),
            None => base.mul_f64(rng.random_range(0.8..=1.2)),
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            delays: [5, 300, 1800].map(Duration::from_secs).to_vec(),
            overload_floor: Duration::from_secs(60),
        }
    }

    fn transient(overloaded: bool, retry_after: Option<u64>) -> JobError {
        match retry_after {
            Some(secs) => JobError::Throttled {
                retry_after: Some(Duration::from_secs(secs)),
                detail: String::new(),
            },
            None => JobError::Transient {
                status: Some(503),
                overloaded,
                detail: String::new(),
            },
        }
    }

    #[test]
    fn follows_the_schedule_with_jitter_then_gives_up() {
        let mut rng = StdRng::seed_from_u64(1);
        for (attempt, base) in [(1, 5.0), (2, 300.0), (3, 1800.0)] {
            let d = schedule()
                .next_delay(attempt, &transient(false, None), &mut rng)
                .unwrap()
                .as_secs_f64();
            assert!(d >= base * 0.8 && d <= base * 1.2, "{attempt}: {d}");
        }
        assert_eq!(
            schedule().next_delay(4, &transient(false, None), &mut rng),
            None
        );
    }

    #[test]
    fn throttling_without_a_retry_after_waits_the_floor_and_retry_after_is_clamped() {
        let mut rng = StdRng::seed_from_u64(1);
        let s = schedule();
        // The longest `Retry-After` a header can say (a delta beyond u64, a date in year 9999).
        let endless = JobError::Throttled {
            retry_after: Some(Duration::MAX),
            detail: String::new(),
        };
        for (attempt, error, waited) in [
            (1, transient(true, None), 60),
            (2, transient(false, Some(450)), 450),
            (2, transient(false, Some(900)), 900),
            // Capped at the schedule's longest wait.
            (2, transient(false, Some(99_999)), 1800),
            (2, transient(false, Some(1)), 300),
            (1, endless, 1800),
            // Said, and sooner than the floor: honoured, but never sooner than scheduled (5 s).
            (1, transient(true, Some(2)), 5),
            (1, transient(true, Some(7)), 7),
        ] {
            assert_eq!(
                s.next_delay(attempt, &error, &mut rng),
                Some(Duration::from_secs(waited)),
                "attempt {attempt} after {error:?}"
            );
        }
    }

    #[test]
    fn permanent_failures_are_not_retried() {
        let permanent = JobError::Permanent {
            status: Some(400),
            detail: "bad".into(),
        };
        assert_eq!(
            schedule().next_delay(1, &permanent, &mut StdRng::seed_from_u64(1)),
            None
        );
    }
}
