//! Facts about the machine and the tools, for the summary.

use std::fs;
use std::path::Path;
use std::process::Command;

/// `CPU: 2 cores (nproc), AMD EPYC ...; memory 23.5 GiB; kernel 6.1.0`.
pub fn cpu_line() -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, m)| m.trim().to_owned()))
        .unwrap_or_else(|| "?".to_owned());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:")?.split_whitespace().next()?.parse::<f64>().ok())
        .map_or_else(|| "?".to_owned(), |kb| format!("{:.1} GiB", kb / 1_048_576.0));
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("CPU: {cores} cores (nproc), {model}; memory {memory}; kernel {}", kernel.trim())
}

fn first_line(program: &Path, arg: &str) -> Option<String> {
    let out = Command::new(program).arg(arg).output().ok()?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    text.lines().next().map(|l| l.trim().to_owned())
}

/// `Tools: wrk debian/4.1.0-3+b2, pgbench (PostgreSQL) 15.20 ..., rustc 1.95.0 (...)`.
pub fn tools_line(pg_bin_dir: &Path) -> String {
    let wrk = first_line(Path::new("wrk"), "-v")
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "wrk ?".to_owned());
    let pgbench = first_line(&pg_bin_dir.join("pgbench"), "--version").unwrap_or_else(|| "pgbench ?".to_owned());
    let rustc = first_line(Path::new("rustc"), "--version").unwrap_or_else(|| "rustc ?".to_owned());
    format!("Tools: {wrk}, {pgbench}, {rustc}")
}

/// Whether `program` is on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
