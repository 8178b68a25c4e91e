//! wrk runs of the Lua scripts in `scripts/bench/lua/`, and the `RESULT` line every script's
//! `done()` prints (`RESULT rps=... p50_ms=... errors=...`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use super::supervise::{Supervisor, tail};

/// What one measured run gave: the RESULT fields, and the server's peak RSS during it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measure {
    pub fields: BTreeMap<String, f64>,
    pub rss_mb: Option<f64>,
}

impl Measure {
    pub fn get(&self, field: &str) -> Option<f64> {
        self.fields.get(field).copied()
    }

    pub fn rps(&self) -> Option<f64> {
        self.get("rps")
    }

    pub fn p50(&self) -> Option<f64> {
        self.get("p50_ms")
    }

    pub fn p99(&self) -> Option<f64> {
        self.get("p99_ms")
    }

    pub fn p999(&self) -> Option<f64> {
        self.get("p999_ms")
    }

    pub fn errors(&self) -> u64 {
        self.get("errors").unwrap_or(0.0) as u64
    }

    pub fn timeouts(&self) -> u64 {
        self.get("timeout").unwrap_or(0.0) as u64
    }
}

/// The fields of the first `RESULT ` line of a wrk output.
pub fn parse_result(output: &str) -> Option<Measure> {
    let line = output.lines().find_map(|l| l.strip_prefix("RESULT "))?;
    let fields = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_owned(), v.parse::<f64>().ok()?)))
        .collect();
    Some(Measure { fields, rss_mb: None })
}

/// How wrk is run in this benchmark: against one server, with the same timeout.
#[derive(Debug, Clone)]
pub struct Wrk {
    pub lua_dir: PathBuf,
    pub timeout_secs: u64,
}

/// wrk's threads: two, one for a single connection.
pub fn threads_for(conns: u64) -> u64 {
    if conns >= 2 { 2 } else { 1 }
}

impl Wrk {
    /// `wrk -tT -cC -dS --timeout --latency -s lua/SCRIPT URL`, with the script's variables.
    pub fn command(&self, url: &str, conns: u64, script: &str, secs: u64, env: &[(String, String)]) -> Command {
        let threads = threads_for(conns);
        let mut command = Command::new("wrk");
        command
            .env("BENCH_LUA_DIR", &self.lua_dir)
            .env("BENCH_THREADS", threads.to_string())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg(format!("-t{threads}"))
            .arg(format!("-c{conns}"))
            .arg(format!("-d{secs}s"))
            .arg("--timeout")
            .arg(format!("{}s", self.timeout_secs))
            .arg("--latency")
            .arg("-s")
            .arg(self.lua_dir.join(script))
            .arg(url);
        command
    }

    /// One run into `out`; fails when wrk fails.
    pub fn run(&self, sup: &Supervisor, command: &mut Command, out: &Path, name: &str) -> anyhow::Result<()> {
        let status = sup.run_to_file(command, out)?;
        if !status.success() {
            bail!("wrk failed for {name} ({status}); the end of {}:\n{}", out.display(), tail(out, 20));
        }
        Ok(())
    }
}

/// The RESULT of a finished run's output file.
pub fn read_result(out: &Path, name: &str) -> anyhow::Result<Measure> {
    let text = std::fs::read_to_string(out).with_context(|| out.display().to_string())?;
    parse_result(&text)
        .with_context(|| format!("{name}: wrk printed no RESULT line (see {}):\n{}", out.display(), tail(out, 20)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_result_line_is_parsed() {
        let out = "Running 3s test @ http://127.0.0.1:1\n  2 threads and 64 connections\nRESULT requests=300 duration_s=3.001 rps=99.97 ok_rps=99.97 mean_ms=1.000 p50_ms=0.630 p90_ms=1.0 p99_ms=5.150 p999_ms=8.270 max_ms=9.0 errors=2 non2xx=1 connect=0 read=0 write=0 timeout=1 bytes=1000\n";
        let m = parse_result(out).unwrap();
        assert_eq!((m.rps(), m.p50(), m.p99(), m.p999()), (Some(99.97), Some(0.63), Some(5.15), Some(8.27)));
        assert_eq!((m.errors(), m.timeouts(), m.get("requests")), (2, 1, Some(300.0)));
        assert!(parse_result("no result").is_none());
    }

    #[test]
    fn threads_and_the_command_line() {
        assert_eq!((threads_for(1), threads_for(2), threads_for(1000)), (1, 2, 2));
        let wrk = Wrk { lua_dir: "/l".into(), timeout_secs: 2 };
        let c = wrk.command("http://h", 16, "login.lua", 3, &[("BENCH_PASSWORD".into(), "p".into())]);
        let args: Vec<String> = c.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(args, ["-t2", "-c16", "-d3s", "--timeout", "2s", "--latency", "-s", "/l/login.lua", "http://h"]);
    }
}
