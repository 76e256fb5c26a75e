//! Waiting for the gateway's `GET /ready`: a minimal HTTP/1.1 GET over a TCP stream (no HTTP
//! client needed for one status line).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one probe may take, connect to last byte.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// The most of an answer we read (the body is only quoted in messages).
const MAX_ANSWER: u64 = 16 * 1024;
/// How much of a body a message quotes.
const QUOTED_BODY: usize = 300;

/// What one probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Ready,
    /// The gateway answered, but not 200 (its body usually says which service is missing).
    NotReady {
        status: u16,
        body: String,
    },
    /// Nothing answered: not listening yet, or the answer was not HTTP.
    Unreachable(String),
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::Ready => f.write_str("ready"),
            Probe::NotReady { status, body } if body.is_empty() => write!(f, "HTTP {status}"),
            Probe::NotReady { status, body } => write!(f, "HTTP {status}: {body}"),
            Probe::Unreachable(reason) => write!(f, "no answer ({reason})"),
        }
    }
}

/// One `GET path` against `addr`.
pub async fn probe(addr: SocketAddr, path: &str) -> Probe {
    match tokio::time::timeout(PROBE_TIMEOUT, exchange(addr, path)).await {
        Ok(Ok(answer)) => parse(&answer),
        Ok(Err(error)) => Probe::Unreachable(error.to_string()),
        Err(_) => Probe::Unreachable(format!("no answer within {PROBE_TIMEOUT:?}")),
    }
}

/// Probes every `interval` until the answer is 200 or `timeout` passes; the error is the last
/// thing seen, to tell the operator what did not come up.
pub async fn wait_until_ready(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
    interval: Duration,
) -> Result<(), Probe> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let seen = probe(addr, path).await;
        if seen == Probe::Ready {
            return Ok(());
        }
        if tokio::time::Instant::now() + interval >= deadline {
            return Err(seen);
        }
        tokio::time::sleep(interval).await;
    }
}

async fn exchange(addr: SocketAddr, path: &str) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).await?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.take(MAX_ANSWER).read_to_end(&mut answer).await?;
    Ok(answer)
}

fn parse(answer: &[u8]) -> Probe {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status_line = head.lines().next().unwrap_or_default();
    // "HTTP/1.1 200 OK"
    let mut words = status_line.split_whitespace();
    let status = match (words.next(), words.next().map(str::parse::<u16>)) {
        (Some(version), Some(Ok(status))) if version.starts_with("HTTP/") => status,
        _ => return Probe::Unreachable(format!("not an HTTP answer: {status_line:?}")),
    };
    if status == 200 {
        return Probe::Ready;
    }
    let body: String = body.trim().chars().take(QUOTED_BODY).collect();
    Probe::NotReady { status, body }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that answers every connection with `answer`, as a gateway would.
    async fn answering(answer: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 1024];
                    let _ = stream.read(&mut request).await;
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        addr
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
    const UNAVAILABLE: &str = "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
                               connection: close\r\n\r\n{\"staff\":\"no responders\"}";

    #[tokio::test]
    async fn a_200_answer_is_ready() {
        let addr = answering(OK).await;
        assert_eq!(probe(addr, "/ready").await, Probe::Ready);
    }

    #[tokio::test]
    async fn a_503_answer_is_not_ready_and_quotes_the_body() {
        let addr = answering(UNAVAILABLE).await;
        let seen = probe(addr, "/ready").await;
        assert_eq!(
            seen,
            Probe::NotReady {
                status: 503,
                body: r#"{"staff":"no responders"}"#.into()
            }
        );
        assert!(seen.to_string().contains("staff"));
    }

    #[tokio::test]
    async fn nothing_listening_is_unreachable() {
        let addr: SocketAddr = format!("127.0.0.1:{}", kit::nats_server::free_port())
            .parse()
            .unwrap();
        assert!(matches!(probe(addr, "/ready").await, Probe::Unreachable(_)));
    }

    #[tokio::test]
    async fn waiting_gives_up_with_the_last_answer() {
        let addr = answering(UNAVAILABLE).await;
        let waited = wait_until_ready(
            addr,
            "/ready",
            Duration::from_millis(300),
            Duration::from_millis(50),
        )
        .await;
        assert!(matches!(waited, Err(Probe::NotReady { status: 503, .. })));
    }

    #[tokio::test]
    async fn waiting_ends_once_the_gateway_answers_200() {
        let addr = answering(OK).await;
        let waited = wait_until_ready(
            addr,
            "/ready",
            Duration::from_secs(5),
            Duration::from_millis(50),
        )
        .await;
        assert_eq!(waited, Ok(()));
    }

    #[test]
    fn a_garbage_answer_is_not_taken_for_http() {
        assert!(matches!(parse(b"SSH-2.0-OpenSSH"), Probe::Unreachable(_)));
    }
}
