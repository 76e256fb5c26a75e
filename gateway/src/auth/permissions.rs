//! Who may do what: the permission matrix (role × resource × action), in one table. Every
//! `/api` call is checked against [`MATRIX`] before anything is sent to a service, so the role
//! rules live here and nowhere else; `README.md` prints the same table ([`markdown_table`]).
//!
//! A cell is [`Grant::Yes`], [`Grant::No`] or [`Grant::Only`] a [`Condition`] on the item
//! itself (a doctor's own appointments, a nurse's vitals). A condition is checked against the
//! fields a create or update sends and, for an update or delete, against the item as it is
//! now; see [`crate::access`].

use serde_json::{Map, Value};
use shared_events::staff::StaffRole;
use shared_events::subjects::service;

use super::caller::Caller;

/// What a route does to a resource; also names the NATS action it becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    List,
    Get,
    Create,
    Update,
    Delete,
    /// Every version of an item (a medical record's amendments).
    History,
}

impl Action {
    /// The command action (`hospital.<service>.<action>`).
    pub fn command(self) -> &'static str {
        use shared_events::subjects::action;
        match self {
            Action::List => action::LIST,
            Action::Get => action::GET,
            Action::Create => action::CREATE,
            Action::Update => action::UPDATE,
            Action::Delete => action::DELETE,
            Action::History => action::HISTORY,
        }
    }

    /// Whether the action changes anything.
    pub fn is_write(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Delete)
    }
}

/// The audit trail is not a service's resource: the gateway serves it from its own stream.
pub const AUDIT: &str = "audit";

/// One cell of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    Yes,
    No,
    /// Allowed when the item meets the condition.
    Only(Condition),
}

/// A rule about the item a role may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// An appointment whose `doctor_id` is the caller.
    OwnAppointment,
    /// A medical record of `kind` `vitals`.
    Vitals,
}

impl Condition {
    /// Whether `item` (an item's state, or the fields a request sends) meets the condition. A
    /// field the item does not mention is not checked: an update leaves it as it is, and the
    /// item's current state is checked too.
    pub fn allows(self, caller: &Caller, item: &Map<String, Value>) -> bool {
        match self {
            Condition::OwnAppointment => item
                .get("doctor_id")
                .is_none_or(|doctor| doctor.as_str() == Some(&caller.claims().sub.to_string())),
            Condition::Vitals => item
                .get("kind")
                .is_none_or(|kind| kind.as_str() == Some("vitals")),
        }
    }

    /// The sentence a refused caller reads.
    pub fn explain(self) -> &'static str {
        match self {
            Condition::OwnAppointment => "doctors may only change their own appointments",
            Condition::Vitals => "nurses may only write vital-signs records",
        }
    }

    /// How the README shows the cell.
    fn label(self) -> &'static str {
        match self {
            Condition::OwnAppointment => "own",
            Condition::Vitals => "vitals",
        }
    }
}

/// One row: what each role may do with one action on one resource.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// The owning service (`patient`, `record`, ...) or [`AUDIT`].
    pub resource: &'static str,
    pub action: Action,
    pub admin: Grant,
    pub doctor: Grant,
    pub nurse: Grant,
    pub receptionist: Grant,
}

impl Row {
    pub fn grant(&self, role: StaffRole) -> Grant {
        match role {
            StaffRole::Admin => self.admin,
            StaffRole::Doctor => self.doctor,
            StaffRole::Nurse => self.nurse,
            StaffRole::Receptionist => self.receptionist,
        }
    }
}

const fn row(
    resource: &'static str,
    action: Action,
    [admin, doctor, nurse, receptionist]: [Grant; 4],
) -> Row {
    Row {
        resource,
        action,
        admin,
        doctor,
        nurse,
        receptionist,
    }
}

use Action::{Create, Delete, Get, History, List, Update};
use Grant::{No, Yes};
const OWN: Grant = Grant::Only(Condition::OwnAppointment);
const VITALS: Grant = Grant::Only(Condition::Vitals);

/// The permission matrix. Columns: admin, doctor, nurse, receptionist.
///
/// Receptionists run the front desk (patients, appointments) and never see medical records;
/// nurses read patients and records and record vital signs; doctors read everything clinical,
/// write and amend records and manage their own appointments; administrators manage staff
/// accounts, read the audit trail and can stand in at the front desk, but never read records.
/// Everyone reads the staff list (to book a doctor, to see who did what).
pub static MATRIX: [Row; 22] = [
    row(service::PATIENT, List, [Yes, Yes, Yes, Yes]),
    row(service::PATIENT, Get, [Yes, Yes, Yes, Yes]),
    row(service::PATIENT, Create, [Yes, No, No, Yes]),
    row(service::PATIENT, Update, [Yes, No, No, Yes]),
    row(service::PATIENT, Delete, [Yes, No, No, Yes]),
    row(service::STAFF, List, [Yes, Yes, Yes, Yes]),
    row(service::STAFF, Get, [Yes, Yes, Yes, Yes]),
    row(service::STAFF, Create, [Yes, No, No, No]),
    row(service::STAFF, Update, [Yes, No, No, No]),
    row(service::STAFF, Delete, [Yes, No, No, No]),
    row(service::APPOINTMENT, List, [Yes, Yes, Yes, Yes]),
    row(service::APPOINTMENT, Get, [Yes, Yes, Yes, Yes]),
    row(service::APPOINTMENT, Create, [Yes, OWN, No, Yes]),
    row(service::APPOINTMENT, Update, [Yes, OWN, No, Yes]),
    row(service::APPOINTMENT, Delete, [Yes, OWN, No, Yes]),
    row(service::RECORD, List, [No, Yes, Yes, No]),
    row(service::RECORD, Get, [No, Yes, Yes, No]),
    row(service::RECORD, History, [No, Yes, Yes, No]),
    row(service::RECORD, Create, [No, Yes, VITALS, No]),
    row(service::RECORD, Update, [No, Yes, VITALS, No]),
    row(service::RECORD, Delete, [No, Yes, VITALS, No]),
    row(AUDIT, List, [Yes, No, No, No]),
];

