//! The summary: one table of every workload run (with the targets and ratios of the
//! performance issue), with `--against` a second table of both builds side by side, and the
//! facts below. Pure: everything measured comes in a [`Report`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::options::{LINES_SET, MENU_LINES, W6_P99_MS, W6_RSS_MB};
use super::wrk::Measure;

/// One row of the table: a workload run on this build, and on the other build with
/// `--against`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub label: String,
    pub conns: u64,
    pub this: Measure,
    pub other: Option<Measure>,
}

/// The hash-bound login limit's inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Hash {
    /// The median of one Argon2id verification, ms.
    pub median_ms: f64,
    /// The rest of hash_time's line (`median_ms=... n=50 m_kib=...`).
    pub detail: String,
    pub cores: u64,
}

impl Hash {
    /// cores × 1000 ÷ one hash, to 0.1/s (as printed, and as the ratios use it).
    pub fn limit(&self) -> f64 {
        (self.cores as f64 * 1000.0 / self.median_ms * 10.0).round() / 10.0
    }
}

/// Everything the summary says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub quick: bool,
    pub stamp: String,
    pub warmup: u64,
    pub duration: u64,
    pub wrk_timeout: u64,
    pub pool: u64,
    pub conns_low: u64,
    pub conns_high: u64,
    /// `1M`, `10M`.
    pub small_label: String,
    pub large_label: String,
    pub db_small: String,
    pub db_work: String,
    /// The workloads run, when not all (`W2, W3`).
    pub only: Option<String>,
    /// The other build's label (`HEAD~1 (3e7da93)`), with `--against`.
    pub against: Option<String>,
    /// Whether the other build ran on databases of its own (its migration files differ).
    pub own_databases: bool,
    /// By key (`w0`, `w2_5_c16`, ...).
    pub rows: BTreeMap<String, Row>,
    /// `a_1`, `b_1`, ...: label and measure (req/s = TPS).
    pub baselines: BTreeMap<String, (String, Measure)>,
    pub hash: Option<Hash>,
    /// Sequential logins at concurrency 1, and their duration in seconds.
    pub lone_login: Option<(Measure, u64)>,
    /// The bullet lines of "Machine and setup".
    pub setup: Vec<String>,
}

/// The key of baseline (c) in [`Report::baselines`].
pub const ADD_LINES_BASELINE: &str = "c_add_lines";

/// `printf "%.*f"`, `-` when there is nothing.
fn fixed(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

/// A ratio as the table shows it (empty when it cannot be computed).
fn shown(r: Option<f64>) -> String {
    r.map_or_else(String::new, |r| format!("{r:.3}"))
}

#[derive(Default)]
struct Targets {
    total: u32,
    passed: u32,
}

impl Targets {
    fn check(&mut self, ok: bool) -> &'static str {
        self.total += 1;
        if ok {
            self.passed += 1;
            "PASS"
        } else {
            "FAIL"
        }
    }
}

fn table_row(out: &mut String, label: &str, conns: u64, m: &Measure, rss: bool, target: &str) {
    let timeouts = if m.timeouts() > 0 { format!(" ({} timeouts)", m.timeouts()) } else { String::new() };
    let rss = if rss { fixed(m.rss_mb, 1) } else { "-".to_owned() };
    let _ = writeln!(
        out,
        "| {label} | {conns} | {} | {} | {} | {} | {}{timeouts} | {rss} | {target} |",
        fixed(m.rps(), 0),
        fixed(m.p50(), 2),
        fixed(m.p99(), 2),
        fixed(m.p999(), 2),
        m.errors(),
    );
}

impl Report {
    /// The keys of the table's rows, in the table's order.
    pub fn row_order(&self) -> Vec<String> {
        let mut keys: Vec<String> =
            ["w0", "w1", "w1b_alone", "w1b_storm", "w1b_storm_logins"].map(String::from).to_vec();
        for conns in [self.conns_low, self.conns_high] {
            for n in LINES_SET {
                keys.push(format!("w2_{n}_c{conns}"));
                if n == MENU_LINES {
                    keys.push(format!("w2m_{n}_c{conns}"));
                }
            }
        }
        keys.extend(["w4", "w5", "w6", "w3_small_30", "w3_small_365", "w3_large_30", "w3_large_365"].map(String::from));
        keys
    }

