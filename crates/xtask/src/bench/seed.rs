//! The seeded databases (`bench_1m`, `bench_10m`): made by the service's own `db-admin init`
//! and `db-admin seed`, then reused by later runs when a marker says they were seeded with the
//! same parameters and the same migration files, and they still hold what was seeded.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;

use super::Ctx;
use super::builds::Build;
use super::cluster::BenchCluster;
use super::options::{Config, SEED_PASSWORD, human};
use super::server::db_admin;

/// A seeded database, and how it came to be (for the summary).
#[derive(Debug, Clone)]
pub struct Seeded {
    pub name: String,
    pub info: String,
    /// How long `db-admin rollup` took, when this db-admin has it.
    pub rollup_secs: Option<u64>,
}

/// A stable digest of the migration files (FNV-1a, 64 bits, over their paths and contents in
/// path order): migrations may be edited in place before a release, and a database made with
/// other files is seeded again rather than reused.
pub fn migrations_digest(repo: &Path) -> anyhow::Result<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else if path.extension().is_some_and(|e| e == "sql") {
                out.push(path);
            }
        }
        Ok(())
    }
    let root = repo.join("migrations");
    let mut files = Vec::new();
    walk(&root, &mut files).with_context(|| root.display().to_string())?;
    files.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for path in files {
        let relative = path.strip_prefix(repo).unwrap_or(&path).to_string_lossy().into_owned();
        for byte in relative.bytes().chain([0]).chain(fs::read(&path)?).chain([0]) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    Ok(format!("{hash:016x}"))
}

/// A value of an environment-like `KEY=VALUE` text (the seed markers).
fn marker_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
}

/// A whole number from a marker, with a sentence naming the key when it is not one.
fn marker_number(text: &str, key: &str) -> anyhow::Result<u64> {
    marker_value(text, key).with_context(|| format!("no {key}"))?.parse().with_context(|| format!("{key} not a number"))
}

/// The marker of a seed: its parameters and what it left.
fn marker(config: &Config, lines: u64, seeded_lines: i64, migrations: &str) -> String {
    format!(
        "M_LINES={lines}\nM_DAYS={}\nM_WAITERS={}\nM_PRODUCTS={}\nM_SEEDED_LINES={seeded_lines}\nM_SEEDED_AT={}\nM_MIGRATIONS={migrations}\n",
        config.days,
        config.waiters,
        config.products,
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
    )
}

/// Whether a marker describes a seed with these parameters and migrations.
fn marker_matches(text: &str, config: &Config, lines: u64, migrations: &str) -> bool {
    let number = |key| marker_number(text, key).ok();
    number("M_LINES") == Some(lines)
        && number("M_DAYS") == Some(config.days)
        && number("M_WAITERS") == Some(config.waiters)
        && number("M_PRODUCTS") == Some(config.products)
        && number("M_SEEDED_LINES").is_some()
        && marker_value(text, "M_MIGRATIONS") == Some(migrations)
}

/// The seeded database of `lines` lines: `bench_<lines>` (`bench_1m`), this build's, or
/// `bench_<lines>_<tag>` (`bench_1m_459eeb5`), the one the `--against` build of commit `tag`
/// seeds with its own db-admin when its migration files differ from this build's.
pub fn database_name(lines: u64, own_of: Option<&str>) -> String {
    match own_of {
        None => format!("bench_{}", human(lines)),
        Some(tag) => {
            let tag: String = tag.chars().filter(char::is_ascii_alphanumeric).collect();
            format!("bench_{}_{}", human(lines), tag.to_ascii_lowercase())
        }
    }
}

