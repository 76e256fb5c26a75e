-- The appointment service's own database (SQLite).

-- Times are UTC text in kit::events::format_timestamp form (fixed width, ending in Z), so text
-- order is time order and the overlap checks below are plain comparisons.
CREATE TABLE appointments (
    id                   TEXT PRIMARY KEY,          -- UUID v7
    patient_id           TEXT NOT NULL,
    doctor_id            TEXT NOT NULL,             -- a staff member whose role is doctor
    start_at             TEXT NOT NULL,
    end_at               TEXT NOT NULL,             -- start_at + duration_minutes
    duration_minutes     INTEGER NOT NULL CHECK (duration_minutes BETWEEN 5 AND 480),
    reason               TEXT,
    status               TEXT NOT NULL
                         CHECK (status IN ('booked', 'checked_in', 'fulfilled', 'cancelled', 'noshow')),
    notes                TEXT,
    cancellation_reason  TEXT,
    version              INTEGER NOT NULL CHECK (version >= 1),
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    CHECK (end_at > start_at)
);

-- The overlap checks look up one doctor's or one patient's appointments around a time; the
-- lists filter by those and by status, ordered by start then id.
CREATE INDEX appointments_by_doctor ON appointments (doctor_id, start_at);
CREATE INDEX appointments_by_patient ON appointments (patient_id, start_at);
CREATE INDEX appointments_by_start ON appointments (start_at, id);
CREATE INDEX appointments_by_status ON appointments (status, start_at);

-- The database-level guarantee behind the service's own check (DESIGN.md, "Invariants"): an
-- active appointment never overlaps another active one of the same doctor or the same patient.
-- The service checks first inside the same immediate transaction and names the conflicting
-- appointment; these triggers catch any write that did not.
CREATE TRIGGER appointments_no_overlap_on_insert
BEFORE INSERT ON appointments
WHEN NEW.status IN ('booked', 'checked_in')
BEGIN
    SELECT RAISE(ABORT, 'appointment overlap')
    WHERE EXISTS (
        SELECT 1 FROM appointments AS other
        WHERE other.status IN ('booked', 'checked_in')
          AND (other.doctor_id = NEW.doctor_id OR other.patient_id = NEW.patient_id)
          AND other.start_at < NEW.end_at
          AND other.end_at > NEW.start_at
    );
END;

CREATE TRIGGER appointments_no_overlap_on_update
BEFORE UPDATE ON appointments
WHEN NEW.status IN ('booked', 'checked_in')
BEGIN
    SELECT RAISE(ABORT, 'appointment overlap')
    WHERE EXISTS (
        SELECT 1 FROM appointments AS other
        WHERE other.id <> NEW.id
          AND other.status IN ('booked', 'checked_in')
          AND (other.doctor_id = NEW.doctor_id OR other.patient_id = NEW.patient_id)
          AND other.start_at < NEW.end_at
          AND other.end_at > NEW.start_at
    );
END;

-- Events committed with their change and not yet acknowledged by JetStream (kit::outbox).
CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT NOT NULL UNIQUE,
    subject     TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

-- The read-model of patients and staff (kit::directory), fed from HOSPITAL_EVENTS, and the
-- consumer's position, stored in the same transaction as each change it caused
-- (kit::read_model).
CREATE TABLE read_model_position (
    consumer         TEXT PRIMARY KEY,
    stream_sequence  INTEGER NOT NULL
);

CREATE TABLE directory_patients (
    id       TEXT PRIMARY KEY,
    name     TEXT NOT NULL,
    deleted  INTEGER NOT NULL,
    version  INTEGER NOT NULL
);

CREATE TABLE directory_staff (
    id       TEXT PRIMARY KEY,
    name     TEXT NOT NULL,
    role     TEXT NOT NULL,
    deleted  INTEGER NOT NULL,
    version  INTEGER NOT NULL
);
