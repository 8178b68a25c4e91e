//! A PostgreSQL cluster of our own, started from the system's binaries when no `DATABASE_URL`
//! is given: initdb on first use, a free loopback port, a private socket directory, the data
//! kept across restarts. As root, PostgreSQL runs as the `postgres` user (it refuses root).

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use diesel::prelude::*;
use diesel::sql_types::Text;
use tracing::{info, warn};

#[derive(Debug, thiserror::Error)]
pub enum LocalPgError {
    #[error(
        "PostgreSQL's server programs (initdb, pg_ctl, postgres) were not found on PATH or under \
         /usr/lib/postgresql/*/bin; install them (apt-get install postgresql) or set DATABASE_URL"
    )]
    NoBinaries,
    #[error(
        "this process runs as root and PostgreSQL refuses to, but there is no `postgres` user to \
         run it as; install the postgresql package (it creates the user) or set DATABASE_URL"
    )]
    NoPostgresUser,
    #[error("could not prepare {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("could not create the database {name}: {detail}")]
    CreateDatabase { name: String, detail: String },
}

/// How the cluster is started.
#[derive(Debug, Clone, Default)]
pub struct LocalPgOptions {
    /// Extra `-c name=value` server settings (tests turn durability off for speed).
    pub server_settings: Vec<(String, String)>,
    /// Environment variables of the server's processes (a test's `LOCPATH`, say).
    pub environment: Vec<(String, String)>,
}

/// A running local cluster. Stops it on drop if this process started it.
#[derive(Debug)]
pub struct LocalPostgres {
    data_dir: PathBuf,
    bin_dir: PathBuf,
    port: u16,
    run_as_postgres: bool,
    owned: bool,
    version: String,
    /// Extra `-c name=value` settings the server is started with (kept for a restart).
    server_settings: Vec<(String, String)>,
    /// Environment variables of the server's processes.
    environment: Vec<(String, String)>,
}

