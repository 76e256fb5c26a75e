//! `hospital events tail`: one line per event, from an ordered consumer (ephemeral, in memory,
//! no acks), so nothing durable is left on the server.

use anyhow::{Context, bail};
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use serde_json::{Value, json};
use shared_events::EventEnvelope;
use shared_events::subjects::EVENT_STREAM;

use super::Target;

/// Consecutive stream errors after which tailing gives up (the ordered consumer already recreates
/// itself on gaps, so this only trips when the server is really gone).
const MAX_CONSECUTIVE_ERRORS: u32 = 10;

#[derive(Debug, clap::Args)]
pub struct TailArgs {
    /// Only events whose subject matches (e.g. `hospital.events.patient.>`).
    #[arg(long, value_name = "FILTER", default_value = "hospital.events.>")]
    subject: String,

    /// Start at the first event stored at or after this RFC 3339 time (e.g. 2026-11-25T13:00:00Z).
    #[arg(long, value_name = "TIME", conflicts_with = "from_seq")]
    since: Option<String>,

    /// Start at this stream sequence (1 is the first event ever).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    from_seq: Option<u64>,

    /// Print each envelope as one line of JSON instead of a summary.
    #[arg(long)]
    json: bool,

    /// Stop after this many events.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,

    #[command(flatten)]
    target: Target,
}

pub async fn run(args: TailArgs) -> anyhow::Result<()> {
    // Parsed before connecting, so a typo is reported as such.
    let deliver_policy = deliver_policy(&args)?;
    let client = args.target.connect().await?;
    let js = jetstream::new(client.clone());
    let stream = js.get_stream(EVENT_STREAM).await.with_context(|| {
        format!(
            "no stream {EVENT_STREAM} at {} (has the system run yet?)",
            kit::config::mask_url(&args.target.url())
        )
    })?;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: args.subject.clone(),
            deliver_policy,
            ..Default::default()
        })
        .await
        .with_context(|| format!("cannot read {EVENT_STREAM} with filter {}", args.subject))?;
    let mut messages = consumer.messages().await.context("cannot start reading")?;

    let shutdown = kit::runtime::shutdown_on_signal();
    let mut printed = 0u64;
    let mut errors = 0u32;
    // The ordered consumer renames itself when it recreates; the last message says its name.
    let mut consumer_name = None;
    while args.limit.is_none_or(|limit| printed < limit) {
        let next = tokio::select! {
            _ = shutdown.cancelled() => break,
            next = messages.next() => next,
        };
        let message = match next {
            None => break,
            Some(Ok(message)) => message,
            Some(Err(error)) => {
                errors += 1;
                if errors >= MAX_CONSECUTIVE_ERRORS {
                    bail!("reading {EVENT_STREAM} failed: {error}");
                }
                eprintln!("hospital events: {error}");
                continue;
            }
        };
        errors = 0;
        let sequence = match message.info() {
            Ok(info) => {
                consumer_name = Some(info.consumer.to_owned());
                info.stream_sequence
            }
            Err(_) => 0,
        };
        print_event(sequence, &message.subject, &message.payload, args.json);
        printed += 1;
    }
    // Best effort: the server drops an idle ordered consumer after 30 s anyway.
    if let Some(name) = consumer_name {
        let _ = stream.delete_consumer(&name).await;
    }
    let _ = client.flush().await;
    Ok(())
}

/// New events only, unless `--from-seq` or `--since` says otherwise.
fn deliver_policy(args: &TailArgs) -> anyhow::Result<consumer::DeliverPolicy> {
    if let Some(start_sequence) = args.from_seq {
        return Ok(consumer::DeliverPolicy::ByStartSequence { start_sequence });
    }
    let Some(since) = &args.since else {
        return Ok(consumer::DeliverPolicy::New);
    };
    // async-nats parses the time itself (RFC 3339), which spares this crate a time library.
    serde_json::from_value(json!({"deliver_policy": "by_start_time", "opt_start_time": since}))
        .with_context(|| format!("--since {since}: not an RFC 3339 time (2026-11-25T13:00:00Z)"))
}

fn print_event(sequence: u64, subject: &str, payload: &[u8], as_json: bool) {
    let envelope = serde_json::from_slice::<Value>(payload)
        .ok()
        .and_then(|value| {
            let envelope = serde_json::from_value::<EventEnvelope>(value.clone()).ok()?;
            Some((value, envelope))
        });
    match envelope {
        Some((value, _)) if as_json => println!("{value}"),
        Some((_, envelope)) => println!("{}", summary(sequence, &envelope)),
        None => {
            let line = format!(
                "{sequence}  {subject}  (not an event envelope: {} bytes)",
                payload.len()
            );
            // With --json stdout stays one envelope per line, so the notice goes to stderr.
            if as_json {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
    }
}

/// `42  2026-11-25T13:24:01Z  hospital.events.patient.<id>.deleted  admin:<actor-id>  v3`
fn summary(sequence: u64, envelope: &EventEnvelope) -> String {
    format!(
        "{sequence}  {}  {}  {}:{}  v{}",
        envelope.occurred_at.format("%Y-%m-%dT%H:%M:%SZ"),
        envelope.subject(),
        envelope.actor.role,
        envelope.actor.id,
        envelope.aggregate_version
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(since: Option<&str>, from_seq: Option<u64>) -> TailArgs {
        TailArgs {
            subject: "hospital.events.>".into(),
            since: since.map(str::to_owned),
            from_seq,
            json: false,
            limit: None,
            target: Target {
                nats_url: None,
                data_dir: "./data".into(),
            },
        }
    }

    #[test]
    fn the_start_is_new_a_sequence_or_a_time() {
        assert_eq!(
            deliver_policy(&args(None, None)).unwrap(),
            consumer::DeliverPolicy::New
        );
        assert_eq!(
            deliver_policy(&args(None, Some(7))).unwrap(),
            consumer::DeliverPolicy::ByStartSequence { start_sequence: 7 }
        );
        let since = deliver_policy(&args(Some("2026-11-25T13:00:00Z"), None)).unwrap();
        assert!(matches!(since, consumer::DeliverPolicy::ByStartTime { .. }));
        assert!(deliver_policy(&args(Some("yesterday"), None)).is_err());
    }
}
