//! A service's read-model on whichever backend its database is: the one runner a service
//! starts, for a projection written for both.

use std::sync::Arc;

use async_nats::jetstream;
use sqlx::{Postgres, Sqlite};
use tokio_util::sync::CancellationToken;

use super::{CatchUp, Projection, ReadModel, Subscription};
use crate::EventPublisher;
use crate::database::Database;

pub enum ReadModelOn<P> {
    Sqlite(ReadModel<P, Sqlite>),
    Postgres(ReadModel<P, Postgres>),
}

impl<P: Projection<Sqlite> + Projection<Postgres>> ReadModelOn<P> {
    /// The runner of `projection` on `database` (see [`ReadModel::new`]).
    pub async fn new(
        js: jetstream::Context,
        database: &Database,
        projection: Arc<P>,
        publisher: EventPublisher,
        subscription: Subscription,
    ) -> Result<Self, sqlx::Error> {
        Ok(match database {
            Database::Sqlite { pool, .. } => ReadModelOn::Sqlite(
                ReadModel::new(js, pool.clone(), projection, publisher, subscription).await?,
            ),
            Database::Postgres(pool) => ReadModelOn::Postgres(
                ReadModel::new(js, pool.clone(), projection, publisher, subscription).await?,
            ),
        })
    }

    pub fn catch_up(&self) -> CatchUp {
        match self {
            ReadModelOn::Sqlite(runner) => runner.catch_up(),
            ReadModelOn::Postgres(runner) => runner.catch_up(),
        }
    }

    /// Runs until `shutdown` (see [`ReadModel::run`]).
    pub async fn run(self, shutdown: CancellationToken) {
        match self {
            ReadModelOn::Sqlite(runner) => runner.run(shutdown).await,
            ReadModelOn::Postgres(runner) => runner.run(shutdown).await,
        }
    }
}
