//! The gateway binary; `hospital serve gateway` runs the same component.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    kit::runtime::run_component::<gateway::Gateway>().await
}
