//! Which service owns each aggregate, and so whose read permission an event of it needs. The
//! one place that maps aggregates to services: the feed sends an event only if the caller may
//! `get` from the owning service, exactly as if they had asked for the item over `/api`.

use shared_events::Aggregate;
use shared_events::subjects::service;

use crate::auth::permissions::may;
use crate::auth::{Action, Caller};

/// Every aggregate in the event stream, in the order the feed lists them.
pub const AGGREGATES: [Aggregate; 4] = [
    Aggregate::Patient,
    Aggregate::Staff,
    Aggregate::Appointment,
    Aggregate::Record,
];

/// The service whose permissions guard an aggregate's events. Exhaustive on purpose: a new
/// aggregate does not compile until it has an owner here.
pub fn owning_service(aggregate: Aggregate) -> &'static str {
    match aggregate {
        Aggregate::Patient => service::PATIENT,
        Aggregate::Staff => service::STAFF,
        Aggregate::Appointment => service::APPOINTMENT,
        Aggregate::Record => service::RECORD,
    }
}

/// The aggregate called `name` in subjects and in `?aggregates=`.
pub fn aggregate_named(name: &str) -> Option<Aggregate> {
    AGGREGATES.into_iter().find(|a| a.as_str() == name)
}

/// Whether `caller` may read what an event of `aggregate` carries (the item's full state).
pub fn may_read(caller: &Caller, aggregate: Aggregate) -> bool {
    may(caller, owning_service(aggregate), Action::Get)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::resources;

    #[test]
    fn every_aggregate_is_named_by_its_subject_token() {
        for aggregate in AGGREGATES {
            assert_eq!(aggregate_named(aggregate.as_str()), Some(aggregate));
        }
        assert_eq!(aggregate_named("patients"), None);
        assert_eq!(aggregate_named(""), None);
    }

    #[test]
    fn every_aggregate_is_owned_by_a_routed_service() {
        let routed = resources::services();
        for aggregate in AGGREGATES {
            assert!(routed.contains(&owning_service(aggregate)), "{aggregate:?}");
        }
        assert_eq!(owning_service(Aggregate::Record), "record");
    }
}
