//! The loaders: each takes batches from the generator's bounded queue and loads every batch
//! (its orders, lines and payments) in one transaction through `COPY`.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::Context;
use crossbeam_channel::Receiver;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use indicatif::ProgressBar;

use infrastructure::schema::{order_items, orders, payments};

use super::generator::Batch;
use super::summary::Stats;

/// One connection loading batches until there are no more, or another loader failed.
pub(super) struct Loader {
    pub url: String,
    pub batches: Receiver<Batch>,
    pub failed: Arc<AtomicBool>,
    pub loaded: Arc<AtomicU64>,
    pub progress: ProgressBar,
    pub skip_fk_checks: bool,
}

impl Loader {
    pub fn run(self) -> anyhow::Result<Stats> {
        let result = self.load_all();
        if result.is_err() {
            self.failed.store(true, Ordering::Relaxed);
        }
        result
    }

    fn load_all(&self) -> anyhow::Result<Stats> {
        let mut conn = PgConnection::establish(&self.url).context("could not connect to the database")?;
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

/// Loads one batch in one transaction: orders first, then their lines and payments.
fn load_batch(conn: &mut PgConnection, batch: &Batch) -> anyhow::Result<()> {
    conn.transaction::<_, anyhow::Error, _>(|conn| {
        diesel::copy_from(orders::table)
            .from_raw_data(
                (
                    orders::id,
                    orders::customer_name,
                    orders::waiter_id,
                    orders::status,
                    orders::total_price,
                    orders::amount_paid,
                    orders::created_at,
                    orders::updated_at,
                ),
                |out| send(out, &batch.orders),
            )
            .execute(conn)
            .context("COPY into orders failed")?;
        diesel::copy_from(order_items::table)
            .from_raw_data(
                (
                    order_items::order_id,
                    order_items::line_no,
                    order_items::product_key,
                    order_items::product_name,
                    order_items::unit_price,
                    order_items::quantity,
                    order_items::subtotal,
                ),
                |out| send(out, &batch.items),
            )
            .execute(conn)
            .context("COPY into order_items failed")?;
        if !batch.payments.is_empty() {
            diesel::copy_from(payments::table)
                .from_raw_data(
                    (
                        payments::id,
                        payments::order_id,
                        payments::amount,
                        payments::method,
                        payments::recorded_by,
                        payments::created_at,
                    ),
                    |out| send(out, &batch.payments),
                )
                .execute(conn)
                .context("COPY into payments failed")?;
        }
        Ok(())
    })
}

/// Hands prepared COPY text to libpq in large pieces (each write is one `PQputCopyData`).
fn send(out: &mut dyn Write, data: &[u8]) -> QueryResult<()> {
    for chunk in data.chunks(1 << 20) {
        out.write_all(chunk).map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    }
    Ok(())
}
