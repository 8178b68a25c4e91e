//! The workloads W0 to W5 as wrk runs against the servers of a phase, W6 as this process's own
//! stream clients, and the baselines in between: each measured run after a warm-up and a reset
//! of the server's peak RSS; with `--against`, each run on both builds in turn (which goes
//! first alternates), each with the fixtures of the database it runs on.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::Ctx;
use super::baselines::{self, OrderLines};
use super::cluster::BenchCluster;
use super::fixtures::{Fixtures, report_path};
use super::kitchen;
use super::open_orders;
use super::options::{
    ADD_LINES, CONNS_HEALTH, CONNS_LOGIN, CONNS_MIX, CONNS_RATE, CONNS_REPORT, LINES_SET, MENU_LINES, MIX_LINES,
    RATE_DELAY_MS, SEED_PASSWORD, W6_DISPLAYS, W6_LINES, W6_TICKETS_PER_SEC, Workload,
};
use super::report::{Hash, Row};
use super::server::Server;
use super::wrk::{self, Measure};

/// The servers of a phase: this build's, and the other build's with `--against` (the other one
/// idle while this one is measured, and the reverse).
pub struct Servers {
    pub this: Server,
    pub other: Option<Other>,
}

/// The other build's server in a phase.
pub struct Other {
    pub server: Server,
    /// Its short commit, for the raw files' names.
    pub tag: String,
    /// The database it runs on: the phase's, when both builds have the same migration files,
    /// else one its own db-admin seeded.
    pub database: String,
}

/// A workload's script variables on each build: the same files unless the other build runs on
/// a database of its own (its tokens, order ids and product names are then its database's).
#[derive(Debug, Clone)]
struct Env {
    this: Vec<(String, String)>,
    other: Vec<(String, String)>,
}

impl Env {
    fn none() -> Self {
        Self { this: vec![], other: vec![] }
    }

    /// Both builds' variables from their fixtures.
    fn of(this: &Fixtures, other: &Fixtures, vars: impl Fn(&Fixtures) -> Vec<(String, String)>) -> Self {
        Self { this: vars(this), other: vars(other) }
    }

    /// The same, with `more` on both sides.
    fn with(&self, more: &[(&str, &str)]) -> Self {
        Self { this: [&self.this[..], &vars(more)].concat(), other: [&self.other[..], &vars(more)].concat() }
    }
}

/// The non-empty lines of a fixture file.
fn read_lines(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = fs::read_to_string(path).with_context(|| path.display().to_string())?;
    Ok(text.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect())
}

/// What a phase adds to the summary.
#[derive(Debug, Default)]
pub struct Measured {
    pub rows: BTreeMap<String, Row>,
    pub baselines: BTreeMap<String, (String, Measure)>,
    pub hash: Option<Hash>,
    pub lone_login: Option<(Measure, u64)>,
    /// Whether `/proc/PID/clear_refs` refused a reset (RSS are then peaks since start).
    pub rss_not_reset: bool,
}

/// One workload: its row, its script and the script's variables.
struct Spec<'a> {
    key: &'a str,
    label: String,
    conns: u64,
    script: &'a str,
    env: Env,
    /// Vacuum and checkpoint the database first (write workloads).
    quiesce: bool,
    /// Run on this build only (a workload the other build has no route for).
    this_only: bool,
}

pub struct Phase<'a> {
    pub ctx: &'a Ctx,
    pub cluster: &'a BenchCluster,
    /// This build's database (the other build's is in [`Other`]); the baselines run on it.
    pub database: &'a str,
    pub servers: &'a Servers,
    pub measured: &'a mut Measured,
    /// Runs so far: which build goes first alternates with it.
    turn: usize,
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

impl<'a> Phase<'a> {
    pub fn new(
        ctx: &'a Ctx,
        cluster: &'a BenchCluster,
        database: &'a str,
        servers: &'a Servers,
        measured: &'a mut Measured,
    ) -> Self {
        Self { ctx, cluster, database, servers, measured, turn: 0 }
    }

