//! The storage ceilings: what one durable write costs on this machine's disk, which bounds every
//! write and every audited read.
//! - an fsync: 600 bytes appended to a file and `fdatasync`ed, one at a time;
//! - JetStream with the project's `nats.conf` (`sync_interval: always`): acknowledged
//!   publishes one at a time, 64 in flight, and in atomic batches of 64 and of 8
//!   (`kit::batch_publish`); the same batches on the three-node cluster (`deploy/nats`, the
//!   stream kept by all three), where nats-server stages a batch in memory instead of in a file
//!   store of its own.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use kit::batch_publish::{BatchPublisher, Outgoing};
use kit::nats_server::{TestNatsCluster, TestNatsServer};
use serde::Serialize;

const PAYLOAD: [u8; 600] = [b'x'; 600];

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StorageCeilings {
    pub fsync_mean_us: f64,
    pub fsync_p50_us: f64,
    pub fsync_p99_us: f64,
    /// Acknowledged JetStream publishes per second, awaiting each ack.
    pub jetstream_one_at_a_time: f64,
    /// ... with 64 publishes in flight.
    pub jetstream_64_in_flight: f64,
    /// ... in atomic batches of 64, one batch at a time.
    pub jetstream_atomic_64: f64,
    /// ... in atomic batches of 8 (what a batch holds under a light load).
    pub jetstream_atomic_8: f64,
    /// The three-node cluster, a stream with three replicas: atomic batches of 64, and of 8.
    pub cluster_atomic_64: f64,
    pub cluster_atomic_8: f64,
}

pub async fn measure(dir: &Path) -> anyhow::Result<StorageCeilings> {
    let mut ceilings = fsync(dir, 2_000)?;
    let nats = TestNatsServer::start().await;
    let client = nats.connect_as("patient").await;
    let js = kit::event_stream::provision(&client, 1).await;
    let subject = "hospital.events.patient.bench";

    let started = Instant::now();
    let n = 1_000;
    for i in 0..n {
        js.publish_with_headers(subject, msg_id("one", i), PAYLOAD.to_vec().into())
            .await?
            .await?;
    }
    ceilings.jetstream_one_at_a_time = n as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let n = 5_000;
    let mut in_flight = std::collections::VecDeque::new();
    for i in 0..n {
        if in_flight.len() == 64 {
            let ack: async_nats::jetstream::context::PublishAckFuture =
                in_flight.pop_front().expect("64 in flight");
            ack.await?;
        }
        in_flight.push_back(
            js.publish_with_headers(subject, msg_id("pipe", i), PAYLOAD.to_vec().into())
                .await?,
        );
    }
    for ack in in_flight {
        ack.await?;
    }
    ceilings.jetstream_64_in_flight = n as f64 / started.elapsed().as_secs_f64();

    let publisher = BatchPublisher::start(client.clone(), js.clone(), true);
    ceilings.jetstream_atomic_64 = atomic_rate(&publisher, "atomic64", 64, 100).await?;
    ceilings.jetstream_atomic_8 = atomic_rate(&publisher, "atomic8", 8, 400).await?;
    drop(nats);

    let cluster = TestNatsCluster::start().await;
    let client = cluster.connect_as("patient").await;
    let js = kit::event_stream::provision(&client, 3).await;
    let publisher = BatchPublisher::start(client.clone(), js.clone(), true);
    ceilings.cluster_atomic_64 = atomic_rate(&publisher, "cluster64", 64, 100).await?;
    ceilings.cluster_atomic_8 = atomic_rate(&publisher, "cluster8", 8, 400).await?;
    Ok(ceilings)
}

/// Messages per second stored in `batches` atomic batches of `size`, one batch at a time.
async fn atomic_rate(
    publisher: &BatchPublisher,
    run: &str,
    size: usize,
    batches: usize,
) -> anyhow::Result<f64> {
    let subject = "hospital.events.patient.bench";
    let started = Instant::now();
    for b in 0..batches {
        let messages = (0..size)
            .map(|i| Outgoing {
                subject: subject.to_owned(),
                headers: msg_id(run, b * size + i),
                payload: PAYLOAD.to_vec().into(),
            })
            .collect();
        publisher.publish(messages).await?;
    }
    Ok((batches * size) as f64 / started.elapsed().as_secs_f64())
}

fn msg_id(run: &str, i: usize) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", format!("{run}-{i}").as_str());
    headers
}

fn fsync(dir: &Path, count: usize) -> anyhow::Result<StorageCeilings> {
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path)?;
    let mut took: Vec<Duration> = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        file.write_all(&PAYLOAD)?;
        file.sync_data()?;
        took.push(started.elapsed());
    }
    std::fs::remove_file(&path)?;
    took.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    Ok(StorageCeilings {
        fsync_mean_us: took.iter().map(|d| us(*d)).sum::<f64>() / count as f64,
        fsync_p50_us: us(took[count / 2]),
        fsync_p99_us: us(took[count * 99 / 100]),
        ..StorageCeilings::default()
    })
}
