//! `patient-service`: the patient service on its own (the same as `hospital serve patient`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    kit::runtime::run_component::<patient_service::PatientService>().await
}