    /// Warm-up, reset of the peak RSS, measured run on this build (`other` false) or the other
    /// one; raw output `raw/<name>.txt`.
    fn measure(&mut self, other: bool, name: &str, spec: &Spec) -> anyhow::Result<Measure> {
        let (ctx, config) = (self.ctx, &self.ctx.config);
        let servers = self.servers;
        let (server, database, env) = match (&servers.other, other) {
            (Some(o), true) => (&o.server, o.database.as_str(), &spec.env.other),
            _ => (&servers.this, self.database, &spec.env.this),
        };
        if spec.quiesce {
            self.cluster.quiesce(database)?;
        }
        if config.warmup > 0 {
            let mut command = ctx.wrk.command(&server.url, spec.conns, spec.script, config.warmup, env);
            ctx.wrk.run(&ctx.sup, &mut command, &ctx.raw.join(format!("{name}.warmup.txt")), name)?;
        }
        if !server.reset_hwm() {
            self.measured.rss_not_reset = true;
        }
        let out = ctx.raw.join(format!("{name}.txt"));
        let mut command = ctx.wrk.command(&server.url, spec.conns, spec.script, config.duration, env);
        ctx.wrk.run(&ctx.sup, &mut command, &out, name)?;
        let mut measure = wrk::read_result(&out, name)?;
        measure.rss_mb = server.hwm_mb();
        Ok(measure)
    }

    /// `one(phase, other, raw name)` on this build, and on the other one when there is one
    /// (and `this_only` is false), which goes first alternating from one workload to the next.
    fn each_build(
        &mut self,
        key: &str,
        this_only: bool,
        mut one: impl FnMut(&mut Self, bool, &str) -> anyhow::Result<Measure>,
    ) -> anyhow::Result<(Measure, Option<Measure>)> {
        let servers = self.servers;
        Ok(match &servers.other {
            None => (one(self, false, key)?, None),
            Some(_) if this_only => (one(self, false, key)?, None),
            Some(other) => {
                let other_name = format!("{key}-{}", other.tag);
                self.turn += 1;
                if self.turn % 2 == 1 {
                    let this = one(self, false, key)?;
                    (this, Some(one(self, true, &other_name)?))
                } else {
                    let other = one(self, true, &other_name)?;
                    (one(self, false, key)?, Some(other))
                }
            }
        })
    }

    /// The workload on this build, and on the other one when there is one.
    fn run(&mut self, spec: Spec) -> anyhow::Result<()> {
        let config = &self.ctx.config;
        self.ctx.sup.say(&format!(
            "{}: {} connections, {}s warm-up + {}s",
            spec.label, spec.conns, config.warmup, config.duration
        ));
        let (this, other) =
            self.each_build(spec.key, spec.this_only, |phase, other, name| phase.measure(other, name, &spec))?;
        self.measured.rows.insert(spec.key.to_owned(), Row { label: spec.label, conns: spec.conns, this, other });
        Ok(())
    }

    /// W3 on this phase's database: the 30- and 365-day reports as the admin (`admin_tokens`:
    /// this build's, the other build's; the same token when they share the database).
    pub fn reports(&mut self, admin_tokens: (&str, &str), size: &str, which: &str) -> anyhow::Result<()> {
        for days in [30, 365] {
            let path = report_path(days);
            let env = |token: &str| vars(&[("BENCH_ADMIN_TOKEN", token), ("BENCH_REPORT_PATH", &path)]);
            self.run(Spec {
                key: &format!("w3_{which}_{days}"),
                label: format!("W3 report {days} days, {size} lines"),
                conns: CONNS_REPORT,
                script: "report.lua",
                env: Env { this: env(admin_tokens.0), other: env(admin_tokens.1) },
                quiesce: false,
                this_only: false,
            })?;
        }
        Ok(())
    }

