//! `hospital events stats`: the stream's size, how many events of each kind it holds, and how far
//! behind each durable consumer (the read-models) is, and the events the read-models parked.

use std::collections::BTreeMap;

use anyhow::Context;
use async_nats::jetstream::{self, consumer};
use futures::TryStreamExt;
use shared_events::subjects::EVENT_STREAM;

use super::Target;

pub async fn run(target: &Target) -> anyhow::Result<()> {
    let client = target.connect().await?;
    let js = jetstream::new(client);
    let stream = js.get_stream(EVENT_STREAM).await.with_context(|| {
        format!(
            "no stream {EVENT_STREAM} at {} (has the system run yet?)",
            kit::config::mask_url(&target.url())
        )
    })?;
    let mut subjects = stream
        .info_with_subjects("hospital.events.>")
        .await
        .context("cannot read the stream's info")?;
    let state = subjects.info.state.clone();
    let mut counts = Vec::new();
    while let Some(entry) = subjects.try_next().await.context("cannot list subjects")? {
        counts.push(entry);
    }
    let mut consumers: Vec<consumer::Info> = stream
        .consumers()
        .try_collect()
        .await
        .context("cannot list the consumers")?;
    // Ephemeral consumers (a running `tail`, a test's reader) come and go; only durable ones lag.
    consumers.retain(|c| c.config.durable_name.is_some());
    consumers.sort_by(|a, b| a.name.cmp(&b.name));

    println!(
        "stream {EVENT_STREAM}: {} messages, {} bytes, first sequence {}, last sequence {}",
        state.messages, state.bytes, state.first_sequence, state.last_sequence
    );
    println!();
    print!("{}", per_kind_table(&by_aggregate_and_verb(counts)));
    println!();
    print!("{}", consumer_table(&consumers));
    println!();
    print!(
        "{}",
        crate::parked::table(&crate::parked::read(target).await, 20)
    );
    Ok(())
}

/// Sums per-subject counts into `hospital.events.<aggregate>.*.<verb>` patterns; a subject of
/// another shape is kept as it is, so nothing is silently dropped.
fn by_aggregate_and_verb(counts: Vec<(String, usize)>) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    for (subject, count) in counts {
        let tokens: Vec<&str> = subject.split('.').collect();
        let key = match tokens.as_slice() {
            ["hospital", "events", aggregate, _id, verb] => {
                format!("hospital.events.{aggregate}.*.{verb}")
            }
            _ => subject,
        };
        *kinds.entry(key).or_insert(0) += count;
    }
    kinds
}

fn per_kind_table(kinds: &BTreeMap<String, usize>) -> String {
    let width = kinds.keys().map(String::len).max().unwrap_or(0).max(7);
    let mut out = format!("{:<width$}  {:>6}\n", "SUBJECT", "EVENTS");
    for (kind, count) in kinds {
        out += &format!("{kind:<width$}  {count:>6}\n");
    }
    if kinds.is_empty() {
        out += "(no events)\n";
    }
    out
}

fn consumer_table(consumers: &[consumer::Info]) -> String {
    let width = consumers.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let width = width.max("DURABLE CONSUMER".len());
    let mut out = format!(
        "{:<width$}  {:>9}  {:>9}  {:>7}  {:>7}\n",
        "DURABLE CONSUMER", "DELIVERED", "ACK FLOOR", "PENDING", "UNACKED"
    );
    for c in consumers {
        out += &format!(
            "{:<width$}  {:>9}  {:>9}  {:>7}  {:>7}\n",
            c.name,
            c.delivered.stream_sequence,
            c.ack_floor.stream_sequence,
            c.num_pending,
            c.num_ack_pending
        );
    }
    if consumers.is_empty() {
        out += "(no durable consumers)\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_counted_per_aggregate_and_verb() {
        let counts = vec![
            ("hospital.events.patient.a.created".to_owned(), 1),
            ("hospital.events.patient.b.created".to_owned(), 1),
            ("hospital.events.patient.a.updated".to_owned(), 2),
            ("hospital.events.odd".to_owned(), 1),
        ];
        let kinds = by_aggregate_and_verb(counts);
        assert_eq!(kinds["hospital.events.patient.*.created"], 2);
        assert_eq!(kinds["hospital.events.patient.*.updated"], 2);
        assert_eq!(kinds["hospital.events.odd"], 1);
        let table = per_kind_table(&kinds);
        assert!(table.starts_with("SUBJECT"), "{table}");
        assert!(
            table.contains("hospital.events.patient.*.created       2"),
            "{table}"
        );
    }
}