/// `name` (see [`database_name`]) seeded with `lines` lines by `build`'s db-admin, reused when
/// its marker matches (the same parameters, and `migrations`, the digest of `build`'s
/// migration files) and it holds the lines seeded (orders that something else added since
/// make it bigger than its name: it is seeded again), else dropped and seeded anew.
pub fn ensure_seeded(
    ctx: &Ctx,
    cluster: &BenchCluster,
    build: &Build,
    lines: u64,
    name: &str,
    migrations: &str,
) -> anyhow::Result<Seeded> {
    let (config, sup) = (&ctx.config, &ctx.sup);
    let name = name.to_owned();
    let url = cluster.url(&name);
    let marker_path = cluster.base_dir.join(format!("seeded-{name}.env"));
    let exists = cluster.database_exists(&name)?;
    let admin = |args: &[&str], log: &str| -> anyhow::Result<()> {
        let out = ctx.raw.join(format!("{log}-{name}.log"));
        sup.run_ok(&mut db_admin(build, &ctx.workdir, &url, args), &out, &format!("db-admin {} on {name}", args[0]))
    };
    if !config.reseed
        && exists
        && let Ok(text) = fs::read_to_string(&marker_path)
    {
        if marker_matches(&text, config, lines, migrations) {
            let seeded_lines = marker_number(&text, "M_SEEDED_LINES")?;
            let seeded_at = marker_value(&text, "M_SEEDED_AT").unwrap_or("?").to_owned();
            match admin(&["init"], "init") {
                Ok(()) => {
                    let count = cluster.sql(&name)?.count("SELECT count(*) AS n FROM order_items")? as u64;
                    if count == seeded_lines {
                        let rollup_secs = rollup(ctx, build, &name, &url)?;
                        sup.say(&format!("reusing {name} from an earlier run: {count} order lines seeded at {seeded_at} (saves the seeding)"));
                        let orders = cluster.sql(&name)?.count("SELECT count(*) AS n FROM orders")?;
                        let info = format!(
                            "reused: {count} lines in {orders} orders, seeded {seeded_at} over {} days",
                            config.days
                        );
                        return Ok(Seeded { name, info, rollup_secs });
                    }
                    sup.say(&format!(
                        "{name} has {count} order lines, not the {seeded_lines} seeded: seeding it again"
                    ));
                }
                Err(e) => sup.say(&format!("db-admin init fails on the existing {name} ({e:#}): seeding it again")),
            }
        } else {
            sup.say(&format!("{name} was seeded with other parameters or other migration files: seeding it again"));
        }
    }
    if exists {
        cluster.drop_database(&name)?;
    }
    let _ = fs::remove_file(&marker_path);
    let orders = Config::orders_for(lines);
    let (days, waiters, products) = (config.days.to_string(), config.waiters.to_string(), config.products.to_string());
    sup.say(&format!(
        "creating {name} with the db-admin of {}: db-admin init, then db-admin seed --orders {orders} --days {days} --waiters {waiters} --products {products} (about {lines} lines)",
        build.label
    ));
    admin(&["init"], "init")?;
    let started = Instant::now();
    let orders_arg = orders.to_string();
    let mut args =
        vec!["seed", "--orders", &orders_arg, "--days", &days, "--waiters", &waiters, "--products", &products];
    args.extend(["--password", SEED_PASSWORD]);
    args.extend(build.seed_extra.iter().map(String::as_str));
    admin(&args, "seed")?;
    let seed_secs = started.elapsed().as_secs();
    sup.say(&format!("seeded {name} in {seed_secs} s; VACUUM ANALYZE and CHECKPOINT (stable plans and hint bits)"));
    let mut sql = cluster.sql(&name)?;
    sql.exec("VACUUM (ANALYZE) users, orders, order_items, payments")?;
    sql.exec("CHECKPOINT")?;
    let rollup_secs = rollup(ctx, build, &name, &url)?;
    let seeded_lines = cluster.sql(&name)?.count("SELECT count(*) AS n FROM order_items")?;
    fs::write(&marker_path, marker(config, lines, seeded_lines, migrations))?;
    let info = format!("seeded now: {seeded_lines} lines in {orders} orders over {days} days, in {seed_secs} s");
    Ok(Seeded { name, info, rollup_secs })
}

/// `db-admin rollup` (when this db-admin has it), so that the server's first roll-up finds
/// little to do; how long it took is one of the summary's facts.
fn rollup(ctx: &Ctx, build: &Build, name: &str, url: &str) -> anyhow::Result<Option<u64>> {
    if !build.has_rollup {
        return Ok(None);
    }
    let started = Instant::now();
    let out = ctx.raw.join(format!("rollup-{name}.log"));
    ctx.sup.run_ok(
        &mut db_admin(build, &ctx.workdir, url, &["rollup"]),
        &out,
        &format!("db-admin rollup on {name}"),
    )?;
    let secs = started.elapsed().as_secs();
    ctx.sup.say(&format!("{name}: db-admin rollup took {secs} s"));
    Ok(Some(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_match_their_own_parameters_only() {
        let config = super::super::options::defaults();
        let text = marker(&config, 20_000, 19_990, "abc");
        assert!(marker_matches(&text, &config, 20_000, "abc"));
        assert!(!marker_matches(&text, &config, 60_000, "abc"));
        assert!(!marker_matches(&text, &config, 20_000, "abd"));
        let other = Config { waiters: 10, ..config.clone() };
        assert!(!marker_matches(&text, &other, 20_000, "abc"));
        assert!(!marker_matches("M_LINES=20000\n", &config, 20_000, "abc"));
        assert_eq!(marker_value("A=1\nLINES=20000\n", "LINES"), Some("20000"));
        assert_eq!(marker_number("LINES=x", "LINES").map_err(|e| e.to_string()).unwrap_err(), "LINES not a number");
    }

    #[test]
    fn database_names() {
        assert_eq!(database_name(1_000_000, None), "bench_1m");
        assert_eq!(database_name(10_000_000, Some("459eeb5")), "bench_10m_459eeb5");
        assert_eq!(database_name(20_000, Some("AB-c1")), "bench_20k_abc1");
    }

    #[test]
    fn the_migrations_digest_is_stable_and_sees_edits() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let digest = migrations_digest(&repo).unwrap();
        assert_eq!(digest.len(), 16);
        assert_eq!(digest, migrations_digest(&repo).unwrap());
    }
}
