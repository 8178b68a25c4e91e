//! The snapshots each process keeps in memory (the staff directory, the menu): loaded in one
//! read-only transaction, reloaded once when a caller finds them stale, however many callers
//! find so at the same moment.

use std::sync::{Arc, RwLock};

use diesel::prelude::*;

use application::{PendingSnapshot, Snapshots, StoreError, Versioned};

use crate::db::{Database, store_error};

/// Reads a snapshot's version from storage.
pub type ReadVersion = fn(&mut PgConnection) -> QueryResult<i64>;
/// Reads a whole snapshot from storage.
pub type Load<T> = fn(&Database) -> Result<T, StoreError>;

/// One kind of snapshot as this process holds it.
pub struct PgSnapshots<T> {
    db: Database,
    current: Arc<RwLock<Arc<T>>>,
    /// Held while one reload runs: the others wait for it and take its result.
    reloading: Arc<tokio::sync::Mutex<()>>,
    read_version: ReadVersion,
    load: Load<T>,
}

impl<T> Clone for PgSnapshots<T> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            current: Arc::clone(&self.current),
            reloading: Arc::clone(&self.reloading),
            read_version: self.read_version,
            load: self.load,
        }
    }
}

impl<T> std::fmt::Debug for PgSnapshots<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSnapshots").finish_non_exhaustive()
    }
}

impl<T: Versioned + Send + Sync + 'static> PgSnapshots<T> {
    /// Starts with `never_loaded`, which storage finds stale, so that the first order loads
    /// the snapshot (the database may not answer yet when the process starts).
    pub fn new(db: Database, never_loaded: T, read_version: ReadVersion, load: Load<T>) -> Self {
        Self {
            db,
            current: Arc::new(RwLock::new(Arc::new(never_loaded))),
            reloading: Arc::new(tokio::sync::Mutex::new(())),
            read_version,
            load,
        }
    }

    fn held(&self) -> Arc<T> {
        Arc::clone(&self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

impl<T: Versioned + Send + Sync + 'static> Snapshots<T> for PgSnapshots<T> {
    fn current(&self) -> Arc<T> {
        self.held()
    }

    fn refresh(&self, stale: i64) -> PendingSnapshot<T> {
        let this = self.clone();
        Box::pin(async move {
            let _turn = this.reloading.lock().await;
            let held = this.held();
            if held.version() != stale {
                // Another caller reloaded while this one waited.
                return Ok(held);
            }
            // A refusal is confirmed this way too, so the version alone is read first: the whole
            // snapshot is read only when it moved.
            let (db, read_version, load) = (this.db.clone(), this.read_version, this.load);
            let held_version = held.version();
            let loaded = tokio::task::spawn_blocking(move || {
                let version = read_version(&mut *db.conn()?).map_err(store_error)?;
                if version == held_version { Ok(None) } else { load(&db).map(Some) }
            })
            .await
            .map_err(|e| StoreError::other(std::io::Error::other(e.to_string())))??;
            let Some(loaded) = loaded else { return Ok(held) };
            let loaded = Arc::new(loaded);
            *this.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::clone(&loaded);
            Ok(loaded)
        })
    }
}
