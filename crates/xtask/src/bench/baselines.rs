//! The pgbench baselines of W2, on the same database and cluster:
//!
//! - (a) the service's own create-order statement for one order: the text of
//!   [`InsertOrders::sql`] with each `$n` replaced by the pgbench expression for the parameter
//!   [`InsertOrders::PARAMETERS`] names. A parameter this module does not know stops the run
//!   with a sentence naming it: a change to the statement changes the baseline, or stops it,
//!   and never leaves a stale copy.
//! - (b) the fastest SQL for the same write, the baseline's own definition: one statement,
//!   `WITH o AS (INSERT INTO orders ... RETURNING id) INSERT INTO order_items SELECT ...`.
//!
//! And W5's baseline:
//!
//! - (c) two lines added to an open order in one statement, `WITH o AS (UPDATE orders ...
//!   RETURNING id, version, (SELECT max(line_no) ...)) INSERT INTO order_items SELECT ...`,
//!   after the order's row lock, in one pipeline (one round trip, one commit). Alone, the
//!   statement is not safe at 16 clients: under READ COMMITTED its `max(line_no)` comes from
//!   the snapshot taken when it started, before it waited for the row lock, and two adds to one
//!   order then number their lines alike (pgbench aborts its clients on the duplicate keys).
//!   With the lock taken by the statement before it, it reads the lines committed meanwhile.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context as _, bail};
use domain::OrderStatus;
use infrastructure::InsertOrders;

use super::Ctx;
use super::cluster::BenchCluster;
use super::supervise::tail;
use super::wrk::Measure;

/// A time-ordered (version 7) uuid from the statement's `now()` and two random pgbench
/// integers, as the service makes them: a bind in the service, an expression of binds here.
const UUID_EXPR: &str = "(lpad(to_hex(floor(extract(epoch FROM now()) * 1000)::bigint), 12, '0') || to_hex(:r1::bigint) || to_hex(:r2::bigint))::uuid";
/// One of the seeded waiters, at random.
const WAITER_EXPR: &str = "(:waiters::uuid[])[:w]";
/// The location that waiter works in.
const LOCATION_EXPR: &str = "(:locations::uuid[])[:w]";

/// The pgbench expression that stands for `parameter` of [`InsertOrders`] in baseline (a),
/// for one order of `lines` lines: one of the seeded waiters in the location they work in, on
/// today's date (UTC), a request without an idempotency key (like W2's), `now()`, the staff
/// directory's version read before the run, and the lines from `-D` array variables: open lines
/// without notes (W2's), so no menu version to check.
fn expression(parameter: &str, lines: usize) -> Option<String> {
    Some(match parameter {
        "ids" => format!("ARRAY[{UUID_EXPR}]"),
        "customer_names" => "ARRAY[:customer::text]".to_owned(),
        "waiter_ids" => format!("ARRAY[{WAITER_EXPR}]"),
        "location_ids" => format!("ARRAY[{LOCATION_EXPR}]"),
        "business_dates" => "ARRAY[current_date]".to_owned(),
        "versions" => "ARRAY[1::int8]".to_owned(),
        "directory_versions" => "ARRAY[:directory::int8]".to_owned(),
        "menu_versions" => "ARRAY[NULL::int8]".to_owned(),
        "statuses" => format!("ARRAY['{}']", OrderStatus::Open.as_str()),
        "totals" => "ARRAY[:total::numeric]".to_owned(),
        "amounts_paid" => "ARRAY[0::numeric]".to_owned(),
        "created_at" => "ARRAY[now()]".to_owned(),
        "keys" => "ARRAY[NULL::text]".to_owned(),
        "fingerprints" => "ARRAY[NULL::bytea]".to_owned(),
        "line_orders" => format!("array_fill({UUID_EXPR}, ARRAY[{lines}])"),
        "line_numbers" => ":nums::int2[]".to_owned(),
        "line_keys" => ":keys::text[]".to_owned(),
        "line_names" => ":names::text[]".to_owned(),
        "line_prices" => ":prices::numeric[]".to_owned(),
        "line_quantities" => ":qtys::int4[]".to_owned(),
        "line_subtotals" => ":subs::numeric[]".to_owned(),
        "line_notes" => format!("array_fill(NULL::text, ARRAY[{lines}])"),
        "line_menu_items" | "line_category_ids" => format!("array_fill(NULL::uuid, ARRAY[{lines}])"),
        "line_categories" => format!("array_fill(NULL::text, ARRAY[{lines}])"),
        _ => return None,
    })
}

