//! Wake-ups finer than tokio's timer: the fault proxy's held chunks, the load engine's
//! open-model starts.
//!
//! tokio's timer counts whole milliseconds and rounds every deadline up to the next one: a
//! chunk held for 0.5 ms would come out after 0.5 to 1.5 ms, a link of 0.5 ms each way would
//! measure as about 1 ms, and a start scheduled at 10.2 ms would begin at 11 or 12. A [`Pacer`]
//! is one thread that sleeps on a condition variable until the earliest deadline it was given
//! (the kernel's high-resolution timer: late by its timer slack, 50 µs by default, and the
//! time to wake a thread) and then completes that deadline's channel, which wakes the task
//! waiting on it. A deadline is never completed before it is due.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::oneshot;

/// One thread that completes channels at their deadlines. Dropping it stops the thread.
pub(crate) struct Pacer {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    changed: Condvar,
}

#[derive(Default)]
struct Queue {
    due: BinaryHeap<Due>,
    /// Orders deadlines that are equal: first given, first completed.
    next: u64,
    stopped: bool,
}

struct Due {
    at: Instant,
    order: u64,
    wake: oneshot::Sender<Instant>,
}

impl Ord for Due {
    /// The earliest deadline is the greatest: `BinaryHeap` is a max-heap.
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at).then_with(|| other.order.cmp(&self.order))
    }
}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Due {}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing a panic could leave half-done lives in the queue.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Pacer {
    /// Starts the thread, named `name` (shown by `top -H`, `perf`).
    pub fn start(name: &'static str) -> std::io::Result<Pacer> {
        let shared = Arc::new(Shared::default());
        let thread = shared.clone();
        std::thread::Builder::new().name(name.into()).spawn(move || run(&thread))?;
        Ok(Pacer { shared })
    }

    /// A channel completed at `at` (at once when it is past) with the instant it was completed.
    /// Dropping the receiver before then is fine: the completion is thrown away.
    pub fn at(&self, at: Instant) -> oneshot::Receiver<Instant> {
        let (wake, done) = oneshot::channel();
        let mut q = self.shared.lock();
        let earliest = q.due.peek().map(|d| d.at);
        let order = q.next;
        q.next += 1;
        q.due.push(Due { at, order, wake });
        if earliest.is_none_or(|e| at < e) {
            self.shared.changed.notify_one();
        }
        done
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.shared.lock().stopped = true;
        self.shared.changed.notify_one();
    }
}

/// The thread: completes what is due, then sleeps until the earliest deadline or a new one.
fn run(shared: &Shared) {
    let mut q = shared.lock();
    loop {
        if q.stopped {
            return;
        }
        let now = Instant::now();
        while q.due.peek().is_some_and(|d| d.at <= now) {
            let due = q.due.pop().expect("peeked");
            let _ = due.wake.send(Instant::now());
        }
        q = match q.due.peek().map(|d| d.at) {
            None => shared.changed.wait(q).unwrap_or_else(PoisonError::into_inner),
            Some(at) => shared.changed.wait_timeout(q, at.saturating_duration_since(now)).unwrap_or_else(PoisonError::into_inner).0,
        };
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The threads of this process named `name` (Linux: `/proc/self/task/*/comm`).
    fn threads_named(name: &str) -> usize {
        let tasks = std::fs::read_dir("/proc/self/task").expect("Linux");
        tasks.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok()).filter(|c| c.trim_end() == name).count()
    }

    #[tokio::test]
    async fn deadlines_complete_never_early_and_dropping_ends_the_thread() {
        let pacer = Pacer::start("pacer-test").unwrap();
        let t0 = Instant::now();
        // Given out of order, one already past.
        let waits = [4_000u64, 1_500, 0, 2_500].map(|us| {
            let done = pacer.at(t0 + Duration::from_micros(us));
            async move {
                let completed = done.await.unwrap();
                assert!(Instant::now() >= completed);
                (completed, us)
            }
        });
        for (at, us) in futures::future::join_all(waits).await {
            assert!(at >= t0 + Duration::from_micros(us), "{us} µs completed early");
        }

        assert_eq!(threads_named("pacer-test"), 1);
        drop(pacer);
        let deadline = Instant::now() + Duration::from_secs(5);
        while threads_named("pacer-test") > 0 {
            assert!(Instant::now() < deadline, "the pacer's thread still runs");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
