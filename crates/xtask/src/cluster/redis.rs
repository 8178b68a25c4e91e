//! Redis (Debian's redis-server) as a foreground process on a private port and folder, without
//! persistence, as compose runs it; and the two questions the checks ask it, in RESP over a
//! plain socket.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::process::{self, Proc};
use super::topology::{Cluster, wait_for};

impl Cluster {
    /// Starts Redis (again, on the same port) and waits until it answers PING.
    pub async fn start_redis(&mut self) -> Result<()> {
        let dir = self.work.join("redis");
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        if self.redis.is_none() {
            let args = [
                "--port",
                &self.redis_port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                &dir.to_string_lossy(),
                "--daemonize",
                "no",
                "--logfile",
                "",
            ]
            .map(str::to_owned);
            let env = BTreeMap::from([("PATH".to_owned(), std::env::var("PATH").unwrap_or_default())]);
            let log = self.logs().join("redis.log");
            self.redis = Some(Proc::new(
                "redis",
                process::which("redis-server", "redis-server")?,
                args.to_vec(),
                env,
                &dir,
                log,
            ));
        }
        let port = self.redis_port;
        let redis = self.redis.as_mut().context("redis was just set up")?;
        redis.start()?;
        self.record_pids()?;
        let what = format!("Redis on 127.0.0.1:{port}");
        wait_for(&what, Duration::from_secs(15), self.redis.as_mut(), async || answers_ping(port)).await.map(drop)
    }
}

/// Whether Redis on `port` answers PING within half a second.
pub fn answers_ping(port: u16) -> bool {
    exchange(port, b"PING\r\n", Duration::from_millis(500)).is_ok_and(|reply| reply.starts_with(b"+PONG"))
}

/// How many keys match `pattern` (KEYS: fine for a test's few keys).
pub fn count_keys(port: u16, pattern: &str) -> Result<usize> {
    let command = format!("*2\r\n$4\r\nKEYS\r\n${}\r\n{pattern}\r\n", pattern.len());
    let reply = exchange(port, command.as_bytes(), Duration::from_secs(1))?;
    let first = reply.split(|&b| b == b'\r').next().unwrap_or_default();
    match first.strip_prefix(b"*") {
        Some(n) => String::from_utf8_lossy(n).parse().context("reading Redis's reply to KEYS"),
        None => bail!("Redis answered KEYS with {}", String::from_utf8_lossy(first)),
    }
}

/// Sends one command, reads the start of the reply.
fn exchange(port: u16, command: &[u8], timeout: Duration) -> std::io::Result<Vec<u8>> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(command)?;
    let mut reply = vec![0; 64 * 1024];
    let n = stream.read(&mut reply)?;
    reply.truncate(n);
    Ok(reply)
}
