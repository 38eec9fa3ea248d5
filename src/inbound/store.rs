//! Group commit of received messages. Each session hands its copies to a
//! few writer tasks and waits for their commit before it answers `250`;
//! a writer takes everything queued while it was busy and stores it with
//! one statement. Under load that is one round trip, one commit and one
//! WAL flush for many messages instead of one each; when idle a message is
//! written at once, with no added wait.
//!
//! Mail that changes other rows (return-path reports with effects) is
//! stored on its own, in its own transaction (`db::inbound::store`), and
//! so is a large message, which gains nothing from sharing a statement
//! and would hold up the small ones behind it.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::db;
use crate::db::inbound::NewInbound;

/// Writers at once: while one waits on PostgreSQL, another gathers.
const WRITERS: usize = 2;
/// Messages a writer takes into one statement, at most.
const MAX_BATCH: usize = 64;
/// Larger messages are written by their session.
const MAX_BATCHED_BYTES: usize = 256 << 10;
/// Messages waiting for a writer before sessions wait to queue.
const QUEUE: usize = 1024;

/// One message's copies, waiting to be stored, and who waits for it.
struct Job {
    copies: Vec<NewInbound>,
    done: oneshot::Sender<sqlx::Result<()>>,
}

/// The sessions' side: hands messages to the writers.
pub struct Store {
    pool: PgPool,
    queue: mpsc::Sender<Job>,
}

impl Store {
    /// Starts the writers; they end when the `Store` is dropped and the
    /// queue is empty.
    pub fn start(pool: PgPool) -> Store {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let jobs = Arc::new(Mutex::new(jobs));
        for _ in 0..WRITERS {
            tokio::spawn(write(pool.clone(), jobs.clone()));
        }
        Store { pool, queue }
    }

    /// Stores the copies of one message, all or none; `Ok` once committed.
    pub async fn store(&self, copies: Vec<NewInbound>) -> sqlx::Result<()> {
        if copies.iter().any(|c| !c.effects.is_empty()) || size(&copies) > MAX_BATCHED_BYTES {
            return db::inbound::store(&self.pool, &copies).await;
        }
        let (done, committed) = oneshot::channel();
        self.queue
            .send(Job { copies, done })
            .await
            .map_err(|_| sqlx::Error::WorkerCrashed)?;
        committed.await.unwrap_or(Err(sqlx::Error::WorkerCrashed))
    }
}

/// One writer: takes what is queued, stores it, tells each session.
async fn write(pool: PgPool, jobs: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let batch = {
            let mut jobs = jobs.lock().await;
            let Some(first) = jobs.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                let Ok(job) = jobs.try_recv() else {
                    break;
                };
                batch.push(job);
            }
            batch
        };
        let copies: Vec<&NewInbound> = batch.iter().flat_map(|job| &job.copies).collect();
        crate::observability::metrics::inbound_store_batch(batch.len());
        match db::inbound::store_many(&pool, &copies).await {
            Ok(()) => {
                for job in batch {
                    let _ = job.done.send(Ok(()));
                }
            }
            // One message's fault must not fail the others: each alone.
            Err(err) if batch.len() > 1 => {
                tracing::warn!(error = %err, messages = batch.len(), "a batch of received messages failed; storing each alone");
                for job in batch {
                    let result = db::inbound::store(&pool, &job.copies).await;
                    let _ = job.done.send(result);
                }
            }
            Err(err) => {
                if let Some(job) = batch.into_iter().next() {
                    let _ = job.done.send(Err(err));
                }
            }
        }
    }
}

/// A message's size (its copies share the bytes).
fn size(copies: &[NewInbound]) -> usize {
    copies.first().map_or(0, |c| c.raw.len())
}
