//! `record-service`: the record service on its own (the same as `hospital serve record`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    kit::runtime::run_component::<record_service::RecordService>().await
}
