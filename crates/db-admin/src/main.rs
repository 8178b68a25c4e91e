//! `db-admin`: migrations and data administration for Comanda.
//!
//! Uses `DATABASE_URL`, or the local PostgreSQL under `DATA_DIR` like the server (joining it
//! when the server already runs it). Exit code 0 on success; otherwise one sentence on standard
//! error and a non-zero code.

#![allow(clippy::print_stdout)]

mod seed;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use diesel::{Connection, PgConnection};
use rand::Rng;
use secrecy::ExposeSecret;

use application::{NewUser, OrderRepository, SystemClock, UserError, UserService};
use domain::{Email, LocationId, Password, PersonName, Role};
use infrastructure::local_pg::{self, LocalPostgres, ensure_database, resolve_database};
use infrastructure::{
    Argon2Hasher, Database, PgLocationRepository, PgOrderRepository, PgReportRepository, PgUserRepository,
    PoolSettings, Settings, db,
};

#[derive(Debug, Parser)]
#[command(name = "db-admin", version, about = "Comanda's database administration")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the database if missing, migrate, and create the first admin (ADMIN_EMAIL,
    /// ADMIN_NAME, ADMIN_PASSWORD; a password is generated and printed once when none is
    /// given). Running it again changes nothing.
    Init,
    /// Apply every pending migration.
    Migrate,
    /// Revert the last applied migrations.
    Rollback {
        #[arg(long, default_value_t = 1)]
        steps: usize,
    },
    /// List the migrations and whether each is applied.
    Status,
    /// Drop everything and migrate from scratch (refused when APP_ENV=production).
    Reset {
        /// Confirm that every row may be lost.
        #[arg(long)]
        yes: bool,
    },
    /// Create an empty up/down migration pair named with the current time.
    NewMigration {
        name: String,
        #[arg(long, default_value = "migrations")]
        dir: PathBuf,
    },
    /// Create a user (for scripts). The password comes from --password or the environment
    /// variable named by --password-env (default NEW_USER_PASSWORD).
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// admin, manager, waiter or kitchen.
        #[arg(long, default_value = "waiter")]
        role: String,
        /// A location the user works in (repeat for several); may be left out while only one
        /// location exists, and must be for an admin.
        #[arg(long = "location-id")]
        location_ids: Vec<uuid::Uuid>,
        #[arg(long)]
        password: Option<String>,
        #[arg(long, default_value = "NEW_USER_PASSWORD")]
        password_env: String,
    },
    /// Fill the database with realistic demo data.
    Seed(seed::SeedArgs),
    /// Bring the sales report's rollup up to date now (the server also does it in the
    /// background); with --rebuild, forget every aggregate first (after loading past orders).
    Rollup {
        #[arg(long)]
        rebuild: bool,
    },
    /// The local PostgreSQL of a DATA_DIR-like folder, wherever it lives (as root, a folder the
    /// postgres user cannot reach has its cluster under /var/lib/comanda): stop it, or stop
    /// and delete it.
    LocalPostgres {
        #[command(subcommand)]
        action: LocalPostgresAction,
    },
    /// Forget idempotency keys older than the given age (at least 24 hours).
    PurgeKeys {
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(24..))]
        older_than_hours: u32,
    },
}

