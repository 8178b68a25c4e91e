//! A bounded pool of threads for CPU-heavy work (Argon2id): as many threads as cores, a queue of
//! fixed length, and an immediate refusal when the queue is full, so that a storm of logins
//! cannot pile up and starve everything else.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
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

/// The bounded pool. Cloning shares it.
#[derive(Debug, Clone)]
pub struct CpuPool {
    name: &'static str,
    sender: SyncSender<Job>,
    counters: Arc<Counters>,
    workers: usize,
    capacity: usize,
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
    /// `workers` threads and room for `queue` jobs waiting (0: only as many as there are idle
    /// workers are taken).
    ///
    /// `priority` lowers the workers' scheduling priority: when the cores are contended, the
    /// threads answering requests run first, and the pool still gets every idle cycle.
    ///
    /// A worker calls `on_idle` when it finds the queue empty, before it waits: the place to free
    /// what the work keeps from one job to the next.
    pub fn new(name: &'static str, workers: usize, queue: usize, priority: PoolPriority, on_idle: fn()) -> Self {
        let (sender, receiver) = mpsc::sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        let counters = Arc::new(Counters::default());
        for i in 0..workers.max(1) {
            let receiver = Arc::clone(&receiver);
            let counters = Arc::clone(&counters);
            thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    lower_priority(priority);
                    while let Some(job) = next_job(&receiver, on_idle) {
                        counters.queued.fetch_sub(1, Ordering::Relaxed);
                        counters.running.fetch_add(1, Ordering::Relaxed);
                        job();
                        counters.running.fetch_sub(1, Ordering::Relaxed);
                    }
                })
                .expect("spawning a hashing thread");
        }
        Self { name, sender, counters, workers: workers.max(1), capacity: queue }
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
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        match self.sender.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.queued.fetch_sub(1, Ordering::Relaxed);
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(CpuPoolError::Busy(self.name));
            }
        }
        match rx.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) | Err(_) => Err(CpuPoolError::Panicked(self.name)),
        }
    }

    pub fn stats(&self) -> CpuPoolStats {
        CpuPoolStats {
            workers: self.workers,
            capacity: self.capacity,
            queued: self.counters.queued.load(Ordering::Relaxed),
            running: self.counters.running.load(Ordering::Relaxed),
            rejected: self.counters.rejected.load(Ordering::Relaxed),
        }
    }
}

/// The next job, calling `on_idle` first if there is none yet; `None` when the pool is gone.
fn next_job(receiver: &Mutex<Receiver<Job>>, on_idle: fn()) -> Option<Job> {
    match receiver.lock().ok()?.try_recv() {
        Ok(job) => return Some(job),
        Err(TryRecvError::Disconnected) => return None,
        Err(TryRecvError::Empty) => {}
    }
    on_idle();
    receiver.lock().ok()?.recv().ok()
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
