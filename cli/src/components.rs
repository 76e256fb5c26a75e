//! The components this binary can run: the one list to extend when a service is added.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;

use kit::runtime::Component;

/// What a component needs from `hospital up` besides NATS and the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A service with its own database, configured by `database_var` (a SQLite file in the data
    /// directory unless the operator set the variable).
    Service { database_var: &'static str },
    /// The HTTP entry: it gets the listen address and the JWT secret, and `hospital up` waits
    /// for its `/ready`.
    Gateway,
}

/// One runnable component.
pub struct Runnable {
    /// `Component::NAME`, the argument of `hospital serve`.
    pub name: &'static str,
    pub kind: Kind,
    serve: fn() -> Pin<Box<dyn Future<Output = ExitCode>>>,
}

impl Runnable {
    const fn of<C: Component + 'static>(kind: Kind) -> Self {
        Runnable {
            name: C::NAME,
            kind,
            serve: run::<C>,
        }
    }
}

fn run<C: Component + 'static>() -> Pin<Box<dyn Future<Output = ExitCode>>> {
    Box::pin(kit::runtime::run_component::<C>())
}

/// Every component, in the order `hospital up` starts them (services first, the gateway last);
/// it stops them in the reverse order. Adding a component is one line here.
pub const COMPONENTS: &[Runnable] = &[
    Runnable::of::<patient_service::PatientService>(Kind::Service {
        database_var: "DATABASE_URL_PATIENT",
    }),
    Runnable::of::<staff_service::StaffService>(Kind::Service {
        database_var: "DATABASE_URL_STAFF",
    }),
    Runnable::of::<appointment_service::AppointmentService>(Kind::Service {
        database_var: "DATABASE_URL_APPOINTMENT",
    }),
    Runnable::of::<record_service::RecordService>(Kind::Service {
        database_var: "DATABASE_URL_RECORD",
    }),
    Runnable::of::<gateway::Gateway>(Kind::Gateway),
];

/// The names `hospital serve` accepts.
pub fn names_parser() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(COMPONENTS.iter().map(|c| c.name))
}

/// Runs the named component in this process until SIGINT/SIGTERM; its exit code is ours.
pub async fn serve(name: &str) -> ExitCode {
    match COMPONENTS.iter().find(|c| c.name == name) {
        Some(component) => (component.serve)().await,
        None => {
            // clap already refused other names; kept for callers that bypass it.
            eprintln!("hospital: no component named {name:?}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_names_are_unique_and_the_gateway_starts_last() {
        let mut names: Vec<_> = COMPONENTS.iter().map(|c| c.name).collect();
        assert_eq!(COMPONENTS.last().map(|c| c.kind), Some(Kind::Gateway));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COMPONENTS.len());
    }

    #[test]
    fn serve_accepts_every_component_by_name() {
        let command = clap::Command::new("serve")
            .arg(clap::Arg::new("component").value_parser(names_parser()));
        for name in ["patient", "staff", "appointment", "record", "gateway"] {
            let matches = command.clone().try_get_matches_from(["serve", name]);
            assert!(matches.is_ok(), "{name}");
        }
        assert!(command.try_get_matches_from(["serve", "pharmacy"]).is_err());
    }

    #[test]
    fn every_service_the_gateway_requires_is_a_component_with_its_own_database() {
        for service in gateway::routes::health::required_services() {
            let component = COMPONENTS.iter().find(|c| c.name == service);
            let Some(Runnable {
                kind: Kind::Service { database_var },
                ..
            }) = component
            else {
                panic!("no service component named {service}");
            };
            assert_eq!(
                *database_var,
                format!("DATABASE_URL_{}", service.to_ascii_uppercase())
            );
        }
    }
}
