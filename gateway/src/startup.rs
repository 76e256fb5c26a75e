//! Starting and stopping the gateway: bind the listener, connect to NATS, serve until told to
//! stop, then let requests in flight finish.

use std::net::SocketAddr;
use std::time::Duration;

use async_nats::connection::State as ConnectionState;
use kit::runtime::{BoxError, Component};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::routes::app;
use crate::state::AppState;

/// The running gateway: a bound listener and the state its routes share.
pub struct Gateway {
    listener: TcpListener,
    /// The address actually bound (the port is chosen by the OS when configured as 0).
    local_addr: SocketAddr,
    state: AppState,
    /// How long tokens live: how far back staff events can revoke one.
    token_ttl: Duration,
}

impl Gateway {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }
}

impl Component for Gateway {
    type Config = Config;
    const NAME: &'static str = "gateway";

    fn config_from_env() -> Result<Config, kit::config::ConfigError> {
        Config::from_env()
    }

    async fn build(config: Config) -> Result<Self, BoxError> {
        // The port first: a port in use is the likeliest start-up failure, and it is final.
        let listener = TcpListener::bind(config.http_addr)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.http_addr))?;
        let local_addr = listener.local_addr()?;
        let nats = kit::nats::connect(&config.nats, Self::NAME).await?;
        // The client connects in the background (so the gateway may start before NATS); give
        // it a moment so the first requests do not meet a link still being set up.
        if !wait_until_connected(&nats, config.nats.request_timeout).await {
            tracing::warn!(url = %kit::config::mask_url(&config.nats.url),
                "NATS is not reachable yet; /ready answers 503 until it is");
        }
        if !config.frontend_dir.is_dir() {
            tracing::warn!(dir = %config.frontend_dir.display(), "no frontend directory; only the API is served");
        }
        Ok(Gateway {
            listener,
            local_addr,
            state: AppState::new(nats, &config),
            token_ttl: config.token_ttl,
        })
    }

    async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), BoxError> {
        tracing::info!(addr = %self.local_addr, "gateway listening");
        let nats = self.state.nats().clone();
        let feeds = self.state.feeds_closing().clone();
        // Revoked tokens are followed for as long as the gateway serves.
        let following = self
            .state
            .follow_revocations(self.token_ttl + Duration::from_secs(60));
        let stopping = async move {
            shutdown.cancelled().await;
            // Live feeds never finish by themselves; end them so the requests in flight can.
            feeds.cancel();
        };
        // The client's address is kept for the audit trail and the login limits.
        axum::serve(
            self.listener,
            app(self.state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stopping)
        .await?;
        following.abort();
        // Nothing of ours is pending on NATS once the last request has its answer, but a flush
        // makes sure whatever was written has left.
        let _ = tokio::time::timeout(Duration::from_secs(1), nats.flush()).await;
        tracing::info!("gateway stopped");
        Ok(())
    }
}

async fn wait_until_connected(nats: &async_nats::Client, patience: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + patience;
    while tokio::time::Instant::now() < deadline {
        if nats.connection_state() == ConnectionState::Connected {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    nats.connection_state() == ConnectionState::Connected
}