/// `sql` with every `$n` replaced by the expression of `parameters[n - 1]`.
pub fn substitute(sql: &str, parameters: &[&str], lines: usize) -> anyhow::Result<String> {
    let mut out = String::with_capacity(sql.len() * 2);
    let mut used = vec![false; parameters.len()];
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let digits: String = rest[at + 1..].chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            bail!("InsertOrders::sql() has a `$` that is not a placeholder: {sql}");
        }
        let n: usize = digits.parse().context("placeholder number")?;
        let Some(name) = n.checked_sub(1).and_then(|i| parameters.get(i)) else {
            bail!(
                "InsertOrders::sql() uses ${n}, but InsertOrders::PARAMETERS names only {} parameters",
                parameters.len()
            );
        };
        let Some(expr) = expression(name, lines) else {
            bail!(
                "InsertOrders::PARAMETERS names `{name}` (${n}), which baseline (a) does not know: say in \
                 crates/xtask/src/bench/baselines.rs (fn expression) what pgbench sends for it"
            );
        };
        used[n - 1] = true;
        out.push_str(&expr);
        rest = &rest[at + 1 + digits.len()..];
    }
    out.push_str(rest);
    if let Some(unused) = used.iter().position(|u| !u) {
        bail!("InsertOrders::sql() does not use ${} (`{}`), which PARAMETERS names", unused + 1, parameters[unused]);
    }
    Ok(out)
}

/// pgbench's random variables of both scripts.
fn random_variables(waiters: usize) -> String {
    format!(
        "\\set r1 random(28672, 32767)\n\\set r2 random(-9223372036854775807, -4611686018427387905)\n\\set w random(1, {waiters})\n"
    )
}

/// The lines of the baselines' order: the first `n` products, fixed prices and quantities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLines {
    /// `(key, name, price, quantity, subtotal)`, prices as `12.34`.
    pub lines: Vec<(String, String, String, u64, String)>,
    pub total: String,
}

fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

impl OrderLines {
    /// `products` are `(key, name)`, most sold first.
    pub fn new(products: &[(String, String)], n: usize) -> Self {
        let mut total = 0;
        let lines = products
            .iter()
            .take(n)
            .enumerate()
            .map(|(i, (key, name))| {
                let i = i as u64 + 1;
                let (cents, quantity) = (250 + (i * 137) % 1800, 1 + i % 3);
                total += cents * quantity;
                (key.clone(), name.clone(), money(cents), quantity, money(cents * quantity))
            })
            .collect();
        Self { lines, total: money(total) }
    }

    /// pgbench's `-D` variables of both scripts: the waiters, the location each works in
    /// (`locations[i]` is `waiter_ids[i]`'s), the staff directory's version.
    pub fn defines(&self, waiter_ids: &[String], locations: &[String], directory: i64) -> Vec<(String, String)> {
        let element = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
        let array = |items: Vec<String>| format!("{{{}}}", items.join(","));
        let l = &self.lines;
        vec![
            ("waiters".into(), array(waiter_ids.to_vec())),
            ("customer".into(), "Table 7".into()),
            ("total".into(), self.total.clone()),
            ("keys".into(), array(l.iter().map(|x| element(&x.0)).collect())),
            ("names".into(), array(l.iter().map(|x| element(&x.1)).collect())),
            ("prices".into(), array(l.iter().map(|x| x.2.clone()).collect())),
            ("qtys".into(), array(l.iter().map(|x| x.3.to_string()).collect())),
            ("subs".into(), array(l.iter().map(|x| x.4.clone()).collect())),
            ("nums".into(), array((1..=l.len()).map(|n| n.to_string()).collect())),
            ("locations".into(), array(locations.to_vec())),
            ("directory".into(), directory.to_string()),
        ]
    }

    /// Baseline (a): the service's statement for one order (prepared once per connection,
    /// like diesel does).
    pub fn service_script(&self, waiters: usize) -> anyhow::Result<String> {
        let statement = substitute(&InsertOrders::sql(), &InsertOrders::PARAMETERS, self.lines.len())?;
        Ok(format!("{}{statement};\n", random_variables(waiters)))
    }

