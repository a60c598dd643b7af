//! Knowing the catalog generation without asking Postgres on every request.
//!
//! Every kept answer (counts, facets, pages, lists, entities by name) is valid for one catalog
//! generation (see `generation_cache`), and reading the generation was a round trip per request: at
//! 32 concurrent requests on two cores, the round trip, not the answer, set the latency. The trigger
//! that bumps the generation also announces the new value with `NOTIFY` (migration `0012`), and each
//! replica keeps one connection listening: while it listens, the generation is an atomic load.
//!
//! How current it is:
//! - A change committed by this process is seen by its next request: the code that commits one calls
//!   [`GenerationWatch::catch_up`], which reads the value.
//! - A change committed by another replica is seen once its notification arrives, normally within a
//!   millisecond of the commit.
//! - Until the listener is connected, and whenever its connection is lost, requests read the value from
//!   Postgres as before. Notifications sent meanwhile are lost, so after reconnecting the watch reads the
//!   value again before it trusts itself. Every [`RECHECK`] it also reads the value on an ordinary
//!   connection, which bounds the staleness of a connection that hangs without failing.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;

use super::db;

/// The channel migration `0012` notifies on.
const CHANNEL: &str = "atrium_catalog_generation";
/// How often the generation is read even while notifications arrive.
const RECHECK: Duration = Duration::from_secs(5);
/// How long to wait before listening again after the connection failed.
const RETRY: Duration = Duration::from_secs(1);

/// The newest catalog generation this process knows of.
pub struct GenerationWatch {
    inner: Arc<Inner>,
    started: Once,
}

struct Inner {
    db: PgPool,
    known: AtomicI64,
    /// Whether `known` is kept current by the listener.
    listening: AtomicBool,
}

impl GenerationWatch {
    pub fn new(db: PgPool) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                known: AtomicI64::new(i64::MIN),
                listening: AtomicBool::new(false),
            }),
            started: Once::new(),
        }
    }

    /// The current generation. The first call starts the listener (so every user of the catalog,
    /// the server and the tests alike, gets one); until it listens, the value is read.
    pub async fn current(&self) -> Result<i64, sqlx::Error> {
        self.start();
        if self.inner.listening.load(Ordering::Acquire) {
            return Ok(self.inner.known.load(Ordering::Acquire));
        }
        let value = db::generation::current(&self.inner.db).await?;
        self.inner.known.fetch_max(value, Ordering::AcqRel);
        Ok(value)
    }

    /// Reads the generation after this process committed a change, so that its next request sees the
    /// change without waiting for the notification. A failure is logged: the notification still comes.
    pub async fn catch_up(&self) {
        match db::generation::current(&self.inner.db).await {
            Ok(value) => {
                self.inner.known.fetch_max(value, Ordering::AcqRel);
            }
            Err(e) => tracing::warn!(error = %e, "reading the catalog generation failed"),
        }
    }

    fn start(&self) {
        self.started.call_once(|| {
            let inner = self.inner.clone();
            tokio::spawn(async move { inner.listen().await });
        });
    }
}

impl Inner {
    /// Listens until the pool closes, reconnecting after failures.
    async fn listen(&self) {
        while !self.db.is_closed() {
            if let Err(e) = self.listen_once().await {
                self.listening.store(false, Ordering::Release);
                if self.db.is_closed() {
                    return;
                }
                tracing::warn!(error = %e, "listening for catalog generations failed; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    }

    /// One connection's life: listen, read the value, then follow notifications. Returns when the
    /// connection is lost (`Ok`, reconnect at once) or fails (`Err`).
    async fn listen_once(&self) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.db).await?;
        listener.listen(CHANNEL).await?;
        // Listening first: a change committed between the two is in the value or in a notification.
        self.recheck().await?;
        self.listening.store(true, Ordering::Release);
        let mut recheck = tokio::time::interval(RECHECK);
        recheck.tick().await;
        loop {
            tokio::select! {
                notification = listener.try_recv() => match notification? {
                    Some(notification) => match notification.payload().parse::<i64>() {
                        Ok(value) => {
                            self.known.fetch_max(value, Ordering::AcqRel);
                        }
                        Err(_) => self.recheck().await?,
                    },
                    None => {
                        // The connection was lost, and with it any notification sent meanwhile.
                        self.listening.store(false, Ordering::Release);
                        return Ok(());
                    }
                },
                _ = recheck.tick() => self.recheck().await?,
            }
        }
    }

    async fn recheck(&self) -> Result<(), sqlx::Error> {
        let value = db::generation::current(&self.db).await?;
        self.known.fetch_max(value, Ordering::AcqRel);
        Ok(())
    }
}
