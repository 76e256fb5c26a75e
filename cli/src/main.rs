//! `hospital`, the operator tool of the Smart Healthcare System.
//!
//! - `hospital serve <component>` runs one part (the gateway or a service) in this process; the
//!   list of parts is [`components::COMPONENTS`].
//! - `hospital up` runs the whole system on one machine ([`up`]): an embedded nats-server, one
//!   `hospital serve` child process per component, a readiness wait, and an orderly shutdown.
//! - `hospital events` reads the stream; `hospital replay` rebuilds a read-model from it;
//!   `hospital verify` checks read-models and events against the owners' tables;
//!   `hospital restore` rebuilds an owner's tables from its events.

mod components;
mod events;
mod parked;
mod replay;
mod restore;
mod service_db;
mod up;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "hospital",
    version,
    about = "Smart Healthcare System: the operator tool"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one component in this process, configured from the environment (and `.env`).
    Serve {
        /// The component to run.
        #[arg(value_parser = components::names_parser())]
        component: String,
    },
    /// Run the whole system: NATS, every service and the gateway, until Ctrl-C.
    Up(up::UpArgs),
    /// Read the event stream: `tail` prints events, `stats` counts them and shows consumer lag.
    Events(events::EventsArgs),
    /// Rebuild a service's read-models from the first event (the service must be stopped).
    Replay(replay::ReplayArgs),
    /// Compare every read-model with its source and every change with its event; exit 1 on
    /// any difference.
    Verify(verify::VerifyArgs),
    /// Rebuild an owning service's own tables from its own events into an empty database.
    Restore(restore::RestoreArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    // Before parsing, so `.env` can supply the options that read variables (HOSPITAL_HTTP_ADDR,
    // HOSPITAL_DATA_DIR); variables already set win.
    kit::config::load_dotenv();
    match Cli::parse().command {
        Command::Serve { component } => components::serve(&component).await,
        Command::Up(args) => up::run(args).await,
        Command::Events(args) => events::run(args).await,
        Command::Replay(args) => replay::run(args).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Restore(args) => restore::run(args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_refuses_an_unknown_component() {
        assert!(Cli::try_parse_from(["hospital", "serve", "pharmacy"]).is_err());
        assert!(Cli::try_parse_from(["hospital", "serve", "gateway"]).is_ok());
    }

    #[test]
    fn up_takes_either_a_nats_port_or_a_nats_url() {
        let both = [
            "hospital",
            "up",
            "--nats-port",
            "4333",
            "--nats-url",
            "nats://x:4222",
        ];
        assert!(Cli::try_parse_from(both).is_err());
        assert!(Cli::try_parse_from(["hospital", "up", "--nats-port", "4333"]).is_ok());
    }
}
