//! Wakes an open-model start at its scheduled instant, to the tens of microseconds.
//!
//! tokio's timer counts whole milliseconds: it rounds a deadline up to the next tick and parks
//! its driver for whole milliseconds, so a start awaited with `sleep_until` begins 0–2 ms after
//! its schedule (1.6 ms on average measured on this project's machine). An open model measures
//! latency from the schedule (so that the server's queueing is in it), which put that lateness
//! into every request's latency: on a 0.4 ms endpoint, 2.0 ms of latency, and a +30% change of
//! the server's time showed as +6%.
//!
//! A [`Pacer`] is a thread of its own that sleeps to each deadline with the operating system's
//! precise timer (`std::thread::sleep`: `nanosleep`, within the kernel's ~50 µs timer slack)
//! and then wakes the waiting start, a little early: the start spins the last microseconds (see
//! [`FIRST_LEAD`]). It sleeps on tokio's timer until a few milliseconds before, so the thread
//! only ever waits those last milliseconds, and one start at a time.
//! A start is never woken before its deadline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::{Instant, sleep_until};

/// How long before a deadline the coarse wait on tokio's timer ends: more than its rounding.
const COARSE_MARGIN: Duration = Duration::from_millis(3);
/// The wake from the thread reaches the start some time after it is sent (another thread's
/// wake-up: tens to hundreds of microseconds on a virtual machine), so the thread sends it that
/// much early and the start spins the rest. The lead is twice the mean delay seen so far
/// (moving average, within these bounds), so the spin stays short.
const FIRST_LEAD: Duration = Duration::from_micros(200);
const LEAD_BOUNDS: (Duration, Duration) = (Duration::from_micros(10), Duration::from_millis(1));

struct Wake {
    /// When to send the wake: the deadline less the lead.
    at: std::time::Instant,
    /// Gets the instant the wake was sent.
    woken: oneshot::Sender<std::time::Instant>,
}

/// One open-model scenario's precise timer. Dropping it ends its thread (within
/// [`COARSE_MARGIN`]).
pub(crate) struct Pacer {
    /// `None` when the thread could not be started: tokio's timer alone then.
    wakes: Option<mpsc::Sender<Wake>>,
    /// The moving average of the wake's delay, nanoseconds.
    delay_ns: AtomicU64,
}

impl Pacer {
    pub(crate) fn new(name: &str) -> Pacer {
        let (tx, rx) = mpsc::channel::<Wake>();
        // A plan's scenario name may hold any character; a thread's name may not hold NUL.
        let thread = std::thread::Builder::new().name(format!("pacer {}", name.replace('\0', ""))).spawn(move || {
            while let Ok(wake) = rx.recv() {
                let left = wake.at.saturating_duration_since(std::time::Instant::now());
                if !left.is_zero() {
                    std::thread::sleep(left);
                }
                let _ = wake.woken.send(std::time::Instant::now());
            }
        });
        Pacer { wakes: thread.is_ok().then_some(tx), delay_ns: AtomicU64::new(FIRST_LEAD.as_nanos() as u64 / 2) }
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
        let Some(wakes) = &self.wakes else { return sleep_until(at).await };
        let (woken, wait) = oneshot::channel();
        let send_at = at.into_std().checked_sub(self.lead()).unwrap_or(at.into_std());
        if wakes.send(Wake { at: send_at, woken }).is_err() {
            return sleep_until(at).await;
        }
        let Ok(sent) = wait.await else { return sleep_until(at).await };
        self.saw_delay(std::time::Instant::now().saturating_duration_since(sent));
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
    async fn a_start_is_never_woken_before_its_deadline() {
        let pacer = Pacer::new("test");
        let t0 = Instant::now();
        // Deadlines inside the coarse margin, beyond it, and already past.
        for offset_us in [0u64, 150, 900, 2_500, 3_100, 7_000, 12_345] {
            let at = t0 + Duration::from_micros(offset_us);
            pacer.until(at).await;
            assert!(Instant::now() >= at, "woken before {offset_us} µs");
        }
    }

    /// The threads of this process named `name` (Linux: `/proc/self/task/*/comm`).
    fn threads_named(name: &str) -> usize {
        let tasks = std::fs::read_dir("/proc/self/task").expect("Linux");
        tasks.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok()).filter(|c| c.trim_end() == name).count()
    }

    #[tokio::test]
    async fn a_dropped_pacer_ends_its_thread_and_a_wait_falls_back_to_tokios_timer() {
        let pacer = Pacer::new("dropcheck");
        pacer.until(Instant::now() + Duration::from_millis(1)).await;
        assert_eq!(threads_named("pacer dropcheck"), 1);
        drop(pacer);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while threads_named("pacer dropcheck") > 0 {
            assert!(std::time::Instant::now() < deadline, "the pacer's thread still runs");
            std::thread::sleep(Duration::from_millis(10));
        }
        // A scenario name with a NUL in it (a quoted TOML key may hold one) still gets a thread.
        assert!(Pacer::new("odd\0name").wakes.is_some());
        let no_thread = Pacer { wakes: None, delay_ns: AtomicU64::new(0) };
        let at = Instant::now() + Duration::from_millis(2);
        no_thread.until(at).await;
        assert!(Instant::now() >= at);
    }
}