#[derive(Debug, Subcommand)]
enum LocalPostgresAction {
    /// Stop the cluster if it runs.
    Stop { dir: PathBuf },
    /// Stop the cluster and delete its data.
    Remove { dir: PathBuf },
    /// Print the URL of its `postgres` database if it runs (for scripts).
    Url { dir: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("db-admin: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(infrastructure::settings::log_colour())
        .with_target(false)
        .init();
    match run(cli.command, &settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("db-admin: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, settings: &Settings) -> anyhow::Result<()> {
    if let Command::NewMigration { name, dir } = &command {
        return new_migration(name, dir);
    }
    if let Command::LocalPostgres { action } = &command {
        return match action {
            LocalPostgresAction::Stop { dir } => local_pg::stop_cluster_of(dir).map(drop).map_err(Into::into),
            LocalPostgresAction::Remove { dir } => local_pg::remove_cluster_of(dir).map_err(Into::into),
            LocalPostgresAction::Url { dir } => match local_pg::running_port_of(dir)? {
                Some(port) => {
                    println!("postgres://postgres@127.0.0.1:{port}/postgres");
                    Ok(())
                }
                None => bail!("no local PostgreSQL runs for {}", dir.display()),
            },
        };
    }
    if matches!(command, Command::Reset { yes: false }) {
        bail!("reset drops every table and row; run it again with --yes to confirm");
    }
    if matches!(command, Command::Reset { .. }) && settings.is_production() {
        bail!("reset is refused when APP_ENV=production");
    }
    // The local cluster (if that is what we use) lives until this function returns.
    let (url, _local): (String, Option<LocalPostgres>) = if matches!(command, Command::Init) {
        let (url, local) = resolve_database(settings)?;
        if local.is_none() {
            create_database_if_missing(&url)?;
        }
        (url, local)
    } else {
        resolve_database(settings)?
    };
    let mut conn = PgConnection::establish(&url).context("could not connect to the database")?;
    match command {
        Command::Migrate => report("applied", db::run_pending_migrations(&mut conn, &settings.first_location)),
        Command::Rollback { steps } => report("reverted", db::revert_migrations(&mut conn, steps)),
        Command::Status => {
            let all = db::migration_status(&mut conn).map_err(|e| anyhow::anyhow!(e))?;
            for (name, applied) in &all {
                println!("[{}] {name}", if *applied { "x" } else { " " });
            }
            let pending = all.iter().filter(|(_, a)| !a).count();
            println!("{} migrations, {} applied, {pending} pending", all.len(), all.len() - pending);
            Ok(())
        }
        Command::Reset { .. } => {
            report("reset; applied", db::reset(&mut conn, &settings.first_location))?;
            Ok(())
        }
        Command::Init => {
            report("applied", db::run_pending_migrations(&mut conn, &settings.first_location))?;
            init_admin(settings, &url)
        }
        Command::CreateUser { email, name, role, location_ids, password, password_env } => {
            let password = match password {
                Some(p) => p,
                None => {
                    std::env::var(&password_env).with_context(|| format!("give --password or set {password_env}"))?
                }
            };
            let role = Role::parse(&role).map_err(|e| anyhow::anyhow!("--role {e}"))?;
            let locations = (!location_ids.is_empty()).then(|| location_ids.into_iter().map(LocationId).collect());
            let user = create_user(settings, &url, &email, &name, &password, role, locations)?;
            println!("created {} {} ({})", user.role(), user.email(), user.id());
            Ok(())
        }
        Command::Seed(args) => seed::run(&mut conn, &url, &args, settings),
        Command::Rollup { rebuild } => {
            let reports = PgReportRepository::new(database(settings, &url));
            if rebuild {
                reports.reset_rollup()?;
                println!("forgot every aggregate");
            }
            let lag = application::rollup_lag(settings.database_timeout, settings.database_statement_timeout);
            let progress = application::ReportRepository::roll_up(&reports, chrono::Utc::now() - lag)?;
            if progress.busy {
                println!("another process is rolling up right now: nothing done here");
            } else {
                let mark = |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or("-".to_owned(), |t| t.to_rfc3339());
                println!(
                    "aggregated {} ten-minute period(s), {} hour(s) and {} day(s); until {}, {}, {}",
                    progress.minutes10,
                    progress.hours,
                    progress.days,
                    mark(progress.minutes_until),
                    mark(progress.hours_until),
                    mark(progress.days_until),
                );
            }
            Ok(())
        }
        Command::PurgeKeys { older_than_hours } => {
            let orders = PgOrderRepository::new(database(settings, &url));
            let before = chrono::Utc::now() - chrono::Duration::hours(i64::from(older_than_hours));
            let deleted = orders.purge_idempotency_keys(before)?;
            println!("purged {deleted} idempotency keys older than {older_than_hours} hours");
            Ok(())
        }
        Command::NewMigration { .. } | Command::LocalPostgres { .. } => unreachable!("handled above"),
    }
}

fn report(verb: &str, result: Result<Vec<String>, Box<dyn std::error::Error + Send + Sync>>) -> anyhow::Result<()> {
    let names = result.map_err(|e| anyhow::anyhow!("{e}"))?;
    // The rewrite of stored keys (infrastructure::text_keys) is not an SQL migration: said apart.
    let (keys, migrations): (Vec<String>, Vec<String>) =
        names.into_iter().partition(|n| n.starts_with(infrastructure::text_keys::PENDING_PREFIX));
    if migrations.is_empty() && keys.is_empty() {
        println!("nothing to do: the database is up to date");
    }
    if !migrations.is_empty() {
        println!("{verb} {} migration(s): {}", migrations.len(), migrations.join(", "));
    }
    for rewrite in keys {
        println!("rewrote the stored {rewrite}");
    }
    Ok(())
}

/// With a `DATABASE_URL` naming a database that does not exist yet, creates it through the
/// server's `postgres` database.
fn create_database_if_missing(url: &str) -> anyhow::Result<()> {
    if PgConnection::establish(url).is_ok() {
        return Ok(());
    }
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let (server, name) = base.rsplit_once('/').context("DATABASE_URL has no database name")?;
    let maintenance =
        if query.is_empty() { format!("{server}/postgres") } else { format!("{server}/postgres?{query}") };
    ensure_database(&maintenance, name)?;
    Ok(())
}

/// A one-connection pool for the use cases db-admin runs.
fn database(settings: &Settings, url: &str) -> Database {
    Database::new(
        url,
        PoolSettings {
            max_size: 1,
            checkout_timeout: settings.database_timeout,
            statement_timeout: settings.database_statement_timeout,
        },
    )
}

fn user_service(settings: &Settings, url: &str) -> anyhow::Result<UserService> {
    let db = database(settings, url);
    Ok(UserService::new(
        Arc::new(PgUserRepository::new(db.clone())),
        Arc::new(PgLocationRepository::new(db)),
        Arc::new(Argon2Hasher::new(settings.argon2)?),
        Arc::new(SystemClock),
    ))
}

fn create_user(
    settings: &Settings,
    url: &str,
    email: &str,
    name: &str,
    password: &str,
    role: Role,
    locations: Option<Vec<LocationId>>,
) -> anyhow::Result<domain::User> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("the email {e}"))?;
    let name = PersonName::parse(name).map_err(|e| anyhow::anyhow!("the name {e}"))?;
    let password =
        Password::parse_new(password, Some(&email), Some(&name)).map_err(|e| anyhow::anyhow!("the password {e}"))?;
    let users = user_service(settings, url)?;
    match users.create_unchecked(NewUser { email, name, password, role, locations }) {
        Ok(member) => Ok(member.user),
        Err(UserError::DuplicateEmail) => bail!("a user with this email already exists"),
        Err(UserError::Locations(e)) => bail!("--location-id {e}"),
        Err(e) => Err(e.into()),
    }
}

/// The first admin, once.
fn init_admin(settings: &Settings, url: &str) -> anyhow::Result<()> {
    let users = user_service(settings, url)?;
    let email = Email::parse(&settings.admin_email).map_err(|e| anyhow::anyhow!("ADMIN_EMAIL {e}"))?;
    if let Some(existing) = users.find_by_email(&email)? {
        println!("the admin {} already exists: nothing changed", existing.email());
        return Ok(());
    }
    let admins = users.count_admins()?;
    if admins > 0 {
        println!(
            "{admins} admin(s) already exist: the first admin is made only once, nothing changed (db-admin create-user --role admin adds more)"
        );
        return Ok(());
    }
    let (password, generated) = match &settings.admin_password {
        Some(p) => (p.expose_secret().to_owned(), false),
        None => (strong_password(), true),
    };
    let user = create_user(settings, url, &settings.admin_email, &settings.admin_name, &password, Role::Admin, None)
        .context("could not create the first admin (check ADMIN_EMAIL, ADMIN_NAME, ADMIN_PASSWORD)")?;
    println!("created the admin {} ({})", user.email(), user.id());
    if generated {
        println!("its generated password, shown only this once: {password}");
    }
    Ok(())
}

/// 24 characters from 62: about 143 bits.
fn strong_password() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..24).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

fn new_migration(name: &str, dir: &std::path::Path) -> anyhow::Result<()> {
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name.is_empty() {
        bail!("the migration name must be letters, digits and underscores");
    }
    if !dir.is_dir() {
        bail!("{} is not a folder; run from the repository root or pass --dir", dir.display());
    }
    let stamp = chrono::Utc::now().format("%Y-%m-%d-%H%M%S");
    let folder = dir.join(format!("{stamp}_{name}"));
    std::fs::create_dir(&folder).with_context(|| format!("could not create {}", folder.display()))?;
    std::fs::write(folder.join("up.sql"), format!("-- {name}\n"))?;
    std::fs::write(folder.join("down.sql"), format!("-- undo {name}\n"))?;
    println!("created {}/up.sql and down.sql", folder.display());
    Ok(())
}
