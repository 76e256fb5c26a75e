-- The record service's own database (SQLite).

-- Medical records, current state. Earlier versions live in record_versions.
CREATE TABLE records (
    id              TEXT PRIMARY KEY,          -- UUID v7
    patient_id      TEXT NOT NULL,
    author_id       TEXT NOT NULL,             -- the staff member who wrote the first version
    appointment_id  TEXT,
    kind            TEXT NOT NULL CHECK (kind IN ('note', 'diagnosis', 'vitals', 'prescription', 'allergy')),
    title           TEXT NOT NULL,
    body            TEXT,
    diagnoses       TEXT NOT NULL DEFAULT '[]', -- JSON array of {code, description}
    vitals          TEXT,                      -- JSON object, absent when none were taken
    recorded_at     TEXT NOT NULL,             -- RFC 3339 UTC, fixed width: text order is time order
    status          TEXT NOT NULL CHECK (status IN ('active', 'entered_in_error')),
    version         INTEGER NOT NULL CHECK (version >= 1),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

-- A patient's timeline, newest first, paged by (recorded_at, id): one index range per page.
CREATE INDEX records_timeline ON records (patient_id, recorded_at, id);
-- The same order across every patient, and the records of one appointment.
CREATE INDEX records_by_recorded_at ON records (recorded_at, id);
CREATE INDEX records_by_appointment ON records (appointment_id) WHERE appointment_id IS NOT NULL;

-- Every version of every record, written in the same transaction as the change.
CREATE TABLE record_versions (
    record_id        TEXT NOT NULL REFERENCES records (id),
    version          INTEGER NOT NULL CHECK (version >= 1),
    change           TEXT NOT NULL CHECK (change IN ('created', 'amended', 'entered_in_error')),
    changed_by_id    TEXT NOT NULL,
    changed_by_role  TEXT NOT NULL,
    changed_at       TEXT NOT NULL,
    state            TEXT NOT NULL,            -- the MedicalRecord as JSON, as it was after the change
    PRIMARY KEY (record_id, version)
) WITHOUT ROWID;

-- A medical record is never silently overwritten: its versions are append-only.
CREATE TRIGGER record_versions_are_never_changed BEFORE UPDATE ON record_versions
BEGIN
    SELECT RAISE(ABORT, 'record versions are append-only');
END;

CREATE TRIGGER record_versions_are_never_deleted BEFORE DELETE ON record_versions
BEGIN
    SELECT RAISE(ABORT, 'record versions are append-only');
END;

-- Events committed with their change and not yet acknowledged by JetStream (kit::outbox).
CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT NOT NULL UNIQUE,
    subject     TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

-- The read-model consumer's position, stored with the rows it changed (kit::read_model).
CREATE TABLE read_model_position (
    consumer         TEXT PRIMARY KEY,
    stream_sequence  INTEGER NOT NULL
);

-- The patients and staff members records refer to (kit::directory), from their events.
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

-- The appointments a record may belong to, from the appointment events.
CREATE TABLE known_appointments (
    id          TEXT PRIMARY KEY,
    patient_id  TEXT NOT NULL,
    status      TEXT NOT NULL,
    version     INTEGER NOT NULL
);
