//! `staff-service`: the staff service on its own (the same as `hospital serve staff`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    kit::runtime::run_component::<staff_service::StaffService>().await
}
