//! (e) the graceful stop: every replica exits 0 on SIGTERM, and no replica logged an ERROR
//! (read after the stop, so that the shutdown's own logs count too).

use std::collections::BTreeMap;
use std::process::ExitStatus;

use super::super::process::describe;
use super::super::report::Report;
use super::super::topology::Cluster;

pub fn check(c: &Cluster, rep: &mut Report, ended: &[(String, Option<ExitStatus>)]) {
    if ended.is_empty() {
        return;
    }
    let mut errors = Vec::new();
    let mut warns: BTreeMap<String, usize> = BTreeMap::new();
    for replica in &c.replicas {
        let Ok(bytes) = std::fs::read(&replica.proc.log) else { continue };
        for line in String::from_utf8_lossy(&bytes).lines() {
            if line.contains(r#""level":"ERROR""#) {
                errors.push(format!("{}: {}", replica.name, line.chars().take(300).collect::<String>()));
            } else if line.contains(r#""level":"WARN""#) {
                let message = serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "(unparsed)".to_owned());
                *warns.entry(format!("{}: {message}", replica.name)).or_default() += 1;
            }
        }
    }
    let mut warns: Vec<(String, usize)> = warns.into_iter().collect();
    warns.sort_by_key(|w| std::cmp::Reverse(w.1));
    for (warning, n) in warns.iter().take(8) {
        rep.info(format!("log WARN x{n} {warning}"));
    }
    for error in errors.iter().take(5) {
        rep.info(error);
    }
    rep.check(errors.is_empty(), "(e)", format!("no replica logged an ERROR ({})", errors.len()));

    let graceful = ended.iter().all(|(_, status)| status.is_some_and(|s| s.code() == Some(0)));
    let shown: Vec<String> = ended.iter().map(|(name, status)| format!("{name} {}", describe(*status))).collect();
    rep.check(graceful, "(e)", format!("SIGTERM: every replica stopped gracefully with exit 0 ({})", shown.join(", ")));
}