    fn target(&self, key: &str, row: &Row, targets: &mut Targets) -> String {
        let m = &row.this;
        let limit = self.hash.as_ref().map(Hash::limit);
        let (ls, ll) = (&self.small_label, &self.large_label);
        let p50 = |k: &str| self.rows.get(k).and_then(|r| r.this.p50());
        match key {
            "w1" => {
                let t = targets.check(m.rps().zip(limit).is_some_and(|(r, l)| r >= 0.8 * l));
                format!("{} × hash-bound limit {}/s (target ≥ 0.8): {t}", shown(ratio(m.rps(), limit)), fixed(limit, 1))
            }
            "w1b_alone" => "reference for W1b".to_owned(),
            "w1b_storm" => {
                let r = ratio(m.p99(), self.rows.get("w1b_alone").and_then(|a| a.this.p99()));
                let t = targets.check(r.is_some_and(|r| r <= 2.0));
                format!("p99 {} × alone (target ≤ 2): {t}", shown(r))
            }
            "w1b_storm_logins" => format!("logins during W1b: {} × hash-bound limit", shown(ratio(m.rps(), limit))),
            "w3_small_30" | "w3_small_365" => format!("reference for the {ll}/{ls} ratio"),
            "w3_large_30" | "w3_large_365" => {
                let (days, bound) = if key == "w3_large_30" { (30, 20.0) } else { (365, 100.0) };
                let r = ratio(m.p50(), p50(&format!("w3_small_{days}")));
                let t1 = targets.check(m.p50().is_some_and(|p| p <= bound));
                let t2 = targets.check(r.is_some_and(|r| r <= 1.5));
                format!("p50 ≤ {bound} ms: {t1}; {ll}/{ls} p50 ratio {} (≤ 1.5): {t2}", shown(r))
            }
            "w5" => {
                let tps = self.baselines.get(ADD_LINES_BASELINE).and_then(|(_, b)| b.rps());
                let r = ratio(m.rps(), tps);
                format!("{} × (c) (target ≥ 0.8): {}", shown(r), targets.check(r.is_some_and(|r| r >= 0.8)))
            }
            "w6" => {
                let n = |field: &str| m.get(field).unwrap_or(f64::NAN);
                let t1 = targets.check(m.p99().is_some_and(|p| p <= W6_P99_MS));
                let all = m.get("expected").is_some_and(|e| e > 0.0) && m.errors() == 0;
                let t2 = targets.check(all);
                let t3 = targets.check(m.rss_mb.is_some_and(|r| r <= W6_RSS_MB));
                format!(
                    "delivery p99 ≤ {W6_P99_MS} ms (max {}): {t1}; every event to every display ({} tickets; ticket.created expected {}, received {}, missing {}, duplicates {}, out of order {}; displays failed {}, dropped {}; sender failures {}): {t2}; RSS ≤ {W6_RSS_MB} MB: {t3}",
                    fixed(m.get("max_ms"), 1),
                    n("tickets"),
                    n("expected"),
                    n("received"),
                    n("missing"),
                    n("duplicates"),
                    n("out_of_order"),
                    n("failed"),
                    n("dropped"),
                    n("sent_failed"),
                )
            }
            _ if key.starts_with("w2m_") => {
                // The menu's cost: these orders against the same orders of open lines, right before.
                let open = key.replacen("w2m_", "w2_", 1);
                let r = ratio(m.rps(), self.rows.get(&open).and_then(|o| o.this.rps()));
                let t = targets.check(r.is_some_and(|r| r >= 0.9));
                let mut out = format!("{} × open lines (target ≥ 0.9): {t}", shown(r));
                if row.conns == self.conns_high {
                    let e = m.errors();
                    let _ = write!(out, "; errors+timeouts = {e} (target 0): {}", targets.check(e == 0));
                }
                out
            }
            _ if key.starts_with("w2_") => {
                let lines = key.trim_start_matches("w2_").split('_').next().unwrap_or_default();
                if row.conns == self.conns_high {
                    let e = m.errors();
                    let t1 = targets.check(e == 0);
                    let t2 = targets.check(m.rss_mb.is_some_and(|r| r <= 64.0));
                    format!("errors+timeouts = {e} (target 0): {t1}; RSS ≤ 64 MB: {t2}")
                } else {
                    let tps = |k: &str| self.baselines.get(&format!("{k}_{lines}")).and_then(|(_, b)| b.rps());
                    let (rb, ra) = (ratio(m.rps(), tps("b")), ratio(m.rps(), tps("a")));
                    let tag = if row.conns == self.pool {
                        format!(": {}", targets.check(rb.is_some_and(|r| r >= 0.8)))
                    } else {
                        String::new()
                    };
                    format!("{} × (b), {} × (a) (target ≥ 0.8 × (b)){tag}", shown(rb), shown(ra))
                }
            }
            _ => String::new(),
        }
    }