    /// Baseline (b): one statement, one round trip, one commit.
    pub fn minimal_script(&self, waiters: usize) -> String {
        let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let mut values = String::new();
        for (i, (key, name, price, quantity, subtotal)) in self.lines.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let _ =
                write!(values, "{sep}({}, {}, {}, {price}, {quantity}, {subtotal})", i + 1, quote(key), quote(name));
        }
        format!(
            "{}WITH o AS (INSERT INTO orders (id, customer_name, waiter_id, location_id, business_date, status, total_price, amount_paid, created_at, updated_at) \
             VALUES ({UUID_EXPR}, :customer::text, {WAITER_EXPR}, {LOCATION_EXPR}, current_date, '{}', :total::numeric, 0, now(), now()) RETURNING id) \
             INSERT INTO order_items (order_id, line_no, product_key, product_name, unit_price, quantity, subtotal) \
             SELECT o.id, v.n, v.k, v.name, v.price, v.qty, v.sub FROM o, (VALUES {values}) AS v (n, k, name, price, qty, sub);\n",
            random_variables(waiters),
            OrderStatus::Open.as_str(),
        )
    }
}

/// The table baseline (c) picks its orders from: `n` (1 to the number of orders) and the id.
pub const ADD_ORDERS_TABLE: &str = "bench_add_orders";

/// The statements that make [`ADD_ORDERS_TABLE`] hold `orders`.
pub fn add_orders_table(orders: &[uuid::Uuid]) -> String {
    let mut sql = format!(
        "DROP TABLE IF EXISTS {ADD_ORDERS_TABLE}; CREATE TABLE {ADD_ORDERS_TABLE} (n integer PRIMARY KEY, id uuid NOT NULL); INSERT INTO {ADD_ORDERS_TABLE} (n, id) VALUES "
    );
    for (i, id) in orders.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(sql, "{sep}({}, '{id}')", i + 1);
    }
    sql.push_str(&format!("; ANALYZE {ADD_ORDERS_TABLE};"));
    sql
}

/// Orders of [`ADD_ORDERS_TABLE`] whose line numbers are not 1 to their count (a gap or a line
/// numbered twice would show): 0 after a correct baseline (c).
pub const ADD_LINES_CHECK: &str = "SELECT count(*) AS n FROM (SELECT i.order_id FROM order_items i      JOIN bench_add_orders b ON b.id = i.order_id GROUP BY i.order_id      HAVING max(i.line_no) <> count(*) OR min(i.line_no) <> 1) AS wrong";

impl OrderLines {
    /// Baseline (c): W5's change to one of `orders` open orders (at random) in SQL: its row
    /// lock, then one statement that bumps its version, adds the lines' subtotals to its total
    /// and inserts the lines after its last one (numbered from its current highest, `added_in`
    /// its new version), then the commit; one pipeline, so one round trip.
    pub fn add_lines_script(&self, orders: u64) -> String {
        let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let mut values = String::new();
        for (i, (key, name, price, quantity, subtotal)) in self.lines.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let _ =
                write!(values, "{sep}({}, {}, {}, {price}, {quantity}, {subtotal})", i + 1, quote(key), quote(name));
        }
        let order = format!("(SELECT id FROM {ADD_ORDERS_TABLE} WHERE n = :n)");
        format!(
            "\\set n random(1, {orders})\n\\startpipeline\nBEGIN;\nSELECT 1 FROM orders WHERE id = {order} FOR UPDATE;\n\
             WITH o AS (UPDATE orders SET version = version + 1, total_price = total_price + {total}, updated_at = now() \
             WHERE id = {order} AND status IN ('{open}', '{partly}') \
             RETURNING id, version, (SELECT coalesce(max(i.line_no), 0) FROM order_items i WHERE i.order_id = orders.id) AS last) \
             INSERT INTO order_items (order_id, line_no, product_key, product_name, unit_price, quantity, subtotal, added_in) \
             SELECT o.id, o.last + v.n, v.k, v.name, v.price, v.qty, v.sub, o.version FROM o, (VALUES {values}) AS v (n, k, name, price, qty, sub);\n\
             COMMIT;\n\\endpipeline\n",
            total = self.total,
            open = OrderStatus::Open.as_str(),
            partly = OrderStatus::PartiallyPaid.as_str(),
        )
    }
}

