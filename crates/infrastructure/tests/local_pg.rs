//! The local PostgreSQL where a newcomer meets it: as root, with the checkout in a folder the
//! `postgres` user cannot enter (root's home is mode 700 on a fresh Debian).

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use diesel::prelude::*;

use infrastructure::local_pg::{LocalPgOptions, LocalPostgres, data_dir_of, remove_cluster_of, stop_cluster_of};

fn closed_folder() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("comanda-closed-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

#[derive(QueryableByName)]
struct Answer {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    n: i32,
}

/// A data folder whose parents `postgres` cannot traverse: the cluster starts anyway (as root
/// it lives in a folder of its own, with a note in the data folder saying where), keeps its
/// data across a stop and a start, and is stopped and removed by the folder's name.
#[test]
fn a_data_folder_postgres_cannot_reach_still_gets_a_cluster() {
    let home = closed_folder();
    let base = home.join("project/.data");
    let root = nix::unistd::geteuid().is_root();
    {
        let pg = LocalPostgres::start(&base, &LocalPgOptions::default()).unwrap();
        pg.ensure_database("comanda").unwrap();
        let mut conn = PgConnection::establish(&pg.url("comanda")).unwrap();
        diesel::connection::SimpleConnection::batch_execute(
            &mut conn,
            "CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)",
        )
        .unwrap();
        if root {
            assert!(!pg.data_dir().starts_with(&home), "as root the cluster must live where postgres can reach it");
            let note = std::fs::read_to_string(base.join("postgres.location")).unwrap();
            assert!(note.contains(pg.data_dir().parent().unwrap().to_str().unwrap()), "{note}");
        } else {
            assert_eq!(pg.data_dir(), base.join("postgres"), "as a user the cluster lives in the data folder");
        }
        assert_eq!(data_dir_of(&base).unwrap(), pg.data_dir());
        // The same folder by another path (the tests name theirs through `..`, the scripts
        // by a relative path) is the same cluster.
        let roundabout = home.join("project/../project/.data");
        assert_eq!(data_dir_of(&roundabout).unwrap(), pg.data_dir());
    }
    // Dropped: stopped. Started again by the same folder's name: the same data.
    let pg = LocalPostgres::start(&base, &LocalPgOptions::default()).unwrap();
    let mut conn = PgConnection::establish(&pg.url("comanda")).unwrap();
    let kept: Answer = diesel::sql_query("SELECT n FROM kept").get_result(&mut conn).unwrap();
    assert_eq!(kept.n, 42);
    drop(conn);
    let data_dir = pg.data_dir().to_path_buf();
    std::mem::forget(pg);
    assert!(stop_cluster_of(&base).unwrap(), "the cluster was running");
    assert!(!data_dir.join("postmaster.pid").exists());
    remove_cluster_of(&base).unwrap();
    assert!(!data_dir.exists());
    assert!(!base.join("postgres.location").exists());
    std::fs::remove_dir_all(home).unwrap();
}
