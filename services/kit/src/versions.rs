//! Optimistic concurrency: every entity has a version, and a change made with `If-Match`
//! (the command's `expected_version`) only applies to the version the client saw.

use shared_events::ServiceError;

/// Refuses a change when `If-Match` named another version than the current one.
pub fn check_version(current: i64, expected: Option<i64>) -> Result<(), ServiceError> {
    match expected {
        Some(expected) if expected != current => Err(ServiceError::precondition_failed(current)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_stale_expected_version_is_refused() {
        assert!(check_version(3, None).is_ok());
        assert!(check_version(3, Some(3)).is_ok());
        assert_eq!(
            check_version(3, Some(2)).unwrap_err().code.http_status(),
            412
        );
    }
}
