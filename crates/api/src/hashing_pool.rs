//! The hashing pool: a bounded pool of threads for the password hashing (Argon2id) of logins
//! and user creation. As many threads as cores, a queue of fixed length, and an immediate
//! refusal when the queue is full, so that a storm of logins cannot pile up and starve
//! everything else. The queue is a bounded `crossbeam-channel`, the one queue mechanism of the
//! code base.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Why work did not come back from the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HashingPoolError {
    /// The queue is full: answer 503 and let the client retry.
    #[error("the hashing queue is full")]
    Busy,
    /// The work panicked (a bug); the worker survives it.
    #[error("work on the hashing pool panicked")]
    Panicked,
}

#[derive(Debug, Default)]
struct Counters {
    running: AtomicUsize,
    rejected: AtomicUsize,
}

/// The bounded pool. Cloning shares it; when the last clone is gone, the workers finish what
/// is queued and stop.
#[derive(Clone)]
pub struct HashingPool {
    jobs: Sender<Job>,
    counters: Arc<Counters>,
    workers: usize,
    capacity: usize,
}

impl std::fmt::Debug for HashingPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashingPool").field("stats", &self.stats()).finish()
    }
}

/// What the pool is doing right now (for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingPoolStats {
    pub workers: usize,
    pub capacity: usize,
    pub queued: usize,
    pub running: usize,
    pub rejected: usize,
}

impl HashingPool {
    /// `workers` threads and room for `queue` jobs waiting beyond those the idle workers take
    /// at once (0: only as many as there are idle workers are taken): the channel holds `queue`
    /// jobs, and a worker waiting on it takes a job as it comes.
    ///
    /// `priority` lowers the workers' scheduling priority: when the cores are contended, the
    /// threads answering requests run first, and the pool still gets every idle cycle.
    ///
    /// A worker calls `on_idle` when it finds the queue empty after a job (and once at start),
    /// before it waits: the place to free what the work keeps from one job to the next. Between
    /// queued jobs it is not called.
    pub fn new(workers: usize, queue: usize, priority: PoolPriority, on_idle: fn()) -> Self {
        let (jobs, receiver) = crossbeam_channel::bounded::<Job>(queue);
        let counters = Arc::new(Counters::default());
        let workers = workers.max(1);
        for i in 0..workers {
            let (receiver, counters) = (receiver.clone(), Arc::clone(&counters));
            thread::Builder::new()
                .name(format!("hashing-{i}"))
                .spawn(move || {
                    lower_priority(priority);
                    work(&receiver, &counters, on_idle);
                })
                .expect("spawning a hashing thread");
        }
        Self { jobs, counters, workers, capacity: queue }
    }

    /// Runs `work` on the pool and waits for it without blocking the caller's thread, or
    /// refuses at once when the queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashingPoolError> {
        let (tx, rx) = oneshot::channel();
        let span = tracing::info_span!("hashing_work");
        let job: Job = Box::new(move || {
            let result = span.in_scope(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)));
            // The span ends before the answer goes: the request it belongs to (and its trace)
            // can then end as soon as it is answered, not when this thread gets to it.
            drop(span);
            let _ = tx.send(result);
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(HashingPoolError::Busy);
            }
        }
        match rx.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) | Err(_) => Err(HashingPoolError::Panicked),
        }
    }

    pub fn stats(&self) -> HashingPoolStats {
        HashingPoolStats {
            workers: self.workers,
            capacity: self.capacity,
            queued: self.jobs.len(),
            running: self.counters.running.load(Ordering::Relaxed),
            rejected: self.counters.rejected.load(Ordering::Relaxed),
        }
    }
}

/// A worker: takes jobs until every sender is gone and the queue is empty; calls `on_idle` once
/// each time it finds the queue empty, then waits. Each worker looks at the queue itself, so
/// each one frees its memory when the queue runs dry.
fn work(jobs: &Receiver<Job>, counters: &Counters, on_idle: fn()) {
    loop {
        let job = match jobs.try_recv() {
            Ok(job) => job,
            Err(TryRecvError::Disconnected) => return,
            Err(TryRecvError::Empty) => {
                on_idle();
                match jobs.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                }
            }
        };
        counters.running.fetch_add(1, Ordering::Relaxed);
        job();
        counters.running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How the pool's threads are scheduled against the threads that answer requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolPriority {
    /// Like every other thread.
    Normal,
    /// Nice 10: about a tenth of a normal thread's share when both want the CPU.
    Low,
    /// SCHED_IDLE: runs only when no normal thread wants the CPU, and yields at once when one
    /// wakes up; gets every idle cycle.
    Idle,
}