/// Runs one baseline script with pgbench: a warm-up, then the measured run with a
/// per-transaction log for the latencies. Scripts and logs live in a folder of the run's
/// temporary folder that the `postgres` user owns; the raw outputs go to `raw/pgbench/`.
pub fn run_pgbench(
    ctx: &Ctx,
    cluster: &BenchCluster,
    database: &str,
    name: &str,
    script: &Path,
    defines: &[(String, String)],
) -> anyhow::Result<Measure> {
    let (config, sup) = (&ctx.config, &ctx.sup);
    let scratch = pgbench_dir(ctx)?;
    let raw = ctx.raw.join("pgbench");
    let command = |secs: u64, log: bool| {
        let mut c = cluster.pg.program("pgbench");
        c.args(["-n", "-M", "prepared", "-c", &config.pool.to_string(), "-j", "2", "-h", "127.0.0.1"]);
        c.args(["-p", &cluster.pg.port().to_string(), "-U", "postgres", "-f"]).arg(script);
        for (k, v) in defines {
            c.arg("-D").arg(format!("{k}={v}"));
        }
        c.arg("-T").arg(secs.to_string());
        if log {
            c.arg("-l").arg(format!("--log-prefix={}", scratch.join(format!("{name}.log")).display()));
        }
        c.arg(database).current_dir(&scratch);
        c
    };
    sup.say(&format!(
        "{name}: pgbench -M prepared -c {} -j 2, {}s warm-up + {}s",
        config.pool, config.warmup, config.duration
    ));
    cluster.quiesce(database)?;
    if config.warmup > 0 {
        let out = raw.join(format!("{name}.warmup.txt"));
        sup.run_ok(&mut command(config.warmup, false), &out, &format!("pgbench for {name}"))?;
    }
    let out = raw.join(format!("{name}.txt"));
    let status = sup.run_to_file(&mut command(config.duration, true), &out)?;
    // 2: some clients were aborted (counted as errors); anything else but 0 is a failure.
    let aborted = match status.code() {
        Some(0) => 0,
        Some(2) => 1,
        _ => bail!("pgbench failed for {name} ({status}); the end of {}:\n{}", out.display(), tail(&out, 20)),
    };
    let text = fs::read_to_string(&out)?;
    let (tps, failed) =
        parse_output(&text).with_context(|| format!("pgbench printed no tps for {name} (see {})", out.display()))?;
    let mut latencies = Vec::new();
    for entry in fs::read_dir(&scratch)? {
        let path = entry?.path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&format!("{name}.log."))) {
            latencies.extend(log_latencies(&fs::read_to_string(&path).unwrap_or_default()));
            let _ = fs::remove_file(&path);
        }
    }
    let mut fields: std::collections::BTreeMap<String, f64> =
        [("rps", tps), ("errors", (failed + aborted) as f64)].into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    if let Some([p50, p99, p999]) = percentiles(latencies) {
        fields.extend([("p50_ms".to_owned(), p50), ("p99_ms".to_owned(), p99), ("p999_ms".to_owned(), p999)]);
    }
    Ok(Measure { fields, rss_mb: None })
}

/// `tmp/pgbench`, owned by `postgres` when we are root (pgbench writes its logs there).
pub fn pgbench_dir(ctx: &Ctx) -> anyhow::Result<std::path::PathBuf> {
    let dir = ctx.workdir.join("pgbench");
    if !dir.is_dir() {
        fs::create_dir(&dir)?;
        if nix::unistd::geteuid().is_root() {
            let user = nix::unistd::User::from_name("postgres")?.context("no postgres user")?;
            nix::unistd::chown(&dir, Some(user.uid), Some(user.gid))?;
        }
    }
    Ok(dir)
}

/// pgbench's `tps = ...` and `number of failed transactions: N`.
fn parse_output(text: &str) -> Option<(f64, u64)> {
    let tps = text.lines().find_map(|l| l.strip_prefix("tps = "))?.split_whitespace().next()?.parse().ok()?;
    let failed = text
        .lines()
        .find_map(|l| l.strip_prefix("number of failed transactions: "))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Some((tps, failed))
}

/// The latencies (third field, microseconds) of a pgbench per-transaction log.
fn log_latencies(text: &str) -> Vec<u64> {
    text.lines().filter_map(|l| l.split_whitespace().nth(2)?.parse().ok()).collect()
}