/// The cell for `role` doing `action` on `resource`; anything not in the matrix is refused.
pub fn grant(role: StaffRole, resource: &str, action: Action) -> Grant {
    MATRIX
        .iter()
        .find(|row| row.resource == resource && row.action == action)
        .map_or(Grant::No, |row| row.grant(role))
}

/// Whether `caller` may do `action` on `resource` at all (perhaps only on some items). The
/// live feed asks this to decide which events a caller may see.
pub fn may(caller: &Caller, resource: &str, action: Action) -> bool {
    grant(caller.claims().role, resource, action) != Grant::No
}

/// The matrix as the README prints it, one line per route.
pub fn markdown_table() -> String {
    let mut table =
        String::from("| route | admin | doctor | nurse | receptionist |\n|---|---|---|---|---|\n");
    for row in &MATRIX {
        let cell = |grant: Grant| match grant {
            Grant::Yes => "✓".to_owned(),
            Grant::No => "—".to_owned(),
            Grant::Only(condition) => condition.label().to_owned(),
        };
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            routes_of(row.resource, row.action),
            cell(row.admin),
            cell(row.doctor),
            cell(row.nurse),
            cell(row.receptionist),
        ));
    }
    table
}

/// The HTTP routes a row governs, as the README names them.
fn routes_of(resource: &str, action: Action) -> String {
    let path = match resource {
        service::PATIENT => "patients",
        service::STAFF => "staff",
        service::APPOINTMENT => "appointments",
        service::RECORD => "records",
        other => other,
    };
    let mut routes = match action {
        List => vec![format!("`GET /api/{path}`")],
        Get => vec![format!("`GET /api/{path}/{{id}}`")],
        Create => vec![format!("`POST /api/{path}`")],
        Update => vec![format!("`PUT /api/{path}/{{id}}`")],
        Delete => vec![format!("`DELETE /api/{path}/{{id}}`")],
        History => vec![format!("`GET /api/{path}/{{id}}/history`")],
    };
    for nested in &crate::routes::nested::SUB_COLLECTIONS {
        if nested.child.service == resource && action == List {
            routes.push(format!(
                "`GET /api/{}/{{id}}/{}`",
                nested.parent.path, nested.child.path
            ));
        }
    }
    routes.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::jwt::Claims;
    use serde_json::json;
    use uuid::Uuid;

    fn caller(role: StaffRole) -> Caller {
        Caller(Claims {
            sub: Uuid::now_v7(),
            role,
            name: "Someone".into(),
            iat: 0,
            nbf: 0,
            exp: 0,
            iss: String::new(),
            aud: String::new(),
            jti: Uuid::new_v4(),
        })
    }

    fn fields(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn every_resource_and_action_has_exactly_one_row() {
        for (i, a) in MATRIX.iter().enumerate() {
            for b in &MATRIX[i + 1..] {
                assert!(
                    !(a.resource == b.resource && a.action == b.action),
                    "{} {:?} twice",
                    a.resource,
                    a.action
                );
            }
        }
        for service in crate::routes::resources::services() {
            for action in [List, Get, Create, Update, Delete] {
                assert!(
                    MATRIX
                        .iter()
                        .any(|row| row.resource == service && row.action == action),
                    "{service} {action:?} has no row"
                );
            }
        }
    }

    #[test]
    fn what_is_not_in_the_matrix_is_refused() {
        for role in StaffRole::ALL {
            assert_eq!(grant(role, "billing", List), Grant::No);
            assert_eq!(grant(role, service::PATIENT, History), Grant::No);
        }
    }

    #[test]
    fn a_doctor_owns_the_appointments_that_name_them() {
        let doctor = caller(StaffRole::Doctor);
        let me = doctor.claims().sub.to_string();
        let own = Condition::OwnAppointment;
        assert!(own.allows(&doctor, &fields(json!({"doctor_id": me}))));
        assert!(own.allows(&doctor, &fields(json!({"status": "completed"}))));
        assert!(!own.allows(&doctor, &fields(json!({"doctor_id": Uuid::now_v7()}))));
        assert!(!own.allows(&doctor, &fields(json!({"doctor_id": null}))));
    }

    #[test]
    fn a_nurse_writes_vitals_only() {
        let nurse = caller(StaffRole::Nurse);
        let vitals = Condition::Vitals;
        assert!(vitals.allows(&nurse, &fields(json!({"kind": "vitals"}))));
        assert!(vitals.allows(&nurse, &fields(json!({"summary": "BP 120/80"}))));
        assert!(!vitals.allows(&nurse, &fields(json!({"kind": "diagnosis"}))));
        assert!(!vitals.allows(&nurse, &fields(json!({"kind": 3}))));
    }

    #[test]
    fn the_readme_prints_the_matrix() {
        let readme = include_str!("../../../README.md");
        let table = markdown_table();
        assert!(
            readme.contains(&table),
            "README.md must contain the permission matrix as printed by \
             gateway::auth::permissions::markdown_table():\n{table}"
        );
    }
}
