//! The release binaries a run measures: this checkout's (built here unless `--skip-build`),
//! and with `--against REV` that revision's, built in a git worktree of its own with a target
//! folder of its own under `target/bench/against/` (reused by the next run).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use super::supervise::Supervisor;

/// One build's binaries and what it is.
#[derive(Debug, Clone)]
pub struct Build {
    /// How the table names it: `this build`, or the revision as given (`HEAD~1`).
    pub label: String,
    /// Its commit, short, and whether the checkout had uncommitted changes.
    pub describe: String,
    /// Short commit: a tag for raw file names (`server-<db>-<tag>.log`).
    pub tag: String,
    /// Its source tree: this checkout, or the worktree of `--against` (where its migration
    /// files are).
    pub src: PathBuf,
    pub api: PathBuf,
    pub admin: PathBuf,
    /// The Argon2id timing example (this build only).
    pub hash_time: Option<PathBuf>,
    /// db-admin is still growing: whether it has `rollup`, and `seed --skip-fk-checks`.
    pub has_rollup: bool,
    pub seed_extra: Vec<String>,
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn git(repo: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git").arg("-C").arg(repo).args(args).output().context("running git")?;
    if !out.status.success() {
        bail!("git {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// This checkout's binaries in `target_dir/release`, built first unless `skip_build`.
pub fn current(
    repo: &Path,
    target_dir: &Path,
    skip_build: bool,
    raw: &Path,
    sup: &Supervisor,
) -> anyhow::Result<Build> {
    if !skip_build {
        sup.say("building the release binaries (cargo build --release --bin comanda-api --bin db-admin --example hash_time)");
        let mut command = cargo();
        command
            .args(["build", "--release", "--bin", "comanda-api", "--bin", "db-admin", "--example", "hash_time"])
            .current_dir(repo);
        sup.run_ok(&mut command, &raw.join("build.log"), "the release build")?;
    }
    let release = target_dir.join("release");
    let hash_time = release.join("examples/hash_time");
    let (api, admin) = (release.join("comanda-api"), release.join("db-admin"));
    for binary in [&api, &admin, &hash_time] {
        if !binary.is_file() {
            bail!("missing {} (build it, or drop --skip-build)", binary.display());
        }
    }
    let short = git(repo, &["rev-parse", "--short", "HEAD"]).unwrap_or_else(|_| "?".to_owned());
    let dirty = git(repo, &["status", "--porcelain", "--untracked-files=no"]).is_ok_and(|s| !s.is_empty());
    let describe = if dirty { format!("{short} (uncommitted changes)") } else { short.clone() };
    finish(Build {
        label: "this build".to_owned(),
        describe,
        tag: short,
        src: repo.to_path_buf(),
        api,
        admin,
        hash_time: Some(hash_time),
        has_rollup: false,
        seed_extra: vec![],
    })
}

/// The release binaries of `rev`: a detached worktree `target/bench/against/<commit>/src` and
/// its own target folder beside it, both kept, so a second run against the same commit only
/// asks cargo whether anything changed.
pub fn against(repo: &Path, bench_root: &Path, rev: &str, raw: &Path, sup: &Supervisor) -> anyhow::Result<Build> {
    let sha = git(repo, &["rev-parse", "--verify", &format!("{rev}^{{commit}}")])
        .with_context(|| format!("--against {rev}: not a revision of this repository"))?;
    let short = git(repo, &["rev-parse", "--short=12", &sha])?;
    let home = bench_root.join("against").join(&short);
    let worktree = home.join("src");
    let target = home.join("target");
    let checked_out = git(&worktree, &["rev-parse", "HEAD"]).ok();
    match checked_out {
        Some(head) if head == sha && worktree.join("Cargo.toml").is_file() => {
            sup.say(&format!("--against {rev}: reusing the worktree {}", worktree.display()));
        }
        Some(_) => bail!(
            "{} is a checkout of another commit than {rev} ({short}); remove it (git worktree remove --force {}) and run again",
            worktree.display(),
            worktree.display()
        ),
        None => {
            sup.say(&format!("--against {rev}: git worktree add --detach {} {short}", worktree.display()));
            std::fs::create_dir_all(&home).with_context(|| home.display().to_string())?;
            let path = worktree.to_str().context("the worktree's path is not UTF-8")?;
            git(repo, &["worktree", "add", "--force", "--detach", path, &sha])?;
        }
    }
    let release = target.join("release");
    let first = if release.join("comanda-api").is_file() && release.join("db-admin").is_file() {
        "already built: cargo checks it is up to date"
    } else {
        "the first time: a whole release build, several minutes"
    };
    sup.say(&format!(
        "building {rev} ({short}): cargo build --release --bin comanda-api --bin db-admin, target {} ({first})",
        target.display()
    ));
    let mut command = cargo();
    command
        .args(["build", "--release", "--bin", "comanda-api", "--bin", "db-admin"])
        .current_dir(&worktree)
        .env("CARGO_TARGET_DIR", &target);
    sup.run_ok(&mut command, &raw.join(format!("build-{short}.log")), &format!("the release build of {rev}"))?;
    let tag = git(repo, &["rev-parse", "--short", &sha])?;
    // `abc1234` rather than `abc1234 (abc1234)` when the revision is a commit already.
    let label = if sha.starts_with(rev) { tag.clone() } else { rev.to_owned() };
    finish(Build {
        label,
        describe: tag.clone(),
        tag,
        src: worktree,
        api: release.join("comanda-api"),
        admin: release.join("db-admin"),
        hash_time: None,
        has_rollup: false,
        seed_extra: vec![],
    })
}

/// Asks this build's db-admin what it has.
fn finish(mut build: Build) -> anyhow::Result<Build> {
    let help = |args: &[&str]| -> String {
        Command::new(&build.admin)
            .args(args)
            .env_clear()
            .output()
            .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
            .unwrap_or_default()
    };
    let commands = help(&["--help"]);
    build.has_rollup = commands.lines().any(|l| l.trim_start().starts_with("rollup") && l.starts_with(' '));
    if help(&["seed", "--help"]).contains("--skip-fk-checks") {
        build.seed_extra.push("--skip-fk-checks".to_owned());
    }
    if commands.trim().is_empty() {
        bail!("{} --help printed nothing: is it a db-admin binary?", build.admin.display());
    }
    Ok(build)
}