impl LocalPostgres {
    /// Starts (or joins, if another process of ours already runs it) the cluster under
    /// `base_dir/postgres`.
    pub fn start(base_dir: &Path, options: &LocalPgOptions) -> Result<Self, LocalPgError> {
        let bin_dir = find_bin_dir().ok_or(LocalPgError::NoBinaries)?;
        let run_as_postgres = nix::unistd::geteuid().is_root();
        let owner = if run_as_postgres {
            Some(nix::unistd::User::from_name("postgres").ok().flatten().ok_or(LocalPgError::NoPostgresUser)?)
        } else {
            None
        };
        let base_dir = absolute(base_dir)?;
        fs::create_dir_all(&base_dir).map_err(|source| LocalPgError::Io { path: base_dir.clone(), source })?;
        let home = cluster_home(&base_dir, run_as_postgres)?;
        let data_dir = home.join("postgres");
        let socket_dir = home.join("postgres-run");
        for dir in [&home, &data_dir, &socket_dir] {
            fs::create_dir_all(dir).map_err(|source| LocalPgError::Io { path: dir.clone(), source })?;
        }
        if let Some(owner) = &owner {
            for dir in [&data_dir, &socket_dir] {
                nix::unistd::chown(dir.as_path(), Some(owner.uid), Some(owner.gid))
                    .map_err(|e| LocalPgError::Io { path: dir.clone(), source: e.into() })?;
            }
        }
        set_private(&data_dir)?;
        let mut pg = Self {
            data_dir,
            bin_dir,
            port: 0,
            run_as_postgres,
            owned: false,
            version: String::new(),
            server_settings: options.server_settings.clone(),
            environment: options.environment.clone(),
        };
        pg.version = fs::read_to_string(pg.bin_dir.join("../share/PG_VERSION")).unwrap_or_default();

        if !pg.data_dir.join("PG_VERSION").exists() {
            pg.run(
                "initdb",
                &[
                    "-D",
                    path_str(&pg.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-instructions",
                ],
            )?;
        }
        pg.version = fs::read_to_string(pg.data_dir.join("PG_VERSION")).unwrap_or_default().trim().to_owned();

        if let Some(port) = pg.running_port() {
            pg.port = port;
            info!(port, data_dir = %pg.data_dir.display(), "joined the local PostgreSQL another process started");
            return Ok(pg);
        }
        let mut last_error = None;
        for _ in 0..5 {
            let port = free_port().map_err(|source| LocalPgError::Io { path: base_dir.clone(), source })?;
            match pg.pg_ctl_start(port) {
                Ok(()) => {
                    pg.port = port;
                    pg.owned = true;
                    return Ok(pg);
                }
                // Most likely another program took the port between our check and the start.
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or(LocalPgError::NoBinaries))
    }

    /// The URL of a database in this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether this process started the cluster (and so stops it).
    pub fn owned(&self) -> bool {
        self.owned
    }

    /// Creates the database if it does not exist.
    pub fn ensure_database(&self, name: &str) -> Result<(), LocalPgError> {
        ensure_database(&self.url("postgres"), name)
    }

    /// The folder of PostgreSQL's programs this cluster runs with ([`find_bin_dir`]).
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// A command for another of PostgreSQL's programs of the same installation (`pgbench`,
    /// `pg_test_fsync`, `psql`, ...), run the way this cluster's programs are: as the `postgres`
    /// user when this process is root (PostgreSQL's server programs refuse root, and what they
    /// write must be that user's), in `/` unless the caller sets another working directory.
    /// For the programs that drive the cluster (the benchmark), so that there is one way to
    /// run them.
    pub fn program(&self, name: &str) -> Command {
        pg_program(&self.bin_dir, self.run_as_postgres, &self.environment, name)
    }

    /// Stops the cluster now if this process started it.
    pub fn stop(&mut self) {
        if !self.owned {
            return;
        }
        self.owned = false;
        match self.run("pg_ctl", &["stop", "-D", path_str(&self.data_dir), "-m", "fast", "-w", "-t", "60"]) {
            Ok(_) => info!("stopped the local PostgreSQL"),
            Err(e) => warn!(error = %e, "could not stop the local PostgreSQL"),
        }
    }

    /// Stops the cluster whoever started it (tests use this to simulate an outage).
    pub fn force_stop(&self) -> Result<(), LocalPgError> {
        self.run("pg_ctl", &["stop", "-D", path_str(&self.data_dir), "-m", "fast", "-w", "-t", "60"]).map(drop)
    }

    /// Starts the cluster again on the same port after [`force_stop`](Self::force_stop).
    pub fn restart_stopped(&self) -> Result<(), LocalPgError> {
        self.pg_ctl_start(self.port)
    }

    /// `pg_ctl start` on `port`, loopback only, with the private socket directory beside the
    /// data directory, its log file there, and the extra server settings.
    fn pg_ctl_start(&self, port: u16) -> Result<(), LocalPgError> {
        let socket_dir = self.data_dir.with_file_name("postgres-run");
        let log_file = socket_dir.join("postgres.log");
        let mut server_options =
            format!("-c listen_addresses=127.0.0.1 -p {port} -k {} -c max_connections=200", path_str(&socket_dir));
        for (name, value) in &self.server_settings {
            server_options.push_str(&format!(" -c {name}={value}"));
        }
        let data_dir = path_str(&self.data_dir);
        let log_file = path_str(&log_file);
        self.run("pg_ctl", &["start", "-D", data_dir, "-l", log_file, "-w", "-t", "60", "-o", &server_options])
            .map(drop)
    }

    /// The port of the server running on our data directory, if one runs.
    fn running_port(&self) -> Option<u16> {
        self.run("pg_ctl", &["status", "-D", path_str(&self.data_dir)]).ok()?;
        let pid_file = fs::read_to_string(self.data_dir.join("postmaster.pid")).ok()?;
        pid_file.lines().nth(3)?.trim().parse().ok()
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<Output, LocalPgError> {
        pg_command(&self.bin_dir, self.run_as_postgres, &self.environment, program, args)
    }
}

/// A command for one of PostgreSQL's programs in `bin_dir`, run as the `postgres` user when
/// `run_as_postgres` (through `runuser`), with `environment` added, in `/`.
fn pg_program(bin_dir: &Path, run_as_postgres: bool, environment: &[(String, String)], program: &str) -> Command {
    let binary = bin_dir.join(program);
    let mut command = if run_as_postgres {
        // `env` after runuser, so that the variables reach the program whatever runuser keeps.
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "env"]);
        c.args(environment.iter().map(|(k, v)| format!("{k}={v}"))).arg(&binary);
        c
    } else {
        let mut c = Command::new(&binary);
        c.envs(environment.iter().map(|(k, v)| (k, v)));
        c
    };
    command.current_dir("/");
    command
}

/// Runs one of PostgreSQL's programs, as the `postgres` user when `run_as_postgres`.
fn pg_command(
    bin_dir: &Path,
    run_as_postgres: bool,
    environment: &[(String, String)],
    program: &str,
    args: &[&str],
) -> Result<Output, LocalPgError> {
    let binary = bin_dir.join(program);
    let mut command = pg_program(bin_dir, run_as_postgres, environment, program);
    command.args(args);
    let shown = format!("{} {}", binary.display(), args.join(" "));
    let output =
        command.output().map_err(|e| LocalPgError::Command { command: shown.clone(), detail: e.to_string() })?;
    if output.status.success() {
        Ok(output)
    } else {
        let detail = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        let detail = if detail.is_empty() { String::from_utf8_lossy(&output.stdout).trim().to_owned() } else { detail };
        Err(LocalPgError::Command { command: shown, detail })
    }
}

/// Stops the local cluster of `base_dir` (a `DATA_DIR`-like folder), wherever it lives, if it
/// runs; returns whether it ran. For scripts and tests that leave a cluster running for other
/// processes (`db-admin local-postgres stop`).
pub fn stop_cluster_of(base_dir: &Path) -> Result<bool, LocalPgError> {
    let data_dir = data_dir_of(base_dir)?;
    if !data_dir.join("postmaster.pid").is_file() {
        return Ok(false);
    }
    let bin_dir = find_bin_dir().ok_or(LocalPgError::NoBinaries)?;
    let run_as_postgres = nix::unistd::geteuid().is_root();
    pg_command(
        &bin_dir,
        run_as_postgres,
        &[],
        "pg_ctl",
        &["stop", "-D", path_str(&data_dir), "-m", "fast", "-w", "-t", "60"],
    )?;
    Ok(true)
}

/// The port of the local cluster of `base_dir` if it runs (its `postmaster.pid` says so), wherever
/// it lives.
pub fn running_port_of(base_dir: &Path) -> Result<Option<u16>, LocalPgError> {
    let data_dir = data_dir_of(base_dir)?;
    Ok(fs::read_to_string(data_dir.join("postmaster.pid"))
        .ok()
        .and_then(|pid_file| pid_file.lines().nth(3)?.trim().parse().ok()))
}

/// Stops and deletes the local cluster of `base_dir` wherever it lives, so that the next start
/// begins from an empty cluster (`db-admin local-postgres remove`).
pub fn remove_cluster_of(base_dir: &Path) -> Result<(), LocalPgError> {
    stop_cluster_of(base_dir)?;
    let data_dir = data_dir_of(base_dir)?;
    let home = data_dir.parent().map(Path::to_path_buf).unwrap_or_default();
    let base_dir = absolute(base_dir)?;
    let mut doomed = vec![data_dir.clone(), home.join("postgres-run"), base_dir.join("postgres.location")];
    if home != base_dir {
        doomed.push(home);
    }
    for path in doomed {
        let removed = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
        match removed {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(LocalPgError::Io { path, source }),
        }
    }
    Ok(())
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Creates `name` on the server of `maintenance_url` unless it exists.
pub fn ensure_database(maintenance_url: &str, name: &str) -> Result<(), LocalPgError> {
    let fail = |detail: String| LocalPgError::CreateDatabase { name: name.to_owned(), detail };
    let mut conn = PgConnection::establish(maintenance_url).map_err(|e| fail(e.to_string()))?;
    if database_exists(&mut conn, name).map_err(|e| fail(e.to_string()))? {
        return Ok(());
    }
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    match diesel::sql_query(format!("CREATE DATABASE {quoted}")).execute(&mut conn) {
        Ok(_) => {
            info!(database = name, "created the database");
            Ok(())
        }
        // Another process may have created it at the same moment: whether it exists now says
        // so (the server's message, in whatever language, is not read).
        Err(e) => match database_exists(&mut conn, name) {
            Ok(true) => Ok(()),
            _ => Err(fail(e.to_string())),
        },
    }
}

fn database_exists(conn: &mut PgConnection, name: &str) -> QueryResult<bool> {
    diesel::select(
        diesel::dsl::sql::<diesel::sql_types::Bool>("EXISTS (SELECT 1 FROM pg_database WHERE datname = ")
            .bind::<Text, _>(name)
            .sql(")"),
    )
    .get_result(conn)
}

/// Where the cluster of `base_dir` lives: `base_dir` itself, unless this process runs as root
/// and the `postgres` user cannot reach it (a checkout under `/root`, mode 700, is the common
/// case: root's home is closed to other users). Then the cluster lives in a folder of its own
/// under [`RELOCATED_ROOT`], named after `base_dir` so that every process that asks for
/// `base_dir` (the server, db-admin, the tests) finds the same cluster, and a file
/// `base_dir/postgres.location` says where it went. Nobody's permissions are changed.
fn cluster_home(base_dir: &Path, run_as_postgres: bool) -> Result<PathBuf, LocalPgError> {
    if !run_as_postgres || postgres_can_reach(base_dir) {
        return Ok(base_dir.to_path_buf());
    }
    let home = relocated_home(base_dir);
    let note = base_dir.join("postgres.location");
    let text = format!(
        "The local PostgreSQL of this folder lives in {} because the postgres user, which runs it, \
         cannot reach this folder.\n",
        home.display()
    );
    fs::create_dir_all(RELOCATED_ROOT)
        .and_then(|()| fs::write(&note, text))
        .map_err(|source| LocalPgError::Io { path: note, source })?;
    info!(
        folder = %base_dir.display(),
        cluster = %home.display(),
        "the postgres user cannot reach the data folder: the local PostgreSQL lives in a folder of its own"
    );
    Ok(home)
}

/// Where clusters of folders that the `postgres` user cannot reach live (root only).
const RELOCATED_ROOT: &str = "/var/lib/comanda";

/// `RELOCATED_ROOT/<folder name>-<16 hex digits of the SHA-256 of its canonical path>`.
fn relocated_home(base_dir: &Path) -> PathBuf {
    use sha2::{Digest, Sha256};
    // One folder, one name, whatever path names it (`crates/x/../../target/test-pg` for the
    // tests, `target/test-pg` for the scripts, or through a symlink): its canonical path.
    let canonical = fs::canonicalize(base_dir).unwrap_or_else(|_| base_dir.to_path_buf());
    let base_dir = canonical.as_path();
    let digest = Sha256::digest(base_dir.as_os_str().as_encoded_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let name: String = base_dir
        .file_name()
        .map(|n| n.to_string_lossy().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect())
        .unwrap_or_default();
    Path::new(RELOCATED_ROOT).join(format!("{}-{hex}", name.trim_matches('-')))
}

/// Whether the `postgres` user may enter `dir` (every folder on the way included, ACLs too).
fn postgres_can_reach(dir: &Path) -> bool {
    Command::new("runuser")
        .args(["-u", "postgres", "--", "test", "-x"])
        .arg(dir)
        .current_dir("/")
        .status()
        .is_ok_and(|status| status.success())
}

/// The folder holding the data of the local cluster of `base_dir`, wherever it lives (for
/// scripts that stop it: see `db-admin local-postgres stop`).
pub fn data_dir_of(base_dir: &Path) -> Result<PathBuf, LocalPgError> {
    let base_dir = absolute(base_dir)?;
    let relocated = relocated_home(&base_dir).join("postgres");
    if base_dir.join("postgres.location").is_file() && relocated.is_dir() {
        Ok(relocated)
    } else {
        Ok(base_dir.join("postgres"))
    }
}

/// `PG_BIN_DIR` (unless empty, like every setting), else a directory on PATH holding initdb,
/// pg_ctl and postgres, else the newest `/usr/lib/postgresql/*/bin`.
pub fn find_bin_dir() -> Option<PathBuf> {
    let complete = |dir: &Path| ["initdb", "pg_ctl", "postgres"].iter().all(|p| dir.join(p).is_file());
    if let Some(dir) = std::env::var_os("PG_BIN_DIR").filter(|dir| !dir.is_empty()).map(PathBuf::from) {
        return complete(&dir).then_some(dir);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if complete(&dir) {
                // Resolve symlinks so that `../share` and friends are the real ones.
                let resolved =
                    fs::canonicalize(dir.join("pg_ctl")).ok().and_then(|p| p.parent().map(Path::to_path_buf));
                return Some(resolved.filter(|d| complete(d)).unwrap_or(dir));
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            complete(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// A TCP port free on the loopback interface at this moment.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn absolute(path: &Path) -> Result<PathBuf, LocalPgError> {
    std::path::absolute(path).map_err(|source| LocalPgError::Io { path: path.to_owned(), source })
}

fn set_private(dir: &Path) -> Result<(), LocalPgError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|source| LocalPgError::Io { path: dir.to_owned(), source })
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap_or_default()
}

/// The database to use: `DATABASE_URL`, or else the local cluster under `DATA_DIR` (started
/// here, with the database `comanda` created) which the caller keeps alive and drops to stop.
pub fn resolve_database(settings: &crate::Settings) -> Result<(String, Option<LocalPostgres>), LocalPgError> {
    use secrecy::ExposeSecret;
    if let Some(url) = &settings.database_url {
        return Ok((url.expose_secret().to_owned(), None));
    }
    let pg = LocalPostgres::start(&settings.data_dir, &LocalPgOptions::default())?;
    pg.ensure_database(LOCAL_DATABASE)?;
    info!(
        "DATABASE_URL is not set: {} the local PostgreSQL {} on 127.0.0.1:{} with its data in {}{}; set DATABASE_URL to use another server",
        if pg.owned() { "started" } else { "joined" },
        pg.version(),
        pg.port(),
        pg.data_dir().display(),
        if pg.owned() { " (stopped on exit)" } else { "" },
    );
    Ok((pg.url(LOCAL_DATABASE), Some(pg)))
}

/// The database's name in the local cluster.
const LOCAL_DATABASE: &str = "comanda";
