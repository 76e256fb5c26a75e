-- The overlap triggers of 0001, made to read only the appointments that can overlap: those of
-- the same doctor (or patient) that start less than the longest appointment (480 minutes; one
-- more for the margin of the text comparison) before the new one, through the doctor's and the
-- patient's (id, start) indexes. The triggers of 0001 read every earlier active appointment,
-- ever more as the calendar fills.
DROP TRIGGER appointments_no_overlap_on_insert;
DROP TRIGGER appointments_no_overlap_on_update;

CREATE TRIGGER appointments_no_overlap_on_insert
BEFORE INSERT ON appointments
WHEN NEW.status IN ('booked', 'checked_in')
BEGIN
    SELECT RAISE(ABORT, 'appointment overlap')
    WHERE EXISTS (
        SELECT 1 FROM appointments AS other
        WHERE other.doctor_id = NEW.doctor_id
          AND other.start_at > strftime('%Y-%m-%dT%H:%M:%SZ', NEW.start_at, '-481 minutes')
          AND other.start_at < NEW.end_at
          AND other.end_at > NEW.start_at
          AND other.status IN ('booked', 'checked_in')
    ) OR EXISTS (
        SELECT 1 FROM appointments AS other
        WHERE other.patient_id = NEW.patient_id
          AND other.start_at > strftime('%Y-%m-%dT%H:%M:%SZ', NEW.start_at, '-481 minutes')
          AND other.start_at < NEW.end_at
          AND other.end_at > NEW.start_at
          AND other.status IN ('booked', 'checked_in')
    );
END;

CREATE TRIGGER appointments_no_overlap_on_update
BEFORE UPDATE ON appointments
WHEN NEW.status IN ('booked', 'checked_in')
BEGIN
    SELECT RAISE(ABORT, 'appointment overlap')
    WHERE EXISTS (
        SELECT 1 FROM appointments AS other
        WHERE other.doctor_id = NEW.doctor_id
          AND other.start_at > strftime('%Y-%m-%dT%H:%M:%SZ', NEW.start_at, '-481 minutes')
          AND other.start_at < NEW.end_at
          AND other.end_at > NEW.start_at
          AND other.id <> NEW.id
          AND other.status IN ('booked', 'checked_in')
    ) OR EXISTS (
        SELECT 1 FROM appointments AS other
        WHERE other.patient_id = NEW.patient_id
          AND other.start_at > strftime('%Y-%m-%dT%H:%M:%SZ', NEW.start_at, '-481 minutes')
          AND other.start_at < NEW.end_at
          AND other.end_at > NEW.start_at
          AND other.id <> NEW.id
          AND other.status IN ('booked', 'checked_in')
    );
END;