    /// Phase 1: every selected workload but W3's large half, in the order of the former
    /// runner (W3 first, on the database as seeded; W1 before W2, so the logins' memory counts).
    /// `other_fixtures`: the other build's, when it runs on a database of its own (else it
    /// gets `fixtures`, valid on the database both share).
    pub fn small(&mut self, fixtures: &Fixtures, other_fixtures: Option<&Fixtures>, size: &str) -> anyhow::Result<()> {
        let config = &self.ctx.config;
        let of = other_fixtures.unwrap_or(fixtures);
        let path = |p: &std::path::Path| p.display().to_string();
        let logins =
            Env::of(fixtures, of, |f| vars(&[("BENCH_EMAILS", &path(&f.emails)), ("BENCH_PASSWORD", SEED_PASSWORD)]));
        let orders = Env::of(fixtures, of, |f| {
            vars(&[
                ("BENCH_TOKENS", &path(&f.tokens)),
                ("BENCH_ORDER_IDS", &path(&f.order_ids)),
                ("BENCH_PRODUCTS", &path(&f.products_file)),
            ])
        });
        if config.runs(Workload::W3) {
            self.reports((&fixtures.admin_token, &of.admin_token), size, "small")?;
        }
        if config.runs(Workload::W0) {
            let label = "W0 GET /health/live".to_owned();
            self.run(Spec {
                key: "w0",
                label,
                conns: CONNS_HEALTH,
                script: "health.lua",
                env: Env::none(),
                quiesce: false,
                this_only: false,
            })?;
        }
        if config.runs(Workload::W1) {
            let label = "W1 login storm".to_owned();
            self.run(Spec {
                key: "w1",
                label,
                conns: CONNS_LOGIN,
                script: "login.lua",
                env: logins.clone(),
                quiesce: false,
                this_only: false,
            })?;
        }
        if config.needs_hash() {
            self.hash()?;
        }
        if config.runs(Workload::W1) {
            self.lone_login(&logins.this)?;
        }
        if config.runs(Workload::W1b) {
            let env = orders.with(&[("BENCH_DELAY_MS", &RATE_DELAY_MS.to_string())]);
            let label = "W1b get order at ~fixed rate, alone".to_owned();
            self.run(Spec {
                key: "w1b_alone",
                label,
                conns: CONNS_RATE,
                script: "get_order.lua",
                env: env.clone(),
                quiesce: false,
                this_only: false,
            })?;
            self.storm(&env, &logins)?;
        }
        if config.runs(Workload::W2) {
            for conns in [config.conns_low, config.conns_high] {
                for n in LINES_SET {
                    if conns == config.conns_low {
                        self.baselines(fixtures, n)?;
                    }
                    self.run(Spec {
                        key: &format!("w2_{n}_c{conns}"),
                        label: format!("W2 create order, {n} line(s)"),
                        conns,
                        script: "create_order.lua",
                        env: orders.with(&[("BENCH_LINES", &n.to_string())]),
                        quiesce: true,
                        this_only: false,
                    })?;
                    // The same orders from the menu, right after: their ratio to the open
                    // lines is the menu's cost (on this build only when the other has no menu).
                    if n == MENU_LINES
                        && let Some(items) = &fixtures.menu_items
                    {
                        let mut env = orders.with(&[("BENCH_LINES", &n.to_string())]);
                        env.this.push(("BENCH_MENU_ITEMS".to_owned(), path(items)));
                        let theirs = of.menu_items.as_ref().filter(|_| self.servers.other.is_some());
                        if let Some(theirs) = theirs {
                            env.other.push(("BENCH_MENU_ITEMS".to_owned(), path(theirs)));
                        }
                        self.run(Spec {
                            key: &format!("w2m_{n}_c{conns}"),
                            label: format!("W2m create order, {n} menu lines"),
                            conns,
                            script: "create_order.lua",
                            env,
                            quiesce: true,
                            this_only: theirs.is_none(),
                        })?;
                    }
                }
            }
        }
        if config.runs(Workload::W4) {
            self.run(Spec {
                key: "w4",
                label: "W4 mix 80% get / 15% create / 5% list".to_owned(),
                conns: CONNS_MIX,
                script: "mix.lua",
                env: orders.with(&[("BENCH_LINES", &MIX_LINES.to_string())]),
                quiesce: true,
                this_only: false,
            })?;
        }
        if config.runs(Workload::W5) {
            self.add_lines(fixtures, of)?;
        }
        if config.runs(Workload::W6) {
            self.kitchen(fixtures, of)?;
        }
        Ok(())
    }