/// p50, p99 and p99.9 in milliseconds (nearest rank), or nothing from no samples.
pub(super) fn percentiles(mut micros: Vec<u64>) -> Option<[f64; 3]> {
    if micros.is_empty() {
        return None;
    }
    micros.sort_unstable();
    let n = micros.len();
    let at = |q: f64| micros[((q * n as f64).ceil() as usize).clamp(1, n) - 1] as f64 / 1000.0;
    Some([at(0.50), at(0.99), at(0.999)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn products() -> Vec<(String, String)> {
        vec![("CAFE".into(), "Café \"solo\"".into()), ("TEA".into(), "Tea's".into()), ("X".into(), "X".into())]
    }

    #[test]
    fn every_placeholder_of_the_service_statement_is_replaced() {
        let sql = InsertOrders::sql();
        assert!(sql.contains("$25"), "the statement changed shape: {sql}");
        let a = substitute(&sql, &InsertOrders::PARAMETERS, 5).unwrap();
        assert!(!a.contains('$'), "a placeholder is left: {a}");
        assert!(a.starts_with("WITH input AS (SELECT * FROM unnest(ARRAY[(lpad("), "{a}");
        assert!(a.contains("ARRAY['open']::text[]") && a.contains("ARRAY[0::numeric]::numeric[]"), "{a}");
        assert!(a.contains("array_fill(") && a.contains(", ARRAY[5])::uuid[]"), "{a}");
        assert!(a.contains(":subs::numeric[]::numeric[], "), "{a}");
        assert!(a.contains("array_fill(NULL::text, ARRAY[5])::text[]) AS l"), "{a}");
        // What is not a placeholder is the service's text, unchanged.
        let mut rest = a.as_str();
        for piece in sql.split('$').skip(1).map(|p| p.trim_start_matches(|c: char| c.is_ascii_digit())) {
            let at = rest.find(piece).unwrap_or_else(|| panic!("{piece} missing"));
            rest = &rest[at + piece.len()..];
        }
    }

    #[test]
    fn an_unknown_parameter_stops_the_baseline_with_its_name() {
        let mut names = InsertOrders::PARAMETERS;
        names[3] = "table_numbers";
        let e = substitute(&InsertOrders::sql(), &names, 1).unwrap_err().to_string();
        assert!(e.contains("`table_numbers` ($4)") && e.contains("does not know"), "{e}");
        let e = substitute("SELECT $1, $3", &["ids", "keys"], 1).unwrap_err().to_string();
        assert!(e.contains("$3") && e.contains("only 2"), "{e}");
        let e = substitute("SELECT $1", &["ids", "keys"], 1).unwrap_err().to_string();
        assert!(e.contains("$2 (`keys`)"), "{e}");
        // $1 is not taken for the start of $12.
        assert_eq!(
            substitute("$1 $12", &["ids", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "keys"], 1)
                .map_err(|e| e.to_string()),
            Err("InsertOrders::sql() does not use $2 (`a`), which PARAMETERS names".to_owned())
        );
    }

    #[test]
    fn the_order_lines_and_both_scripts() {
        let lines = OrderLines::new(&products(), 2);
        assert_eq!(lines.lines[0], ("CAFE".into(), "Café \"solo\"".into(), "3.87".into(), 2, "7.74".into()));
        assert_eq!(lines.lines[1], ("TEA".into(), "Tea's".into(), "5.24".into(), 3, "15.72".into()));
        assert_eq!(lines.total, "23.46");
        let d = lines.defines(&["u1".into(), "u2".into()], &["l1".into(), "l2".into()], 7);
        assert_eq!(d[0], ("waiters".into(), "{u1,u2}".into()));
        assert_eq!(d[9], ("locations".into(), "{l1,l2}".into()));
        assert_eq!(d[10], ("directory".into(), "7".into()));
        assert_eq!(d[4], ("names".into(), "{\"Café \\\"solo\\\"\",\"Tea's\"}".into()));
        assert_eq!(d[8], ("nums".into(), "{1,2}".into()));
        let a = lines.service_script(2).unwrap();
        assert!(
            a.starts_with("\\set r1 random(28672, 32767)\n")
                && a.contains("\\set w random(1, 2)\n")
                && a.ends_with(";\n")
        );
        let b = lines.minimal_script(2);
        assert!(
            b.contains("(VALUES (1, 'CAFE', 'Café \"solo\"', 3.87, 2, 7.74), (2, 'TEA', 'Tea''s', 5.24, 3, 15.72))"),
            "{b}"
        );
    }

    #[test]
    fn pgbench_output_and_latencies() {
        let out = "transaction type: a.sql\nnumber of failed transactions: 3 (0.010%)\nlatency average = 3.4 ms\ntps = 4668.123456 (without initial connection time)\n";
        assert_eq!(parse_output(out), Some((4668.123456, 3)));
        assert_eq!(parse_output("tps = 10.5 (x)\n"), Some((10.5, 0)));
        assert_eq!(log_latencies("0 1 2500 0 1700000000 1\n1 1 abc\n0 2 1500 0 1 2\n"), vec![2500, 1500]);
        let p = percentiles((1..=1000).map(|i| i * 1000).collect()).unwrap();
        assert_eq!(p, [500.0, 990.0, 999.0]);
        assert_eq!(percentiles(vec![]), None);
    }
}
