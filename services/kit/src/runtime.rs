//! Process plumbing every binary shares: logging and the shutdown signal.

use std::future::Future;

use tokio_util::sync::CancellationToken;

/// Logs to stderr, one line per event; `RUST_LOG` filters (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// A token cancelled on SIGINT or SIGTERM, for graceful shutdown.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        trigger.cancel();
    });
    token
}

/// Resolves at the first SIGINT or SIGTERM.
pub async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut interrupt = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
}

/// The error type components return from start-up and run.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A runnable part of the system (the gateway or a service), started the same way by its own
/// binary and by `hospital serve <component>`.
pub trait Component: Sized + Send {
    /// Settings from the environment; `Display` prints them with secrets masked.
    type Config: std::fmt::Display + Send;
    /// `gateway`, `patient`, `staff`, ...
    const NAME: &'static str;

    fn config_from_env() -> Result<Self::Config, crate::config::ConfigError>;

    /// Connects, migrates, provisions: everything that can fail at start.
    fn build(config: Self::Config) -> impl Future<Output = Result<Self, BoxError>> + Send;

    /// Serves until `shutdown` is cancelled, then finishes work in flight.
    fn run_until_stopped(
        self,
        shutdown: CancellationToken,
    ) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// The whole life of a component process: `.env`, logging, configuration (failing fast with the
/// variable's name), start, serve until SIGINT/SIGTERM. Exit code 2 for bad configuration, 1 for
/// a failure at start or while running.
pub async fn run_component<C: Component>() -> std::process::ExitCode {
    crate::config::load_dotenv();
    init_tracing();
    let config = match C::config_from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{}: configuration error: {error}", C::NAME);
            return std::process::ExitCode::from(2);
        }
    };
    eprint!("{} configuration:\n{config}", C::NAME);
    let component = match C::build(config).await {
        Ok(component) => component,
        Err(error) => {
            eprintln!("{}: cannot start: {error}", C::NAME);
            return std::process::ExitCode::from(1);
        }
    };
    match component.run_until_stopped(shutdown_on_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}: stopped with an error: {error}", C::NAME);
            std::process::ExitCode::from(1)
        }
    }
}
