//! Reading a stream's stored messages in order with batched direct gets (ADR-31, nats-server
//! 2.11+, stream option `allow_direct`): one request returns up to [`MAX_BATCH`] messages from
//! a sequence on, then an end-of-batch marker. The requests carry no subject filter (callers
//! select what they want): given one, nats-server counts the matching messages left for each
//! batch over every subject of the stream, one per aggregate in ours, which cost more than the
//! reading.
//!
//! Why not an ordered consumer: a consumer's deliveries carry a reply subject, and nats-server
//! remembers every reply subject delivered to a user with `allow_responses` (the services' users,
//! so they can answer commands) until it expires, a minute in `nats.conf`. It scans that whole
//! list every 4,096 deliveries, so reading a million events spent a third of the server's time
//! in the scan (`pruneReplyPerms`) and a rebuild got slower the longer the stream. A direct
//! get's answers carry no reply subject.

use std::time::Duration;

use async_nats::header::{NATS_SEQUENCE, NATS_SUBJECT};
use async_nats::{Client, StatusCode, Subject, Subscriber};
use bytes::Bytes;
use futures::StreamExt;

/// The most messages nats-server returns for one batched direct get.
pub const MAX_BATCH: usize = 1000;

/// How long a batch may take to start or to go on before the read is given up.
const PATIENCE: Duration = Duration::from_secs(10);

/// One stored message.
#[derive(Debug, Clone)]
pub struct Stored {
    pub sequence: u64,
    /// The subject it was published on.
    pub subject: Subject,
    pub payload: Bytes,
}

/// Why a read stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("NATS: {0}")]
    Nats(String),
    #[error("no answer from the stream {stream} within {PATIENCE:?}")]
    TimedOut { stream: String },
    #[error("the stream {stream} answered a direct get with {status}: {description}")]
    Refused {
        stream: String,
        status: u16,
        description: String,
    },
    #[error("a direct get answer without {0} (a nats-server older than 2.11?)")]
    Malformed(&'static str),
}

/// Reads a stream's messages in order, one batch at a time.
pub struct DirectReader {
    client: Client,
    stream: String,
    /// `$JS.API.DIRECT.GET.<stream>`.
    api: String,
    inbox: Subject,
    answers: Subscriber,
    /// The sequence the next batch starts at.
    next: u64,
    /// The read ends after the first message at or past this sequence.
    until: u64,
    /// Whether a batch was asked for and has not ended yet.
    asked: bool,
    done: bool,
}

impl DirectReader {
    /// Reads `stream`'s messages from sequence `from` up to and including `until`.
    pub async fn open(
        client: &Client,
        stream: &str,
        from: u64,
        until: u64,
    ) -> Result<Self, ReadError> {
        let inbox = Subject::from(client.new_inbox());
        let answers = client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| ReadError::Nats(e.to_string()))?;
        Ok(DirectReader {
            client: client.clone(),
            stream: stream.to_owned(),
            api: format!("$JS.API.DIRECT.GET.{stream}"),
            inbox,
            answers,
            next: from.max(1),
            until,
            asked: false,
            done: false,
        })
    }

    /// The next message, or `None` once `until` is passed or the stream has nothing more.
    pub async fn next(&mut self) -> Result<Option<Stored>, ReadError> {
        while !self.done {
            if !self.asked {
                let request = serde_json::json!({"seq": self.next, "batch": MAX_BATCH});
                self.client
                    .publish_with_reply(
                        self.api.clone(),
                        self.inbox.clone(),
                        request.to_string().into(),
                    )
                    .await
                    .map_err(|e| ReadError::Nats(e.to_string()))?;
                self.asked = true;
            }
            let answer = match tokio::time::timeout(PATIENCE, self.answers.next()).await {
                Ok(Some(answer)) => answer,
                Ok(None) => return Err(ReadError::Nats("the subscription ended".to_owned())),
                Err(_) => {
                    return Err(ReadError::TimedOut {
                        stream: self.stream.clone(),
                    });
                }
            };
            match answer.status {
                // The end of this batch: the next one is asked for.
                Some(status) if status.as_u16() == 204 => {
                    self.asked = false;
                    continue;
                }
                // Nothing (more) matches.
                Some(StatusCode::NOT_FOUND) => {
                    self.done = true;
                    continue;
                }
                Some(status) if status != StatusCode::OK => {
                    return Err(ReadError::Refused {
                        stream: self.stream.clone(),
                        status: status.as_u16(),
                        description: answer.description.unwrap_or_default(),
                    });
                }
                _ => {}
            }
            // The server's end-of-batch marker may also come as an empty message without a
            // status line, naming no stored message.
            let names_a_message = answer
                .headers
                .as_ref()
                .is_some_and(|h| h.get(NATS_SEQUENCE).is_some());
            if answer.payload.is_empty() && !names_a_message {
                self.asked = false;
                continue;
            }
            let stored = stored(answer)?;
            self.next = stored.sequence + 1;
            self.done = stored.sequence >= self.until;
            return Ok(Some(stored));
        }
        Ok(None)
    }
}

/// The message a direct get answer carries (its headers name where it was stored).
fn stored(answer: async_nats::Message) -> Result<Stored, ReadError> {
    let headers = answer.headers.as_ref();
    let sequence = headers
        .and_then(|h| h.get(NATS_SEQUENCE))
        .and_then(|v| v.as_str().parse().ok())
        .ok_or(ReadError::Malformed("Nats-Sequence"))?;
    let subject = headers
        .and_then(|h| h.get(NATS_SUBJECT))
        .map(|v| Subject::from(v.as_str()))
        .ok_or(ReadError::Malformed("Nats-Subject"))?;
    Ok(Stored {
        sequence,
        subject,
        payload: answer.payload,
    })
}
