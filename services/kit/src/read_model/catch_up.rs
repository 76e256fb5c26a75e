//! "Have I seen everything up to now?" ([`CatchUp`]): the stream's last sequence, and a bounded
//! wait until the read-model has handled it. An instance whose runner consumes learns that from
//! its runner; on PostgreSQL an instance that does not lead (another instance consumes) reads
//! the position the leader stores in the shared database ([`SharedPosition`]).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use shared_events::subjects::EVENT_STREAM;
use sqlx::PgPool;
use tokio::sync::watch;

/// How often an instance that does not lead looks at the stored position while it waits.
const POLL: Duration = Duration::from_millis(20);

/// Waits until a read-model has applied every event that exists now. Cheap to clone.
#[derive(Clone)]
pub struct CatchUp {
    pub(super) js: jetstream::Context,
    /// The last stream sequence this instance's runner handled.
    pub(super) applied: watch::Receiver<u64>,
    /// Whether this instance's runner is the one consuming.
    pub(super) leading: watch::Receiver<bool>,
    /// Where the leader's position is read while another instance leads (PostgreSQL).
    pub(super) shared: Option<SharedPosition>,
}

impl CatchUp {
    /// The stream's last sequence. The runner handles every event of the stream (it acknowledges
    /// those that are not its own unread), so this is what it must have reached. Not the last
    /// sequence among the read-model's own subjects: with one subject per aggregate, nats-server
    /// finds that by walking every subject that matches, and every booking would then cost
    /// time in proportion to the number of patients ever registered.
    async fn target(&self) -> Result<u64, async_nats::Error> {
        let stream = self.js.get_stream(EVENT_STREAM).await?;
        Ok(stream.cached_info().state.last_sequence)
    }

    /// Waits (at most `patience`) until everything in the stream now has been applied, by this
    /// instance's runner or, while another instance leads, by that one. Returns whether it got
    /// there; either way the caller then decides on what it knows.
    pub async fn wait(&self, patience: Duration) -> bool {
        let waiting = async {
            let target = match self.target().await {
                Ok(target) => target,
                Err(error) => {
                    tracing::warn!(%error, "cannot learn the stream's last sequence");
                    return false;
                }
            };
            let mut applied = self.applied.clone();
            let here = applied.wait_for(|position| *position >= target);
            let Some(shared) = &self.shared else {
                return here.await.is_ok();
            };
            tokio::select! {
                here = here => here.is_ok(),
                () = shared.reached(target, self.leading.clone()) => true,
            }
        };
        tokio::time::timeout(patience, waiting)
            .await
            .unwrap_or(false)
    }

    /// The last stream sequence this instance's runner handled (it does not follow another
    /// instance's progress).
    pub fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Whether this instance's runner is the one consuming (on SQLite, once it runs; on
    /// PostgreSQL, while it holds the consumer's lock).
    pub fn leads(&self) -> bool {
        *self.leading.borrow()
    }
}

/// The position a consumer's leader stores, as the other instances of the service read it.
#[derive(Clone)]
pub struct SharedPosition {
    pool: PgPool,
    consumer: Arc<str>,
}

impl SharedPosition {
    pub(super) fn new(pool: PgPool, consumer: &str) -> Self {
        SharedPosition {
            pool,
            consumer: consumer.into(),
        }
    }

    /// Resolves once the stored position reaches `target`, looking only while this instance
    /// does not lead (while it does, its own runner says when). Never resolves when the runner
    /// is gone.
    async fn reached(&self, target: u64, mut leading: watch::Receiver<bool>) {
        loop {
            if leading.wait_for(|leads| !leads).await.is_err() {
                return std::future::pending().await;
            }
            match super::postgres::stored_position(&self.pool, &self.consumer).await {
                Ok(position) if position >= target => return,
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(consumer = %self.consumer, %error, "cannot read the read-model's position")
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
