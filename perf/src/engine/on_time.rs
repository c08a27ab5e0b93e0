//! Starts an open-model iteration at its scheduled instant, to the tens of microseconds.
//!
//! An open model measures latency from the schedule (so that the server's queueing is in it).
//! Waited for on tokio's timer alone, which counts whole milliseconds, each start began 0–2 ms
//! after its schedule (1.05 ms at p50 on this project's machine), and that lateness was in
//! every request's latency: on a 0.4 ms endpoint, 1.5 ms of latency, and a +30% change of the
//! server's time showed as +8%.
//!
//! [`OnTime::until`] sleeps on tokio's timer until a few milliseconds before the start, then
//! has a [`Pacer`] thread (the kernel's precise timer) wake it a little early, by the delay
//! such a wake has been seen to take (another thread's wake-up reaching a task: tens to
//! hundreds of microseconds on a virtual machine), and spins the rest. A start never begins
//! before its schedule.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::{Instant, sleep_until};

use crate::util::pacer::Pacer;

/// How long before a start the coarse wait on tokio's timer ends: more than its rounding.
const COARSE_MARGIN: Duration = Duration::from_millis(3);
/// The wake's lead is twice the moving average of its delay, within these bounds; before any
/// wake was seen, this average.
const FIRST_DELAY: Duration = Duration::from_micros(100);
const LEAD_BOUNDS: (Duration, Duration) = (Duration::from_micros(10), Duration::from_micros(500));

/// One open-model scenario's starts.
pub(crate) struct OnTime {
    /// `None` when its thread could not be started: tokio's timer alone then.
    pacer: Option<Pacer>,
    /// The moving average of the wake's delay, nanoseconds.
    delay_ns: AtomicU64,
}

impl OnTime {
    pub(crate) fn new() -> OnTime {
        OnTime { pacer: Pacer::start("perf-starts").ok(), delay_ns: AtomicU64::new(FIRST_DELAY.as_nanos() as u64) }
    }

    /// Returns at `at` or just after it, never before.
    pub(crate) async fn until(&self, at: Instant) {
        if let Some(early) = at.checked_sub(COARSE_MARGIN)
            && early > Instant::now()
        {
            sleep_until(early).await;
        }
        if Instant::now() >= at {
            return;
        }
        let Some(pacer) = &self.pacer else { return sleep_until(at).await };
        let wake_at = at.into_std().checked_sub(self.lead()).unwrap_or(at.into_std());
        let Ok(woken) = pacer.at(wake_at).await else { return sleep_until(at).await };
        // From the thread's wake to this task running: what the lead is for. (Not from
        // `wake_at`: the thread's own lateness on a busy machine would grow the lead, the spin
        // would keep the machine busier, and so on.)
        self.saw_delay(std::time::Instant::now().saturating_duration_since(woken));
        while Instant::now() < at {
            std::hint::spin_loop();
        }
    }

    fn lead(&self) -> Duration {
        let lead = Duration::from_nanos(self.delay_ns.load(Ordering::Relaxed)) * 2;
        lead.clamp(LEAD_BOUNDS.0, LEAD_BOUNDS.1)
    }

    /// Moves the average delay an eighth of the way to `delay`.
    fn saw_delay(&self, delay: Duration) {
        let old = self.delay_ns.load(Ordering::Relaxed) as i128;
        let new = old + (delay.as_nanos().min(u64::MAX as u128) as i128 - old) / 8;
        self.delay_ns.store(new.max(0) as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_start_never_begins_before_its_schedule() {
        let on_time = OnTime::new();
        assert!(on_time.pacer.is_some());
        let t0 = Instant::now();
        // Starts inside the coarse margin, beyond it, and already past.
        for offset_us in [0u64, 150, 900, 2_500, 3_100, 7_000, 12_345] {
            let at = t0 + Duration::from_micros(offset_us);
            on_time.until(at).await;
            assert!(Instant::now() >= at, "began before {offset_us} µs");
        }
        // Without its thread, tokio's timer: late, never early.
        let alone = OnTime { pacer: None, delay_ns: AtomicU64::new(0) };
        let at = Instant::now() + Duration::from_millis(2);
        alone.until(at).await;
        assert!(Instant::now() >= at);
    }

    #[test]
    fn the_lead_follows_the_delays_seen_within_its_bounds() {
        let on_time = OnTime { pacer: None, delay_ns: AtomicU64::new(FIRST_DELAY.as_nanos() as u64) };
        assert_eq!(on_time.lead(), FIRST_DELAY * 2);
        for _ in 0..200 {
            on_time.saw_delay(Duration::from_micros(40));
        }
        let lead = on_time.lead();
        assert!(lead > Duration::from_micros(79) && lead < Duration::from_micros(82), "{lead:?}");
        for _ in 0..200 {
            on_time.saw_delay(Duration::from_secs(1));
        }
        assert_eq!(on_time.lead(), LEAD_BOUNDS.1, "a stalled machine does not make starts spin for long");
    }
}
