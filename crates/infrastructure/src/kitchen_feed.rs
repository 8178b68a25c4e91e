//! The kitchen's live feed in one process: a thread that learns of new events from the
//! database and hands them, rendered once, to every display of their location that this
//! process serves.
//!
//! The events table is the truth; PostgreSQL's `LISTEN/NOTIFY` is only the wake-up (the
//! triggers that write an event notify `kitchen_events`, delivered at commit). On a wake-up,
//! and every `safety_interval` in case a notification was missed (a dropped connection), the
//! thread reads each location's last event id (`kitchen_streams`) and reads the events after
//! the last one it handed out. Events of one location commit in id order (see the migration),
//! so reading "after the last id seen" never skips one. Whatever replica wrote an event, every
//! replica's feed reads it.
//!
//! Each location has a `tokio::sync::broadcast` channel: one bounded ring of events shared by
//! all its displays. A display that falls more than the ring behind (a slow or dead client)
//! is told so ([`broadcast::error::RecvError::Lagged`]) and dropped; it reconnects with
//! `Last-Event-ID` and reads what it missed from the table. No display slows another, and
//! memory stays bounded by the ring, whatever the clients do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use tracing::{debug, warn};

use application::{KitchenEvent, KitchenRepository, MAX_EVENTS_PER_READ};
use domain::LocationId;

use crate::db::Database;

/// The notification channel the triggers notify.
const CHANNEL: &str = "kitchen_events";

/// How the feed polls and buffers.
#[derive(Debug, Clone, Copy)]
pub struct FeedSettings {
    /// How often the listening connection is checked for notifications (no query: a read of
    /// what the server has already sent).
    pub wake_check: Duration,
    /// How often the feed reads the streams' heads even without a notification.
    pub safety_interval: Duration,
    /// Events each location's ring holds for its displays.
    pub ring: usize,
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self { wake_check: Duration::from_millis(5), safety_interval: Duration::from_secs(1), ring: 1024 }
    }
}

/// One event as displays receive it: its id in its location's stream and its rendering.
#[derive(Debug, Clone)]
pub struct FeedItem<F> {
    pub id: i64,
    pub frame: F,
}

type Render<F> = dyn Fn(&KitchenEvent) -> F + Send + Sync;

/// The feed: subscribe to a location's events as they commit.
pub struct KitchenFeed<F> {
    channels: Mutex<HashMap<LocationId, broadcast::Sender<FeedItem<F>>>>,
    ring: usize,
}

impl<F> std::fmt::Debug for KitchenFeed<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KitchenFeed").field("ring", &self.ring).finish_non_exhaustive()
    }
}

impl<F: Clone + Send + Sync + 'static> KitchenFeed<F> {
    /// Starts the feed's thread. `render` turns an event into what displays are sent (once
    /// per event, shared by all of them).
    pub fn start(
        db: Database,
        events: Arc<dyn KitchenRepository>,
        render: Arc<Render<F>>,
        settings: FeedSettings,
    ) -> Arc<Self> {
        let feed = Arc::new(Self { channels: Mutex::new(HashMap::new()), ring: settings.ring.max(1) });
        let weak = Arc::downgrade(&feed);
        std::thread::Builder::new()
            .name("kitchen-feed".into())
            .spawn(move || {
                let mut state = Follow { cursors: None, listener: None, last_read: None };
                // The thread ends with the feed.
                while let Some(feed) = weak.upgrade() {
                    state.step(&feed, &db, &*events, &*render, &settings);
                    drop(feed);
                    std::thread::sleep(settings.wake_check);
                }
            })
            .expect("spawning the kitchen feed thread");
        feed
    }

    /// The events of `location` from now on. A receiver that lags more than the ring behind
    /// gets `Lagged`: drop the display, it resumes by id.
    pub fn subscribe(&self, location: LocationId) -> broadcast::Receiver<FeedItem<F>> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels.entry(location).or_insert_with(|| broadcast::channel(self.ring).0).subscribe()
    }

    /// How many displays this process serves right now.
    pub fn displays(&self) -> usize {
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels.values().map(broadcast::Sender::receiver_count).sum()
    }

    /// The location's channel if some display follows it.
    fn followed(&self, location: LocationId) -> Option<broadcast::Sender<FeedItem<F>>> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        // Channels nobody follows any more are forgotten.
        channels.retain(|_, sender| sender.receiver_count() > 0);
        channels.get(&location).cloned()
    }
}

/// What the feed's thread keeps between steps.
struct Follow {
    /// The last event id handed out per location; `None` until the heads were first read.
    cursors: Option<HashMap<LocationId, i64>>,
    listener: Option<diesel::PgConnection>,
    last_read: Option<Instant>,
}

impl Follow {
    fn step<F: Clone + Send + Sync + 'static>(
        &mut self,
        feed: &KitchenFeed<F>,
        db: &Database,
        events: &dyn KitchenRepository,
        render: &Render<F>,
        settings: &FeedSettings,
    ) {
        let mut woken = false;
        if self.listener.is_none() {
            match db.listener(CHANNEL) {
                Ok(conn) => {
                    self.listener = Some(conn);
                    // Anything may have happened while nobody listened.
                    woken = true;
                }
                Err(error) => {
                    if self.last_read.is_none_or(|at| at.elapsed() >= settings.safety_interval) {
                        debug!(error = %error, "kitchen feed: cannot listen yet");
                    }
                }
            }
        }
        let mut failed = None;
        if let Some(conn) = self.listener.as_mut() {
            for notification in conn.notifications_iter() {
                match notification {
                    Ok(_) => woken = true,
                    Err(error) => {
                        failed = Some(error);
                        break;
                    }
                }
            }
        }
        if let Some(error) = failed {
            warn!(error = %error, "kitchen feed: the listening connection failed; reconnecting");
            self.listener = None;
            woken = true;
        }
        let due = self.last_read.is_none_or(|at| at.elapsed() >= settings.safety_interval);
        if !(woken || due) {
            return;
        }
        self.last_read = Some(Instant::now());
        if let Err(error) = self.catch_up(feed, events, render) {
            debug!(error = %error, "kitchen feed: reading events failed; retrying");
        }
    }

    /// Hands out every event committed since the last ones handed out.
    fn catch_up<F: Clone + Send + Sync + 'static>(
        &mut self,
        feed: &KitchenFeed<F>,
        events: &dyn KitchenRepository,
        render: &Render<F>,
    ) -> Result<(), application::StoreError> {
        let heads = events.heads()?;
        let Some(cursors) = self.cursors.as_mut() else {
            // The first read: the feed starts from now (displays read the past by id).
            self.cursors = Some(heads.into_iter().collect());
            return Ok(());
        };
        for (location, head) in heads {
            let cursor = cursors.entry(location).or_insert(0);
            if head <= *cursor {
                continue;
            }
            let Some(sender) = feed.followed(location) else {
                *cursor = head;
                continue;
            };
            while *cursor < head {
                let batch = events.events_after(location, *cursor, MAX_EVENTS_PER_READ)?;
                let Some(last) = batch.last().map(|e| e.id) else { break };
                for event in &batch {
                    // No receiver left is no error: the next step forgets the channel.
                    let _ = sender.send(FeedItem { id: event.id, frame: render(event) });
                }
                *cursor = last;
            }
        }
        Ok(())
    }
}
