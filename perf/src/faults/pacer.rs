//! Wake-ups finer than tokio's timer, for the proxy's held chunks.
//!
//! tokio's timer counts whole milliseconds and rounds every deadline up to the next one: a
//! chunk held for 0.5 ms would come out after 0.5 to 1.5 ms, a link of 0.5 ms each way would
//! measure as about 1 ms. A [`Pacer`] is one thread that sleeps on a condition variable until
//! the earliest deadline it was given (the kernel's high-resolution timer: late by its timer
//! slack, 50 µs by default, and the time to wake a thread) and then completes that deadline's
//! channel, which wakes the task waiting on it.

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
    wake: oneshot::Sender<()>,
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
    pub fn start() -> std::io::Result<Pacer> {
        let shared = Arc::new(Shared::default());
        let thread = shared.clone();
        std::thread::Builder::new().name("perf-proxy-pacer".into()).spawn(move || run(&thread))?;
        Ok(Pacer { shared })
    }

    /// A channel completed at `at` (at once when it is past). Dropping the receiver before
    /// then is fine: the completion is thrown away.
    pub fn at(&self, at: Instant) -> oneshot::Receiver<()> {
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
            let _ = due.wake.send(());
        }
        q = match q.due.peek().map(|d| d.at) {
            None => shared.changed.wait(q).unwrap_or_else(PoisonError::into_inner),
            Some(at) => shared.changed.wait_timeout(q, at.saturating_duration_since(now)).unwrap_or_else(PoisonError::into_inner).0,
        };
    }
}
