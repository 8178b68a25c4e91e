//! A bounded pool of threads for CPU-heavy work (Argon2id): as many threads as cores, a queue of
//! fixed length, and an immediate refusal when the queue is full, so that a storm of logins
//! cannot pile up and starve everything else.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Why work did not come back from the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CpuPoolError {
    /// The queue is full: answer 503 and let the client retry.
    #[error("the queue of the {0} pool is full")]
    Busy(&'static str),
    /// The work panicked (a bug); the worker survives it.
    #[error("work on the {0} pool panicked")]
    Panicked(&'static str),
}

#[derive(Debug, Default)]
struct Counters {
    queued: AtomicUsize,
    running: AtomicUsize,
    rejected: AtomicUsize,
}

/// What the workers and the submitters share. Workers wait on the condition variable, which
/// releases the lock, so a waiting worker never keeps another from finding the queue empty.
#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    work: Condvar,
    counters: Counters,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Every `CpuPool` handle is gone: the workers finish what is queued and stop.
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Jobs run outside the lock, so nothing can poison it halfway through a change.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Closes the queue when the last `CpuPool` clone is dropped.
struct Closer(Arc<Shared>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.work.notify_all();
    }
}

/// The bounded pool. Cloning shares it.
#[derive(Clone)]
pub struct CpuPool {
    name: &'static str,
    shared: Arc<Shared>,
    _closer: Arc<Closer>,
    workers: usize,
    capacity: usize,
}

impl std::fmt::Debug for CpuPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuPool").field("name", &self.name).field("stats", &self.stats()).finish()
    }
}

/// What the pool is doing right now (for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuPoolStats {
    pub workers: usize,
    pub capacity: usize,
    pub queued: usize,
    pub running: usize,
    pub rejected: usize,
}

impl CpuPool {
    /// `workers` threads and room for `queue` jobs waiting beyond those the idle workers take
    /// at once (0: only as many as there are idle workers are taken).
    ///
    /// `priority` lowers the workers' scheduling priority: when the cores are contended, the
    /// threads answering requests run first, and the pool still gets every idle cycle.
    ///
    /// A worker calls `on_idle` when it finds the queue empty after a job (and once at start),
    /// before it waits: the place to free what the work keeps from one job to the next. Between
    /// queued jobs it is not called.
    pub fn new(name: &'static str, workers: usize, queue: usize, priority: PoolPriority, on_idle: fn()) -> Self {
        let shared = Arc::new(Shared::default());
        let workers = workers.max(1);
        for i in 0..workers {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    lower_priority(priority);
                    work(&shared, on_idle);
                })
                .expect("spawning a hashing thread");
        }
        let closer = Arc::new(Closer(Arc::clone(&shared)));
        Self { name, shared, _closer: closer, workers, capacity: queue }
    }

    /// Runs `work` on the pool and waits for it without blocking the caller's thread, or
    /// refuses at once when the queue is full.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, CpuPoolError> {
        let (tx, rx) = oneshot::channel();
        let name = self.name;
        let span = tracing::info_span!("cpu_pool_work", pool = name);
        let job: Job = Box::new(move || {
            let _entered = span.enter();
            let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)));
        });
        let counters = &self.shared.counters;
        {
            let mut queue = self.shared.lock();
            // A worker counts as running from the moment it takes a job (under this lock).
            let idle = self.workers.saturating_sub(counters.running.load(Ordering::Relaxed));
            if queue.jobs.len() >= self.capacity + idle {
                counters.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(CpuPoolError::Busy(self.name));
            }
            queue.jobs.push_back(job);
            counters.queued.fetch_add(1, Ordering::Relaxed);
        }
        self.shared.work.notify_one();
        match rx.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) | Err(_) => Err(CpuPoolError::Panicked(self.name)),
        }
    }

    pub fn stats(&self) -> CpuPoolStats {
        let counters = &self.shared.counters;
        CpuPoolStats {
            workers: self.workers,
            capacity: self.capacity,
            queued: counters.queued.load(Ordering::Relaxed),
            running: counters.running.load(Ordering::Relaxed),
            rejected: counters.rejected.load(Ordering::Relaxed),
        }
    }
}

/// A worker: takes jobs until the pool is closed and empty; calls `on_idle` once each time it
/// finds the queue empty, then waits.
fn work(shared: &Shared, on_idle: fn()) {
    let counters = &shared.counters;
    let mut idle = false;
    loop {
        let job = {
            let mut queue = shared.lock();
            loop {
                if let Some(job) = queue.jobs.pop_front() {
                    counters.queued.fetch_sub(1, Ordering::Relaxed);
                    counters.running.fetch_add(1, Ordering::Relaxed);
                    break job;
                }
                if queue.closed {
                    return;
                }
                if idle {
                    queue = shared.work.wait(queue).unwrap_or_else(PoisonError::into_inner);
                } else {
                    drop(queue);
                    on_idle();
                    idle = true;
                    queue = shared.lock();
                }
            }
        };
        idle = false;
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
        let pool = CpuPool::new("test", 1, 1, PoolPriority::Normal, || {});
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
        assert_eq!(pool.run(|| 3).await, Err(CpuPoolError::Busy("test")));
        assert_eq!(pool.stats().rejected, 1);
        gate.wait();
        assert_eq!(running.await.unwrap(), Ok(1));
        assert_eq!(queued.await.unwrap(), Ok(2));
        assert_eq!(pool.run(|| 4).await, Ok(4));
    }

    static IDLE_CALLS: AtomicUsize = AtomicUsize::new(0);

    #[tokio::test]
    async fn idle_is_called_when_the_queue_is_empty_not_between_queued_jobs() {
        let pool = CpuPool::new("idle-hook", 1, 4, PoolPriority::Normal, || {
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
        let pool = CpuPool::new("idle-two", 2, 4, PoolPriority::Normal, || {
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
        let pool = CpuPool::new("closing", 1, 2, PoolPriority::Normal, || {});
        assert_eq!(pool.run(|| 7).await, Ok(7));
        let weak = Arc::downgrade(&pool.shared);
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
        let low = CpuPool::new("low", 1, 1, PoolPriority::Low, || {}).run(scheduling).await.unwrap();
        assert_eq!(low, (10, 0));
        let idle = CpuPool::new("idle", 1, 1, PoolPriority::Idle, || {}).run(scheduling).await.unwrap();
        assert_eq!(idle.1, 5, "SCHED_IDLE is policy 5");
    }
}
