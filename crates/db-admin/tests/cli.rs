//! `db-admin` as scripts and operators use it.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use test_support::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_db-admin");

fn run(db: &TestDb, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let dir = std::env::temp_dir();
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("ARGON2_MEMORY_KIB", "1024")
        .env("ARGON2_ITERATIONS", "1");
    for (k, v) in vars {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn init_migrates_creates_the_first_admin_once_and_says_so_the_second_time() {
    let db = TestDb::empty();
    let first = run(&db, &["init"], &[("ADMIN_EMAIL", "boss@example.com")]);
    assert!(first.status.success(), "{}", stderr(&first));
    let out = stdout(&first);
    assert!(out.contains("applied 3 migration(s)"), "{out}");
    assert!(out.contains("created the admin boss@example.com"), "{out}");
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("its generated password, shown only this once: "))
        .unwrap();
    assert!(password.len() >= 24);

    let second = run(&db, &["init"], &[("ADMIN_EMAIL", "boss@example.com")]);
    assert!(second.status.success());
    let out = stdout(&second);
    assert!(
        out.contains("nothing to do") && out.contains("already exists: nothing changed"),
        "{out}"
    );
    assert!(!out.contains("password"), "the password is shown only once");
}

#[test]
fn init_creates_a_database_that_does_not_exist() {
    let db = TestDb::empty();
    let missing = TestDb {
        name: format!("{}_new", db.name),
        url: format!("{}_new", db.url),
    };
    let out = run(
        &missing,
        &["init"],
        &[("ADMIN_PASSWORD", "a strong password 1")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("created the admin admin@comanda.local"));
    assert!(!stdout(&out).contains("generated password"));
}

#[test]
fn status_rollback_and_migrate() {
    let db = TestDb::empty();
    assert!(run(&db, &["migrate"], &[]).status.success());
    let out = stdout(&run(&db, &["status"], &[]));
    assert!(out.contains("[x] 2026-11-23-000001_create_users"), "{out}");
    assert!(out.contains("0 pending"), "{out}");
    let out = run(&db, &["rollback", "--steps", "2"], &[]);
    assert!(
        stdout(&out).contains("reverted 2 migration(s)"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&run(&db, &["status"], &[])).contains("2 pending"));
    assert!(stdout(&run(&db, &["migrate"], &[])).contains("applied 2 migration(s)"));
}

#[test]
fn reset_needs_yes_and_is_refused_in_production() {
    let db = TestDb::empty();
    let out = run(&db, &["reset"], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--yes"));
    let production = [
        ("APP_ENV", "production"),
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("ARGON2_MEMORY_KIB", "19456"),
        ("ARGON2_ITERATIONS", "2"),
    ];
    let out = run(&db, &["reset", "--yes"], &production);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("refused when APP_ENV=production"),
        "{}",
        stderr(&out)
    );
    let out = run(&db, &["reset", "--yes"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("applied 3 migration(s)"));
}

#[test]
fn create_user_for_scripts_and_duplicates_fail() {
    let db = TestDb::new();
    let args = [
        "create-user",
        "--email",
        "Waiter@Example.com",
        "--name",
        "Wai Ter",
        "--role",
        "waiter",
    ];
    let out = run(&db, &args, &[("NEW_USER_PASSWORD", "a long password")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("created waiter Waiter@example.com"));
    let again = [
        "create-user",
        "--email",
        "waiter@EXAMPLE.com",
        "--name",
        "Other",
        "--password",
        "another password",
    ];
    let out = run(&db, &again, &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"));
}

#[test]
fn new_migration_creates_a_timestamped_pair() {
    let db = TestDb::empty();
    let dir = std::env::temp_dir().join(format!("comanda-migrations-{}", db.name));
    std::fs::create_dir_all(&dir).unwrap();
    let out = run(
        &db,
        &[
            "new-migration",
            "add_tables",
            "--dir",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let created: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(created.len(), 1);
    let name = created[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.ends_with("_add_tables") && name.len() == "YYYY-MM-DD-HHMMSS_add_tables".len(),
        "{name}"
    );
    assert!(created[0].join("up.sql").exists() && created[0].join("down.sql").exists());
    std::fs::remove_dir_all(dir).unwrap();
}