    /// The summary, Markdown.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.quick {
            out.push_str("# Comanda benchmark — SMOKE RUN (--quick): checks the tooling, NOT a measurement\n\n");
        } else {
            out.push_str("# Comanda benchmark\n\n");
        }
        let _ = write!(
            out,
            "Run {}; warm-up {}s then {}s measured per workload; wrk -t2 (-t1 at one connection), --timeout {}s; loopback; service pool {}.",
            self.stamp, self.warmup, self.duration, self.wrk_timeout, self.pool
        );
        if let Some(only) = &self.only {
            let _ = write!(out, " Workloads run: {only} only.");
        }
        if let Some(other) = &self.against {
            let _ =
                write!(out, " Each workload also ran on {other}, alternately with this build (table below the first).");
        }
        out.push_str(
            "\n\n| Workload | Conns | Req/s | p50 ms | p99 ms | p99.9 ms | Errors | Peak RSS MB | Target / ratio |\n",
        );
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
        let mut targets = Targets::default();
        for key in self.row_order() {
            if let Some(row) = self.rows.get(&key) {
                let target = self.target(&key, row, &mut targets);
                table_row(&mut out, &row.label, row.conns, &row.this, key != "w1b_storm_logins", &target);
            }
        }
        for n in LINES_SET {
            let (a, b) = (self.baselines.get(&format!("a_{n}")), self.baselines.get(&format!("b_{n}")));
            if let Some((label, m)) = a {
                let target = format!("(a)/(b) = {}", shown(ratio(m.rps(), b.and_then(|(_, b)| b.rps()))));
                table_row(&mut out, &format!("Baseline {label} (pgbench)"), self.pool, m, false, &target);
            }
            if let Some((label, m)) = b {
                table_row(&mut out, &format!("Baseline {label} (pgbench)"), self.pool, m, false, "");
            }
        }
        if let Some((label, m)) = self.baselines.get(ADD_LINES_BASELINE) {
            table_row(&mut out, &format!("Baseline {label} (pgbench)"), self.pool, m, false, "reference for W5");
        }
        out.push('\n');
        if let Some(other) = &self.against {
            self.render_comparison(&mut out, other);
        }
        let _ = writeln!(
            out,
            "Targets met: {} of {}. Errors = non-2xx/3xx responses + socket errors + timeouts (wrk).",
            targets.passed, targets.total
        );
        if let Some(hash) = &self.hash {
            let _ = writeln!(
                out,
                "Hash-bound login limit = cores × 1000 / one Argon2id hash = {} × 1000 / {:.2} ms = {:.1}/s;",
                hash.cores,
                hash.median_ms,
                hash.limit()
            );
            let end = if self.lone_login.is_some() { ';' } else { '.' };
            let _ = writeln!(
                out,
                "one hash = the median of 50 verifications by the service's hasher on kept memory, as during a storm ({}){end}",
                hash.detail
            );
        }
        if let Some((m, secs)) = &self.lone_login {
            let _ = writeln!(
                out,
                "a lone login end to end (concurrency 1, the hashing memory faulted in anew each time): p50 {} ms ({} logins in {secs}s).",
                fixed(m.p50(), 2),
                fixed(m.get("requests"), 0)
            );
        }
        if !self.baselines.is_empty() {
            let _ = writeln!(
                out,
                "Baselines: pgbench -n -M prepared -c {} -j 2 on {} (this run's copy of {}), each (a)/(b) pair right before W2 at {} connections with as many lines, (c) right before W5 on as many fresh open orders as W5's, the service idle; req/s column = TPS; latencies from the per-transaction log.",
                self.pool, self.db_work, self.db_small, self.conns_low
            );
        }
        if self.rows.contains_key("w6") {
            out.push_str(
                "W6: conns = stream connections (displays) of one location, opened before the sender starts; req/s = tickets made (201) per second in the measured part; p50/p99/p99.9 = delivery latency of the measured part's ticket.created events, from the ticket's created_at (the service's clock, set just before the ticket's transaction) to the event's arrival at a display (this process, the same clock); errors = displays that failed or dropped + events missing, duplicated or out of order + the sender's failures.\n",
            );
        }
        out.push_str("\n## Machine and setup\n\n");
        for line in &self.setup {
            let _ = writeln!(out, "- {line}");
        }
        out
    }

    fn render_comparison(&self, out: &mut String, other: &str) {
        let _ = writeln!(out, "## This build and {other}\n");
        if !self.rows.values().any(|row| row.other.is_some()) {
            // W5 and W6 against a build without their routes, for instance.
            let _ = writeln!(out, "No workload of this run ran on both builds ({other} lacks their routes).\n");
            return;
        }
        let databases = if self.own_databases {
            "each over a database of its own, seeded by its own db-admin with the same parameters in the same cluster \
             (their migration files differ; see Machine and setup)"
        } else {
            "over the same database"
        };
        let _ = writeln!(
            out,
            "Each workload ran on both builds in turn (which went first alternating), {databases}; \
             × = this build ÷ {other} (req/s: above 1 is faster; latencies and RSS: below 1 is better).\n"
        );
        out.push_str("| Workload | Conns | Req/s this | Req/s other | × | p50 ms this | p50 ms other | × | p99 ms this | p99 ms other | × | Errors this / other | Peak RSS MB this / other | × |\n");
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for key in self.row_order() {
            let Some(row) = self.rows.get(&key) else { continue };
            let Some(o) = &row.other else { continue };
            let t = &row.this;
            let rss = key != "w1b_storm_logins";
            let rss_cell = |m: &Measure| if rss { fixed(m.rss_mb, 1) } else { "-".to_owned() };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} / {} | {} |",
                row.label,
                row.conns,
                fixed(t.rps(), 0),
                fixed(o.rps(), 0),
                shown(ratio(t.rps(), o.rps())),
                fixed(t.p50(), 2),
                fixed(o.p50(), 2),
                shown(ratio(t.p50(), o.p50())),
                fixed(t.p99(), 2),
                fixed(o.p99(), 2),
                shown(ratio(t.p99(), o.p99())),
                t.errors(),
                o.errors(),
                rss_cell(t),
                rss_cell(o),
                if rss { shown(ratio(t.rss_mb, o.rss_mb)) } else { String::new() },
            );
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measure(rps: f64, p50: f64, p99: f64, errors: u64, rss: Option<f64>) -> Measure {
        let fields = [
            ("rps", rps),
            ("p50_ms", p50),
            ("p99_ms", p99),
            ("p999_ms", p99 * 2.0),
            ("errors", errors as f64),
            ("timeout", 0.0),
            ("requests", rps * 3.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Measure { fields, rss_mb: rss }
    }

    fn row(label: &str, conns: u64, m: Measure) -> Row {
        Row { label: label.to_owned(), conns, this: m, other: None }
    }

    fn fixture() -> Report {
        let mut rows = BTreeMap::new();
        rows.insert("w0".into(), row("W0 GET /health/live", 64, measure(82603.0, 0.63, 5.15, 0, Some(20.9))));
        rows.insert("w1".into(), row("W1 login storm", 16, measure(92.0, 169.25, 235.56, 0, Some(57.5))));
        rows.insert(
            "w2_1_c16".into(),
            row("W2 create order, 1 line(s)", 16, measure(5115.0, 2.85, 8.69, 0, Some(19.9))),
        );
        rows.insert(
            "w2_1_c1000".into(),
            row("W2 create order, 1 line(s)", 1000, measure(4322.0, 212.62, 434.63, 0, Some(64.5))),
        );
        rows.insert(
            "w3_small_30".into(),
            row("W3 report 30 days, 1M lines", 1, measure(121.0, 8.25, 14.7, 0, Some(18.8))),
        );
        rows.insert(
            "w3_large_30".into(),
            row("W3 report 30 days, 10M lines", 1, measure(110.0, 8.97, 17.0, 0, Some(18.6))),
        );
        let mut baselines = BTreeMap::new();
        baselines.insert("a_1".into(), ("(a) service SQL, 1 line(s)".to_owned(), measure(3063.0, 4.8, 12.07, 0, None)));
        baselines.insert("b_1".into(), ("(b) minimal CTE, 1 line(s)".to_owned(), measure(4668.0, 3.11, 7.81, 0, None)));
        Report {
            stamp: "20261202T170406Z".into(),
            warmup: 5,
            duration: 20,
            wrk_timeout: 2,
            pool: 16,
            conns_low: 16,
            conns_high: 1000,
            small_label: "1M".into(),
            large_label: "10M".into(),
            db_small: "bench_1m".into(),
            db_work: "bench_1m_work".into(),
            rows,
            baselines,
            hash: Some(Hash { median_ms: 25.034, detail: "median_ms=25.034 n=50".into(), cores: 2 }),
            lone_login: Some((measure(28.8, 35.5, 40.0, 0, None), 10)),
            setup: vec!["CPU: 2 cores".into()],
            ..Report::default()
        }
    }

    #[test]
    fn the_table_of_a_fixture() {
        let text = fixture().render();
        let expected_rows = [
            "| W0 GET /health/live | 64 | 82603 | 0.63 | 5.15 | 10.30 | 0 | 20.9 |  |",
            "| W1 login storm | 16 | 92 | 169.25 | 235.56 | 471.12 | 0 | 57.5 | 1.151 × hash-bound limit 79.9/s (target ≥ 0.8): PASS |",
            "| W2 create order, 1 line(s) | 16 | 5115 | 2.85 | 8.69 | 17.38 | 0 | 19.9 | 1.096 × (b), 1.670 × (a) (target ≥ 0.8 × (b)): PASS |",
            "| W2 create order, 1 line(s) | 1000 | 4322 | 212.62 | 434.63 | 869.26 | 0 | 64.5 | errors+timeouts = 0 (target 0): PASS; RSS ≤ 64 MB: FAIL |",
            "| W3 report 30 days, 1M lines | 1 | 121 | 8.25 | 14.70 | 29.40 | 0 | 18.8 | reference for the 10M/1M ratio |",
            "| W3 report 30 days, 10M lines | 1 | 110 | 8.97 | 17.00 | 34.00 | 0 | 18.6 | p50 ≤ 20 ms: PASS; 10M/1M p50 ratio 1.087 (≤ 1.5): PASS |",
            "| Baseline (a) service SQL, 1 line(s) (pgbench) | 16 | 3063 | 4.80 | 12.07 | 24.14 | 0 | - | (a)/(b) = 0.656 |",
            "| Baseline (b) minimal CTE, 1 line(s) (pgbench) | 16 | 4668 | 3.11 | 7.81 | 15.62 | 0 | - |  |",
        ];
        let table: Vec<&str> = text.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| Workload")).collect();
        assert_eq!(table, expected_rows);
        assert!(
            text.starts_with("# Comanda benchmark\n\nRun 20261202T170406Z; warm-up 5s then 20s measured"),
            "{text}"
        );
        assert!(text.contains("\nTargets met: 5 of 6. Errors ="), "{text}");
        assert!(text.contains("= 2 × 1000 / 25.03 ms = 79.9/s;\n"), "{text}");
        assert!(text.contains("p50 35.50 ms (86 logins in 10s)."), "{text}");
        assert!(text.contains("on bench_1m_work (this run's copy of bench_1m)"), "{text}");
        assert!(text.ends_with("## Machine and setup\n\n- CPU: 2 cores\n"), "{text}");
        assert!(!text.contains("This build and"), "{text}");
    }

    #[test]
    fn a_comparison_shows_both_builds_and_their_ratio() {
        let mut report = fixture();
        report.quick = true;
        report.only = Some("W2".into());
        report.against = Some("HEAD~1 (abc1234)".into());
        if let Some(r) = report.rows.get_mut("w2_1_c16") {
            r.other = Some(measure(5000.0, 3.0, 8.5, 1, Some(21.0)));
        }
        let text = report.render();
        assert!(text.starts_with("# Comanda benchmark — SMOKE RUN (--quick)"), "{text}");
        assert!(text.contains("Workloads run: W2 only. Each workload also ran on HEAD~1 (abc1234)"), "{text}");
        assert!(text.contains("## This build and HEAD~1 (abc1234)\n"), "{text}");
        assert!(
            text.contains("| W2 create order, 1 line(s) | 16 | 5115 | 5000 | 1.023 | 2.85 | 3.00 | 0.950 | 8.69 | 8.50 | 1.022 | 0 / 1 | 19.9 / 21.0 | 0.948 |"),
            "{text}"
        );
        // Rows that ran on this build only are not in the comparison.
        assert_eq!(text.matches("| W0 GET /health/live |").count(), 1);
        assert!(text.contains("(which went first alternating), over the same database; ×"), "{text}");
        report.own_databases = true;
        let text = report.render();
        assert!(text.contains("(which went first alternating), each over a database of its own, seeded"), "{text}");
    }

    #[test]
    fn missing_figures_fail_their_targets_rather_than_pass() {
        let mut report = fixture();
        report.baselines.clear();
        report.hash = None;
        let text = report.render();
        assert!(text.contains("| 19.9 |  × (b),  × (a) (target ≥ 0.8 × (b)): FAIL |"), "{text}");
        assert!(text.contains(" × hash-bound limit -/s (target ≥ 0.8): FAIL |"), "{text}");
        assert!(!text.contains("Baselines: pgbench"), "{text}");
    }
}
