//! Ports and secrets for the topology.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::net::TcpListener;

use anyhow::{Context, Result, bail};

/// Ports for the programs that are restarted on the same port (Redis, the replicas).
#[derive(Debug, Default)]
pub struct Ports {
    taken: HashSet<u16>,
}

impl Ports {
    /// A free loopback port below the kernel's ephemeral range. Not `local_pg::free_port` (which
    /// asks the kernel for an ephemeral one): while a replica or Redis is down, an outgoing
    /// connection (nginx to another replica, a replica to Redis) could be handed its port from
    /// that range, and it could not start again on it.
    pub fn restartable(&mut self) -> Result<u16> {
        let low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse::<u16>().ok()))
            .unwrap_or(32768);
        let high = if low > 12000 { low - 1 } else { 32767 };
        let span = u64::from(high - 10000);
        let mut seed = u64::from_le_bytes(random_bytes::<8>()?);
        for _ in 0..1000 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let port = 10000 + u16::try_from((seed >> 33) % span).unwrap_or(0);
            if self.taken.contains(&port) || TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            self.taken.insert(port);
            return Ok(port);
        }
        bail!("no free loopback port found below {low}")
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).context("reading /dev/urandom")?;
    Ok(bytes)
}

/// `n` random bytes as hex (secrets and passwords for the topology).
pub fn random_hex(n: usize) -> Result<String> {
    let mut out = String::with_capacity(n * 2);
    while out.len() < n * 2 {
        for b in random_bytes::<16>()? {
            out.push_str(&format!("{b:02x}"));
        }
    }
    out.truncate(n * 2);
    Ok(out)
}
