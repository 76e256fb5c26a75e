//! The first administrator. There are no default credentials: on the first start (no active
//! administrator can log in) the service creates `admin` with the password from
//! `HOSPITAL_ADMIN_PASSWORD`, or a generated one printed once. Several instances starting at once
//! on one database create it once: the one that loses the race finds it made.

use kit::RequestContext;
use serde_json::json;
use shared_events::ErrorCode;

use crate::commands::StaffCommands;
use crate::domain::StaffDetails;
use crate::passwords;

pub const ADMIN_USERNAME: &str = "admin";

/// Creates the first administrator if there is none. Returns the generated password when one
/// was made (the caller prints it once).
pub async fn ensure_admin(
    commands: &StaffCommands,
    configured_password: Option<&str>,
) -> Result<Option<String>, kit::BoxError> {
    if commands.store.has_admin_login().await? {
        return Ok(None);
    }
    let generated = configured_password
        .is_none()
        .then(passwords::generate_password);
    let password = configured_password
        .or(generated.as_deref())
        .unwrap_or_default();
    let fields = json!({"name": "Administrator", "role": "admin", "username": ADMIN_USERNAME, "password": password});
    let details = StaffDetails::parse(fields.as_object().expect("an object"))?;
    let committed = match commands.create(details, &RequestContext::system()).await {
        Ok(committed) => committed,
        // Another instance on the same (PostgreSQL) database created it between our check and
        // our insert: the unique username refused ours, and there is an administrator.
        Err(error)
            if error.code == ErrorCode::Conflict && commands.store.has_admin_login().await? =>
        {
            return Ok(None);
        }
        Err(error) => return Err(error.into()),
    };
    if let Some(event) = &committed.event {
        commands
            .publisher
            .publish_committed(std::slice::from_ref(event))
            .await;
    }
    tracing::info!(staff_id = %committed.staff.id, "created the first administrator account");
    Ok(generated)
}
