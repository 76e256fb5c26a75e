//! What every request handler shares. The gateway keeps no state of its own beyond this: the
//! NATS connection, the token keys, what it follows of revoked tokens, the audit log writer,
//! where the frontend lives, and the signal that ends the live feeds. (Failed logins are
//! counted by the staff service, in its database.)

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::audit::AuditLog;
use crate::auth::Tokens;
use crate::auth::revocation::Revocations;
use crate::config::{Config, HttpSettings};

/// Shared by all requests; cheap to clone (client handles, `Arc`s and a token).
#[derive(Clone)]
pub struct AppState {
    /// The one NATS connection every command goes over; it reconnects by itself and lives as
    /// long as the gateway.
    nats: async_nats::Client,
    /// JetStream over the same connection: the audit trail and the revoked tokens.
    jetstream: async_nats::jetstream::Context,
    /// Token keys, made once at start from `JWT_SECRET_KEY`.
    tokens: Arc<Tokens>,
    /// Tokens refused before they expire, followed from NATS.
    revocations: Arc<Revocations>,
    /// Where every `/api` access is recorded.
    audit: Arc<AuditLog>,
    /// The NATS request timeout: every `/api` answer is due within it (see `access::deadline`).
    answer_within: std::time::Duration,
    /// The static frontend served at `/`.
    frontend_dir: Arc<PathBuf>,
    /// Cancelled when the gateway stops: the live feeds then end, so graceful shutdown is not
    /// held open by responses that would otherwise last until their tokens expire.
    feeds_closing: CancellationToken,
    /// CORS allowlist and time limits, read by the router's layers.
    http: Arc<HttpSettings>,
}

impl AppState {
    pub fn new(nats: async_nats::Client, config: &Config) -> Self {
        let jetstream = async_nats::jetstream::new(nats.clone());
        AppState {
            audit: Arc::new(AuditLog::new(
                jetstream.clone(),
                config.audit_retention,
                config.stream_replicas,
            )),
            answer_within: config.nats.request_timeout,
            jetstream,
            nats,
            tokens: Arc::new(Tokens::new(config.jwt_secret.as_bytes(), config.token_ttl)),
            revocations: Arc::new(Revocations::new(config.stream_replicas)),
            frontend_dir: Arc::new(config.frontend_dir.clone()),
            feeds_closing: CancellationToken::new(),
            http: Arc::new(config.http.clone()),
        }
    }

    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    pub fn jetstream(&self) -> &async_nats::jetstream::Context {
        &self.jetstream
    }

    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    pub fn revocations(&self) -> &Arc<Revocations> {
        &self.revocations
    }

    pub fn audit(&self) -> &Arc<AuditLog> {
        &self.audit
    }

    /// How long an `/api` call may take: the NATS request timeout.
    pub fn answer_within(&self) -> std::time::Duration {
        self.answer_within
    }

    pub fn frontend_dir(&self) -> &Path {
        &self.frontend_dir
    }

    pub fn http(&self) -> &HttpSettings {
        &self.http
    }

    /// Starts following logouts and staff events ([`Revocations::follow`]) until the feeds
    /// close (the gateway stops); `lookback` is the longest a token lives.
    pub fn follow_revocations(&self, lookback: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let revocations = self.revocations.clone();
        let js = self.jetstream.clone();
        let stop = self.feeds_closing.clone();
        tokio::spawn(async move { revocations.follow(js, lookback, stop).await })
    }

    /// Cancel it to end every open live feed (see [`crate::feed`]).
    pub fn feeds_closing(&self) -> &CancellationToken {
        &self.feeds_closing
    }
}
