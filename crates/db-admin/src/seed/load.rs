//! The loaders: each takes batches from the generator's bounded queue and loads every batch
//! (its orders, lines and payments) in one transaction through diesel's `COPY` support
//! (`copy_from(table).from_insertable(rows)`, PostgreSQL's binary format).
//!
//! Measured against the hand-written `COPY` text encoder it replaced (the generator wrote the
//! text, the loaders only passed it on), on the same data: `db-admin seed --orders 200000
//! --seed-value 1` (719,283 lines) into db-admin's local PostgreSQL 15 after `db-admin reset
//! --yes`, release builds run alternately, on 2 cores shared with other builds (load average
//! 1.1 to 1.8). The load phase (the summary's "in N s"): with the default 2 jobs, text 5.9 to
//! 8.1 s (median of 6 runs 6.7 s), diesel 6.4 to 7.7 s (median 6.5 s); with `--jobs 1` text
//! 11.5 to 14.0 s (median 12.4 s), diesel 10.2 to 12.9 s (median 10.9 s); with
//! `--skip-fk-checks` text 3.4 to 3.8 s, diesel 3.4 to 3.5 s. db-admin itself used 0.33 s of CPU
//! with the text encoder and 0.44 s with diesel's, the server nearly all the rest: PostgreSQL
//! reads the binary format more cheaply than text, which makes up for the encoding. Not
//! slower, so the encoder (200 lines of digits, escapes and dates) went.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::Context;
use crossbeam_channel::Receiver;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use indicatif::ProgressBar;

use infrastructure::schema::{order_items, orders, payments};

use super::rows::Batch;
use super::summary::Stats;

/// One connection loading batches until there are no more, or another loader failed.
pub(super) struct Loader<'a> {
    pub url: &'a str,
    pub batches: Receiver<Batch<'a>>,
    /// Set by the first loader that fails: the others stop after their current batch.
    pub failed: &'a AtomicBool,
    /// Orders loaded so far, by every loader.
    pub loaded: &'a AtomicU64,
    pub progress: ProgressBar,
    pub skip_fk_checks: bool,
}

impl Loader<'_> {
    pub fn run(self) -> anyhow::Result<Stats> {
        let result = self.load_all();
        if result.is_err() {
            self.failed.store(true, Ordering::Relaxed);
        }
        result
    }

    fn load_all(&self) -> anyhow::Result<Stats> {
        let mut conn = PgConnection::establish(self.url).context("could not connect to the database")?;
        prepare_session(&mut conn)?;
        if self.skip_fk_checks {
            // Foreign keys are checked by triggers, which do not fire for a replica session.
            conn.batch_execute("SET session_replication_role = replica")
                .context("--skip-fk-checks could not turn the checks off (it needs a superuser)")?;
        }
        let mut stats = Stats::default();
        while !self.failed.load(Ordering::Relaxed) {
            let Ok(batch) = self.batches.recv() else { break };
            load_batch(&mut conn, &batch)?;
            stats.add(&batch.stats);
            self.loaded.fetch_add(batch.stats.orders, Ordering::Relaxed);
            self.progress.inc(batch.stats.orders);
        }
        Ok(stats)
    }
}

/// No statement timeout (a COPY of a big batch may take longer than one set through the URL),
/// UTC.
pub(super) fn prepare_session(conn: &mut PgConnection) -> anyhow::Result<()> {
    conn.batch_execute("SET statement_timeout = 0; SET TIME ZONE 'UTC'")
        .context("could not prepare the database session")
}

/// Loads one batch in one transaction: orders first, then their lines and payments, each
/// through diesel's `COPY ... FROM STDIN (FORMAT binary)`.
fn load_batch(conn: &mut PgConnection, batch: &Batch<'_>) -> anyhow::Result<()> {
    conn.transaction::<_, anyhow::Error, _>(|conn| {
        diesel::copy_from(orders::table)
            .from_insertable(&batch.orders)
            .execute(conn)
            .context("COPY into orders failed")?;
        diesel::copy_from(order_items::table)
            .from_insertable(&batch.items)
            .execute(conn)
            .context("COPY into order_items failed")?;
        if !batch.payments.is_empty() {
            diesel::copy_from(payments::table)
                .from_insertable(&batch.payments)
                .execute(conn)
                .context("COPY into payments failed")?;
        }
        Ok(())
    })
}