    /// W5, with baseline (c) right before it: fresh open orders for each run (made through the
    /// servers while they are idle), then (c) on this build's database, then W5 on each build
    /// that has the route (on this build only when the other one answers 404).
    fn add_lines(&mut self, fixtures: &Fixtures, of: &Fixtures) -> anyhow::Result<()> {
        let (ctx, servers) = (self.ctx, self.servers);
        let (config, api, sup) = (&ctx.config, &ctx.api, &ctx.sup);
        let count = config.add_orders();
        let names = |f: &Fixtures| f.products.iter().map(|(_, name)| name.clone()).collect::<Vec<_>>();
        let (this_tokens, this_names) = (read_lines(&fixtures.tokens)?, names(fixtures));
        let theirs = match &servers.other {
            Some(o) => {
                let (tokens, products) = (read_lines(&of.tokens)?, names(of));
                let first = tokens.first().context("the other build has no waiter tokens")?;
                if open_orders::adds_lines(api, &o.server.url, first, &products)? {
                    Some((o, tokens, products))
                } else {
                    sup.say(&format!(
                        "{}: no POST /api/v1/orders/{{id}}/items (404): W5 runs on this build only",
                        o.tag
                    ));
                    None
                }
            }
            None => None,
        };
        sup.say(&format!("W5: making {count} open orders of one line for each run (POST /api/v1/orders)"));
        let url = &servers.this.url;
        let baseline_orders = open_orders::make(api, url, &this_tokens, &this_names, count)?;
        let this_orders = open_orders::make(api, url, &this_tokens, &this_names, count)?;
        let this_file = ctx.run_dir.join("add_orders.txt");
        open_orders::write(&this_file, &this_orders)?;
        let mut env = Env::of(fixtures, of, |f| {
            vars(&[
                ("BENCH_TOKENS", &f.tokens.display().to_string()),
                ("BENCH_PRODUCTS", &f.products_file.display().to_string()),
            ])
        });
        env.this.push(("BENCH_ADD_ORDERS".to_owned(), this_file.display().to_string()));
        if let Some((o, tokens, products)) = &theirs {
            let orders = open_orders::make(api, &o.server.url, tokens, products, count)?;
            let file = ctx.run_dir.join(format!("add_orders-{}.txt", o.tag));
            open_orders::write(&file, &orders)?;
            env.other.push(("BENCH_ADD_ORDERS".to_owned(), file.display().to_string()));
        }
        self.add_lines_baseline(fixtures, &baseline_orders)?;
        self.run(Spec {
            key: "w5",
            label: format!("W5 add {ADD_LINES} lines to an open order"),
            conns: config.pool,
            script: "add_lines.lua",
            env,
            quiesce: true,
            this_only: theirs.is_none(),
        })
    }

