//! One Argon2id verification as a hashing thread of the service does it during a login storm:
//! the service's own hasher, at the parameters the service would use (its defaults, or
//! `ARGON2_*` from the environment), on memory kept from the previous hash. Prints the median,
//! the fastest and the slowest of N verifications in milliseconds. `scripts/bench/run.sh` uses
//! the median for the hash-bound login limit.
//!
//! `cargo run --release -p infrastructure --example hash_time -- [N]` (N: 50 by default)

use std::io::Write as _;
use std::time::Instant;

use application::PasswordHasher as _;
use domain::Password;
use infrastructure::{Argon2Hasher, Settings};

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(50).max(1);
    let settings = Settings::from_lookup(|name| std::env::var(name).ok())?;
    let hasher = Argon2Hasher::new(settings.argon2)?;
    // Keep the memory between hashes, as the hashing pool's threads do.
    infrastructure::keep_hash_memory();
    let password = Password::parse_new("a bench password", None, None)?;
    let stored = hasher.hash(&password)?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let verified = hasher.verify(&password, &stored)?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(verified.matches, "the password did not verify");
    }
    times.sort_by(f64::total_cmp);
    let a = settings.argon2;
    writeln!(
        std::io::stdout(),
        "HASH median_ms={:.3} min_ms={:.3} max_ms={:.3} n={n} m_kib={} t={} p={}",
        times[n / 2],
        times[0],
        times[n - 1],
        a.memory_kib,
        a.iterations,
        a.parallelism
    )?;
    Ok(())
}
