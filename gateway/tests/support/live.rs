//! A gateway serving on a real port in front of its own nats-server with `HOSPITAL_EVENTS`
//! provisioned, and a bare HTTP/1.1 client that reads a chunked SSE body as it arrives.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use chrono::Utc;
use gateway::{AppState, Gateway};
use kit::nats_server::TestNatsServer;
use kit::runtime::{BoxError, Component};
use serde_json::{Value, json};
use shared_events::staff::StaffRole;
use shared_events::subjects::EVENT_STREAM;
use shared_events::{Actor, Aggregate, Authenticated, EventEnvelope};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{ADMIN_ID, config};

/// How long a test waits for anything the feed should send.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub struct LiveGateway {
    pub addr: SocketAddr,
    pub state: AppState,
    /// JetStream as the operator: reads the stream.
    pub js: jetstream::Context,
    /// JetStream as each owning service, the only one allowed to publish its events.
    publishers: Vec<(&'static str, jetstream::Context)>,
    pub nats: TestNatsServer,
    shutdown: CancellationToken,
    running: JoinHandle<Result<(), BoxError>>,
}

impl LiveGateway {
    pub async fn start() -> Self {
        let nats = TestNatsServer::start().await;
        let config = config(&nats, Duration::from_secs(5));
        let mut publishers = Vec::new();
        for service in ["patient", "staff", "appointment", "record"] {
            let client = nats.connect_as(service).await;
            publishers.push((service, kit::event_stream::provision(&client, 1).await));
        }
        let js = jetstream::new(nats.connect_as(kit::nats_users::OPERATOR).await);
        let gateway = Gateway::build(config).await.unwrap();
        let addr = gateway.local_addr();
        let state = gateway.state().clone();
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(gateway.run_until_stopped(shutdown.clone()));
        let deadline = Instant::now() + PATIENCE;
        while !state.revocations().is_loaded() {
            assert!(Instant::now() < deadline, "revoked tokens never loaded");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        LiveGateway {
            addr,
            state,
            js,
            publishers,
            nats,
            shutdown,
            running,
        }
    }

    pub fn token(&self, role: StaffRole) -> String {
        let who = Authenticated {
            staff_id: ADMIN_ID,
            name: "Test User".into(),
            role,
        };
        self.state.tokens().issue(&who).unwrap().access_token
    }

    /// Publishes an envelope on its own subject; returns its stream sequence.
    pub async fn publish(&self, event: &EventEnvelope<Value>) -> u64 {
        let payload = serde_json::to_vec(event).unwrap();
        self.publish_raw(&event.subject(), payload).await
    }

    /// Publishes on `subject` (`hospital.events.<aggregate>...`) as that aggregate's service.
    pub async fn publish_raw(&self, subject: &str, payload: Vec<u8>) -> u64 {
        let aggregate = subject.split('.').nth(2).unwrap_or_default();
        let (_, js) = self
            .publishers
            .iter()
            .find(|(service, _)| *service == aggregate)
            .unwrap_or_else(|| panic!("no service publishes {subject}"));
        let ack = js.publish(subject.to_owned(), payload.into()).await;
        ack.unwrap().await.unwrap().sequence
    }

    /// The live feeds' consumers (not the gateway's own one of staff events).
    pub async fn consumer_count(&self) -> usize {
        use futures::TryStreamExt;
        let stream = self.js.get_stream(EVENT_STREAM).await.unwrap();
        let consumers: Vec<_> = stream.consumers().try_collect().await.unwrap();
        consumers
            .iter()
            .filter(|info| {
                info.config.description.as_deref()
                    != Some(gateway::auth::revocation::STAFF_CONSUMER_DESCRIPTION)
            })
            .count()
    }

    /// Waits until the stream has `count` consumers.
    pub async fn await_consumers(&self, count: usize) {
        self.await_consumers_within(count, PATIENCE).await;
    }

    pub async fn await_consumers_within(&self, count: usize, patience: Duration) {
        let deadline = Instant::now() + patience;
        loop {
            let now = self.consumer_count().await;
            if now == count {
                return;
            }
            assert!(Instant::now() < deadline, "{now} consumers, not {count}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `GET path` with a bearer token (when given) and any other headers.
    pub async fn get(&self, path: &str, token: Option<&str>, headers: &[(&str, &str)]) -> Http {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(bearer) = &bearer {
            all.push(("Authorization", bearer));
        }
        Http::get(self.addr, path, &all).await
    }

    /// Stops the gateway as a shutdown signal would; returns how it ended.
    pub async fn stop(self) -> Result<(), String> {
        self.shutdown.cancel();
        match tokio::time::timeout(PATIENCE, self.running).await {
            Ok(Ok(result)) => result.map_err(|e| e.to_string()),
            other => Err(format!("{other:?}")),
        }
    }
}

/// An envelope as a service would publish it.
pub fn envelope(aggregate: Aggregate, verb: &str) -> EventEnvelope<Value> {
    EventEnvelope {
        event_id: Uuid::now_v7(),
        event_type: format!("{}.{verb}", aggregate.as_str()),
        aggregate,
        aggregate_id: Uuid::now_v7(),
        aggregate_version: 1,
        occurred_at: Utc::now(),
        actor: Actor::system(),
        correlation_id: Some("req-1".into()),
        data: json!({"name": "Ada Lovelace", "note": "line one\nline two"}),
    }
}

/// One SSE message; comment-only blocks (keep-alives) are not messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseMessage {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data_lines: Vec<String>,
}

impl SseMessage {
    pub fn data(&self) -> Value {
        assert_eq!(self.data_lines.len(), 1, "data on one line: {self:?}");
        serde_json::from_str(&self.data_lines[0]).unwrap()
    }
}

/// A response read from a raw TCP connection, its body decoded as it arrives.
pub struct Http {
    stream: TcpStream,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Received, not yet decoded.
    raw: Vec<u8>,
    /// Decoded body, not yet consumed.
    body: Vec<u8>,
    /// The terminating zero-length chunk has arrived.
    complete: bool,
}

impl Http {
    pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Self {
        Self::send(TcpStream::connect(addr).await.unwrap(), path, headers).await
    }

    /// Like [`Self::get`] over a connection with a tiny receive window: a client that stops
    /// reading then stalls the server's writes quickly.
    pub async fn get_through_narrow_window(
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        Self::send(socket.connect(addr).await.unwrap(), path, headers).await
    }

    async fn send(mut stream: TcpStream, path: &str, headers: &[(&str, &str)]) -> Self {
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut http = Http {
            stream,
            status: 0,
            headers: Vec::new(),
            raw: Vec::new(),
            body: Vec::new(),
            complete: false,
        };
        let end = loop {
            if let Some(end) = find(&http.raw, b"\r\n\r\n") {
                break end;
            }
            assert!(http.read_more().await, "connection closed before the head");
        };
        let head = String::from_utf8(http.raw.drain(..end + 4).collect()).unwrap();
        let mut lines = head.split("\r\n");
        http.status = lines.next().unwrap()[9..12].parse().unwrap();
        http.headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        http
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        let mut found = self.headers.iter().filter(|(n, _)| *n == name);
        found.next().map(|(_, v)| v.as_str())
    }

    async fn read_more(&mut self) -> bool {
        let mut buffer = [0u8; 16 * 1024];
        let read = tokio::time::timeout(PATIENCE, self.stream.read(&mut buffer)).await;
        let n = read.expect("nothing arrived in time").unwrap_or(0);
        self.raw.extend_from_slice(&buffer[..n]);
        n > 0
    }

    /// Moves every complete chunk from `raw` to `body`.
    fn decode_chunks(&mut self) {
        while let Some(line_end) = find(&self.raw, b"\r\n") {
            let size_text = std::str::from_utf8(&self.raw[..line_end]).unwrap();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
            let start = line_end + 2;
            if self.raw.len() < start + size + 2 {
                return;
            }
            self.body.extend_from_slice(&self.raw[start..start + size]);
            self.raw.drain(..start + size + 2);
            if size == 0 {
                self.complete = true;
                return;
            }
        }
    }

    /// The next SSE message, or `None` once the body has ended cleanly (the terminating
    /// chunk). Panics if nothing comes in time or the connection breaks off mid-body.
    pub async fn next_message(&mut self) -> Option<SseMessage> {
        assert_eq!(self.header("transfer-encoding"), Some("chunked"));
        loop {
            self.decode_chunks();
            while let Some(end) = find(&self.body, b"\n\n") {
                let block = String::from_utf8(self.body.drain(..end + 2).collect()).unwrap();
                if let Some(message) = parse_block(&block) {
                    return Some(message);
                }
            }
            if self.complete {
                assert!(self.body.is_empty(), "a partial message at the end");
                return None;
            }
            assert!(
                self.read_more().await,
                "the stream broke off without ending"
            );
        }
    }

    /// The whole body of a response that is not a stream (an error), as JSON.
    pub async fn json(mut self) -> Value {
        let length: usize = self.header("content-length").unwrap().parse().unwrap();
        while self.raw.len() < length {
            assert!(self.read_more().await, "body cut short");
        }
        serde_json::from_slice(&self.raw[..length]).unwrap()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_block(block: &str) -> Option<SseMessage> {
    let mut message = SseMessage {
        id: None,
        event: None,
        data_lines: Vec::new(),
    };
    let mut any_field = false;
    for line in block
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(':'))
    {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
        any_field = true;
        match field {
            "id" => message.id = Some(value),
            "event" => message.event = Some(value),
            "data" => message.data_lines.push(value),
            other => panic!("unexpected SSE field {other:?}"),
        }
    }
    any_field.then_some(message)
}