    /// Baseline (c) over `orders` (open orders of one line, made like W5's): its table of
    /// orders, pgbench, then a check that every order's lines are numbered 1 to their count.
    fn add_lines_baseline(&mut self, fixtures: &Fixtures, orders: &[(uuid::Uuid, usize)]) -> anyhow::Result<()> {
        let ctx = self.ctx;
        if self.cluster.major < 14 {
            bail!(
                "baseline (c) needs pgbench's pipelines (PostgreSQL 14 or later); this cluster is {}",
                self.cluster.major
            );
        }
        let ids: Vec<uuid::Uuid> = orders.iter().map(|(id, _)| *id).collect();
        self.cluster.sql(self.database)?.exec(&baselines::add_orders_table(&ids))?;
        let lines = OrderLines::new(&fixtures.products, ADD_LINES as usize);
        let script = lines.add_lines_script(ids.len() as u64);
        let raw = ctx.raw.join("pgbench");
        fs::create_dir_all(&raw)?;
        let scratch = baselines::pgbench_dir(ctx)?;
        let (name, file) = ("c_add_lines", "c_add_lines.sql");
        fs::write(raw.join(file), &script)?;
        fs::write(scratch.join(file), &script)?;
        let measure = baselines::run_pgbench(ctx, self.cluster, self.database, name, &scratch.join(file), &[])?;
        let wrong = self.cluster.sql(self.database)?.count(baselines::ADD_LINES_CHECK)?;
        if wrong > 0 {
            ctx.sup.warn(&format!("baseline (c): {wrong} orders have lines not numbered 1 to their count"));
        }
        let mut measure = measure;
        measure.fields.insert("misnumbered".to_owned(), wrong as f64);
        let errors = measure.errors() + wrong as u64;
        measure.fields.insert("errors".to_owned(), errors as f64);
        let label = format!("(c) add {ADD_LINES} lines: row lock + one CTE, one round trip");
        self.measured.baselines.insert(name.to_owned(), (label, measure));
        Ok(())
    }

    /// W6 on each build that has the stream (this build only when the other answers 404).
    fn kitchen(&mut self, fixtures: &Fixtures, of: &Fixtures) -> anyhow::Result<()> {
        let (ctx, servers) = (self.ctx, self.servers);
        let config = &ctx.config;
        let plan = |f: &Fixtures, url: &str| -> anyhow::Result<kitchen::Plan> {
            let tokens = read_lines(&f.tokens)?;
            let (location, waiter_tokens) = kitchen::busiest_location(&f.waiter_locations, &tokens)
                .context("W6: no seeded waiter works in a location")?;
            Ok(kitchen::Plan {
                url: url.to_owned(),
                location,
                display_token: f.admin_token.clone(),
                waiter_tokens,
                products: f.products.iter().map(|(_, name)| name.clone()).collect(),
                displays: W6_DISPLAYS as usize,
                per_sec: W6_TICKETS_PER_SEC,
                lines: W6_LINES as usize,
                warmup: config.warmup,
                duration: config.duration,
            })
        };
        let this_plan = plan(fixtures, &servers.this.url)?;
        let other_plan = match &servers.other {
            // A build whose users have no locations (before them) has no kitchen either.
            Some(o) => match plan(of, &o.server.url) {
                Err(_) => {
                    ctx.sup.say(&format!("{}: no locations, so no kitchen stream: W6 runs on this build only", o.tag));
                    None
                }
                Ok(theirs) => match ctx.api.status(&o.server.url, &theirs.stream_path(), &theirs.display_token)? {
                    200 => Some(theirs),
                    404 | 405 => {
                        ctx.sup.say(&format!(
                            "{}: no GET /api/v1/kitchen/stream (404): W6 runs on this build only",
                            o.tag
                        ));
                        None
                    }
                    status => bail!("GET {} on {}: {status}", theirs.stream_path(), o.tag),
                },
            },
            None => None,
        };
        if cfg!(debug_assertions) {
            ctx.sup.warn(
                "W6's stream clients are this debug build of xtask (cargo xtask bench): they take several times the CPU \
                 of a release build from the cores the server uses; scripts/bench/run.sh runs a release build",
            );
        }
        let label = format!("W6 kitchen stream: {W6_DISPLAYS} displays, {W6_TICKETS_PER_SEC} tickets/s");
        ctx.sup.say(&format!("{label}: {}s warm-up + {}s", config.warmup, config.duration));
        let (this, other) = self.each_build("w6", other_plan.is_none(), |phase, other, name| {
            let plan = match (&other_plan, other) {
                (Some(theirs), true) => theirs,
                _ => &this_plan,
            };
            phase.kitchen_once(other, name, plan)
        })?;
        self.measured.rows.insert("w6".to_owned(), Row { label, conns: W6_DISPLAYS, this, other });
        Ok(())
    }

