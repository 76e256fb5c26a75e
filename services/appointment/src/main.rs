//! `appointment-service`: the appointment service on its own (the same as `hospital serve appointment`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    kit::runtime::run_component::<appointment_service::AppointmentService>().await
}
