//! The status lifecycle of an appointment.

use shared_events::ServiceError;
use shared_events::appointment::AppointmentStatus;

/// The lifecycle: `booked → checked_in → fulfilled`, `booked | checked_in → cancelled`,
/// `booked → noshow`. Every other change of status is refused.
pub fn can_become(from: AppointmentStatus, to: AppointmentStatus) -> bool {
    use AppointmentStatus::*;
    matches!(
        (from, to),
        (Booked, CheckedIn)
            | (CheckedIn, Fulfilled)
            | (Booked, Cancelled)
            | (CheckedIn, Cancelled)
            | (Booked, NoShow)
    )
}

/// A 409 naming both statuses when the lifecycle forbids the step.
pub fn check_transition(
    from: AppointmentStatus,
    to: AppointmentStatus,
) -> Result<(), ServiceError> {
    if can_become(from, to) {
        Ok(())
    } else {
        Err(ServiceError::conflict(format!(
            "an appointment that is {} cannot become {}",
            from.as_str(),
            to.as_str()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AppointmentStatus::*;

    #[test]
    fn exactly_five_steps_are_allowed_and_every_other_names_both_statuses() {
        let allowed = [
            (Booked, CheckedIn),
            (CheckedIn, Fulfilled),
            (Booked, Cancelled),
            (CheckedIn, Cancelled),
            (Booked, NoShow),
        ];
        for from in AppointmentStatus::ALL {
            for to in AppointmentStatus::ALL {
                let expected = allowed.contains(&(from, to));
                assert_eq!(can_become(from, to), expected, "{from:?} -> {to:?}");
                match check_transition(from, to) {
                    Ok(()) => assert!(expected),
                    Err(error) => {
                        assert_eq!(error.code.http_status(), 409);
                        assert_eq!(
                            error.message,
                            format!(
                                "an appointment that is {} cannot become {}",
                                from.as_str(),
                                to.as_str()
                            )
                        );
                    }
                }
            }
        }
    }
}