    /// One W6 run on this build (`other` false) or the other one; details in `raw/<name>.txt`.
    fn kitchen_once(&mut self, other: bool, name: &str, plan: &kitchen::Plan) -> anyhow::Result<Measure> {
        let ctx = self.ctx;
        let servers = self.servers;
        let (server, database) = match (&servers.other, other) {
            (Some(o), true) => (&o.server, o.database.as_str()),
            _ => (&servers.this, self.database),
        };
        self.cluster.quiesce(database)?;
        let cluster = self.cluster;
        let query = format!(
            "SELECT coalesce((SELECT last_event FROM kitchen_streams WHERE location_id = '{}'), 0) AS n",
            plan.location
        );
        let head = || cluster.sql(database)?.count(&query);
        let reset = Cell::new(true);
        let reset_rss = || reset.set(server.reset_hwm());
        let mut measure =
            kitchen::run(&ctx.sup, plan, server.pid, &reset_rss, &head, &ctx.raw.join(format!("{name}.txt")))?;
        if !reset.get() {
            self.measured.rss_not_reset = true;
        }
        measure.rss_mb = server.hwm_mb();
        Ok(measure)
    }

    /// One Argon2id hash at the default parameters, measured while the service is idle: the
    /// service's own hasher as a hashing thread runs it during a storm, on memory kept from the
    /// previous hash (crates/infrastructure/examples/hash_time.rs).
    fn hash(&mut self) -> anyhow::Result<()> {
        let ctx = self.ctx;
        let Some(binary) = &ctx.this_build.hash_time else { bail!("this build has no hash_time example") };
        ctx.sup.say("one Argon2id hash: the service's hasher on kept memory, median of 50");
        let out = ctx.raw.join("hash_time.txt");
        let mut command = std::process::Command::new(binary);
        command.arg("50").env_clear();
        ctx.sup.run_ok(&mut command, &out, &binary.display().to_string())?;
        let text = fs::read_to_string(&out)?;
        let detail = text.lines().find_map(|l| l.strip_prefix("HASH ")).context("no HASH line in hash_time.txt")?;
        let median_ms = detail
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix("median_ms="))
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no median in {}", out.display()))?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        self.measured.hash = Some(Hash { median_ms, detail: detail.to_owned(), cores });
        Ok(())
    }

    /// A lone login end to end: sequential logins at concurrency 1 on this build, where the
    /// hashing thread frees its memory after each login and faults 19 MiB in again.
    fn lone_login(&mut self, logins: &[(String, String)]) -> anyhow::Result<()> {
        let ctx = self.ctx;
        let secs = ctx.config.duration.min(10);
        ctx.sup.say(&format!("a lone login: sequential logins at concurrency 1 for {secs}s"));
        let out = ctx.raw.join("hash_c1.txt");
        let mut command = ctx.wrk.command(&self.servers.this.url, 1, "login.lua", secs, logins);
        ctx.wrk.run(&ctx.sup, &mut command, &out, "hash_c1")?;
        self.measured.lone_login = Some((wrk::read_result(&out, "hash_c1")?, secs));
        Ok(())
    }

    /// W1b during a W1 storm started by a second wrk in the background, on each build; the
    /// storm's own figures make the row after it.
    fn storm(&mut self, env: &Env, logins: &Env) -> anyhow::Result<()> {
        let ctx = self.ctx;
        let config = &ctx.config;
        ctx.sup.say("W1b under the W1 login storm (storm: its own wrk in the background)");
        let storm_secs = config.warmup + config.duration + 3;
        let servers = self.servers;
        let mut one = |other: bool, suffix: &str| -> anyhow::Result<(Measure, Measure)> {
            let (server, logins) = match (&servers.other, other) {
                (Some(o), true) => (&o.server, &logins.other),
                _ => (&servers.this, &logins.this),
            };
            let out = ctx.raw.join(format!("w1b_storm_logins{suffix}.txt"));
            let mut command = ctx.wrk.command(&server.url, CONNS_LOGIN, "login.lua", storm_secs, logins);
            let file = fs::File::create(&out)?;
            command.stdin(std::process::Stdio::null()).stdout(file.try_clone()?).stderr(file);
            let mut storm = ctx.sup.spawn(&mut command)?;
            ctx.sup.sleep(Duration::from_secs(1))?;
            let spec = Spec {
                key: "w1b_storm",
                label: String::new(),
                conns: CONNS_RATE,
                script: "get_order.lua",
                env: env.clone(),
                quiesce: false,
                this_only: false,
            };
            let measured = self.measure(other, &format!("w1b_storm{suffix}"), &spec);
            if measured.is_err() {
                let _ = storm.kill();
            }
            let status = ctx.sup.wait(&mut storm)?;
            let measured = measured?;
            if !status.success() {
                bail!("the background login storm failed (see {})", out.display());
            }
            Ok((measured, wrk::read_result(&out, "w1b_storm_logins")?))
        };
        let (this, other) = match &servers.other {
            None => (one(false, "")?, None),
            Some(o) => {
                let other = one(true, &format!("-{}", o.tag))?;
                (one(false, "")?, Some(other))
            }
        };
        let rows = &mut self.measured.rows;
        rows.insert(
            "w1b_storm".into(),
            Row {
                label: "W1b get order at ~fixed rate, during W1 storm".into(),
                conns: CONNS_RATE,
                this: this.0,
                other: other.as_ref().map(|o| o.0.clone()),
            },
        );
        rows.insert(
            "w1b_storm_logins".into(),
            Row {
                label: "W1 storm running during W1b (whole run)".into(),
                conns: CONNS_LOGIN,
                this: this.1,
                other: other.map(|o| o.1),
            },
        );
        Ok(())
    }

    /// The (a)/(b) pair with `n` lines, right before W2 at the low concurrency with as many
    /// lines, while the servers are idle.
    fn baselines(&mut self, fixtures: &Fixtures, n: u64) -> anyhow::Result<()> {
        let ctx = self.ctx;
        let lines = OrderLines::new(&fixtures.products, n as usize);
        let directory = self.cluster.sql(self.database)?.count("SELECT version AS n FROM staff_directory")?;
        let defines = lines.defines(&fixtures.waiter_ids, &fixtures.waiter_locations, directory);
        let waiters = fixtures.waiter_ids.len();
        let raw = ctx.raw.join("pgbench");
        fs::create_dir_all(&raw)?;
        let scratch = baselines::pgbench_dir(ctx)?;
        let shown: String = defines.iter().map(|(k, v)| format!("-D '{}={}'\n", k, v.replace('\'', "'\\''"))).collect();
        fs::write(raw.join(format!("defines_{n}.txt")), shown)?;
        for (key, file, label, script) in [
            (
                "a",
                format!("a_service_{n}.sql"),
                format!("(a) service SQL, {n} line(s)"),
                lines.service_script(waiters)?,
            ),
            ("b", format!("b_minimal_{n}.sql"), format!("(b) minimal CTE, {n} line(s)"), lines.minimal_script(waiters)),
        ] {
            fs::write(raw.join(&file), &script)?;
            fs::write(scratch.join(&file), &script)?;
            let name = format!("{key}_{n}");
            let measure =
                baselines::run_pgbench(ctx, self.cluster, self.database, &name, &scratch.join(&file), &defines)?;
            self.measured.baselines.insert(name, (label, measure));
        }
        Ok(())
    }
}