/// Applies the priority to the calling thread (Linux: scheduling is per thread).
#[allow(unsafe_code)]
fn lower_priority(priority: PoolPriority) {
    let result = match priority {
        PoolPriority::Normal => 0,
        PoolPriority::Low => {
            let tid = nix::unistd::gettid().as_raw();
            // SAFETY: setpriority only reads its three integer arguments; `tid` names this very
            // thread, and a failure is reported through the return value, which is checked.
            unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, tid as nix::libc::id_t, 10) }
        }
        PoolPriority::Idle => {
            let param = nix::libc::sched_param { sched_priority: 0 };
            // SAFETY: pid 0 is the calling thread; `param` is a valid, initialised struct that
            // outlives the call, which only reads it; the result is checked.
            unsafe { nix::libc::sched_setscheduler(0, nix::libc::SCHED_IDLE, &param) }
        }
    };
    if result != 0 {
        tracing::warn!(?priority, "could not lower the priority of a pool thread");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;

    use super::*;

    #[tokio::test]
    async fn refuses_when_full_and_runs_otherwise() {
        let pool = HashingPool::new(1, 1, PoolPriority::Normal, || {});
        let gate = Arc::new(Barrier::new(2));
        let g = Arc::clone(&gate);
        let running = {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(move || {
                    g.wait();
                    1
                })
                .await
            })
        };
        // Wait until the worker holds the first job.
        while pool.stats().running == 0 {
            tokio::task::yield_now().await;
        }
        let queued = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|| 2).await })
        };
        while pool.stats().queued == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.run(|| 3).await, Err(HashingPoolError::Busy));
        assert_eq!(pool.stats().rejected, 1);
        gate.wait();
        assert_eq!(running.await.unwrap(), Ok(1));
        assert_eq!(queued.await.unwrap(), Ok(2));
        assert_eq!(pool.run(|| 4).await, Ok(4));
    }

    static IDLE_CALLS: AtomicUsize = AtomicUsize::new(0);

    #[tokio::test]
    async fn idle_is_called_when_the_queue_is_empty_not_between_queued_jobs() {
        let pool = HashingPool::new(1, 4, PoolPriority::Normal, || {
            IDLE_CALLS.fetch_add(1, Ordering::SeqCst);
        });
        // The worker starts with an empty queue.
        while IDLE_CALLS.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let gate = Arc::new(Barrier::new(2));
        let g = Arc::clone(&gate);
        let first = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(move || g.wait()).await }
        });
        while pool.stats().running == 0 {
            tokio::task::yield_now().await;
        }
        // Three more wait behind the first: the worker goes from one to the next without idling.
        let queued: Vec<_> = (0..3)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.run(|| IDLE_CALLS.load(Ordering::SeqCst)).await })
            })
            .collect();
        while pool.stats().queued < 3 {
            tokio::task::yield_now().await;
        }
        gate.wait();
        first.await.unwrap().unwrap();
        for job in queued {
            assert_eq!(job.await.unwrap(), Ok(1), "idle was called between queued jobs");
        }
        // Then the queue is empty again.
        while IDLE_CALLS.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
    }

    static IDLE_CALLS_2: AtomicUsize = AtomicUsize::new(0);

    /// Every worker frees its memory when the queue runs dry, not only the one that happens to
    /// look first (with a shared receiver behind a mutex, the second worker waited for the lock
    /// held by the first, blocked in `recv`, and kept its memory until the next job).
    #[tokio::test]
    async fn every_worker_idles_when_the_queue_runs_dry() {
        let pool = HashingPool::new(2, 4, PoolPriority::Normal, || {
            IDLE_CALLS_2.fetch_add(1, Ordering::SeqCst);
        });
        let wait_for = |calls: usize| async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while IDLE_CALLS_2.load(Ordering::SeqCst) < calls {
                assert!(
                    std::time::Instant::now() < deadline,
                    "only {} idle calls",
                    IDLE_CALLS_2.load(Ordering::SeqCst)
                );
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        };
        wait_for(2).await;
        for _ in 0..3 {
            let before = IDLE_CALLS_2.load(Ordering::SeqCst);
            // Both workers busy at once, then the queue is empty.
            let gate = Arc::new(Barrier::new(2));
            let jobs: Vec<_> = (0..2)
                .map(|_| {
                    let (pool, gate) = (pool.clone(), Arc::clone(&gate));
                    tokio::spawn(async move { pool.run(move || gate.wait()).await })
                })
                .collect();
            for job in jobs {
                job.await.unwrap().unwrap();
            }
            wait_for(before + 2).await;
        }
    }

    #[tokio::test]
    async fn dropping_the_last_handle_stops_the_workers_after_their_queue() {
        let pool = HashingPool::new(1, 2, PoolPriority::Normal, || {});
        assert_eq!(pool.run(|| 7).await, Ok(7));
        let weak = Arc::downgrade(&pool.counters);
        drop(pool);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while weak.strong_count() > 0 {
            assert!(std::time::Instant::now() < deadline, "the worker did not stop");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// The nice value (19th field) and the scheduling policy (41st) of the calling thread.
    fn scheduling() -> (i32, u32) {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // The fields after the command name (which ends with ')') start with the 3rd.
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        (fields[16].parse().unwrap(), fields[38].parse().unwrap())
    }

    #[tokio::test]
    async fn workers_run_at_the_lower_priority() {
        let low = HashingPool::new(1, 1, PoolPriority::Low, || {}).run(scheduling).await.unwrap();
        assert_eq!(low, (10, 0));
        let idle = HashingPool::new(1, 1, PoolPriority::Idle, || {}).run(scheduling).await.unwrap();
        assert_eq!(idle.1, 5, "SCHED_IDLE is policy 5");
    }
}
