-- The record service's own database (PostgreSQL, the scale-out mode): the tables of
-- migrations/record/sqlite 0001 and 0003 in one migration, since PostgreSQL starts fresh.
-- Deliberate differences from the SQLite schema:
-- - Native types: ids are uuid (but changed_by_id, an actor's id, stays text: the system acts
--   as "system"), times timestamptz, versions bigint, `deleted` boolean.
-- - diagnoses, vitals and each version's state are jsonb, checked to be an array, an object
--   (or NULL) and an object: a record's diagnoses can be searched in SQL, and what is stored is
--   always valid JSON. The service decodes them into its types, so key order and spacing, which
--   jsonb does not keep, do not matter.
-- - Versions are append-only through row triggers as in SQLite, and TRUNCATE is refused too
--   (PostgreSQL's TRUNCATE skips row triggers). The refusal is SQLSTATE 23000
--   (integrity_constraint_violation), message 'record versions are append-only'.
-- - The outbox sequence is a bigint identity; read_model_parked keeps the payload as bytea,
--   exactly as received (text cannot hold a NUL byte), and its event_id as text (a poison
--   payload's event_id need not be a UUID).

-- Medical records, current state. Earlier versions live in record_versions.
CREATE TABLE records (
    id              uuid PRIMARY KEY,          -- UUID v7
    patient_id      uuid NOT NULL,
    author_id       uuid NOT NULL,             -- the staff member who wrote the first version
    appointment_id  uuid,
    kind            text NOT NULL CHECK (kind IN ('note', 'diagnosis', 'vitals', 'prescription', 'allergy')),
    title           text NOT NULL,
    body            text,
    diagnoses       jsonb NOT NULL DEFAULT '[]'   -- array of {code, description}
                    CHECK (jsonb_typeof(diagnoses) = 'array'),
    vitals          jsonb                         -- absent when none were taken
                    CHECK (vitals IS NULL OR jsonb_typeof(vitals) = 'object'),
    recorded_at     timestamptz NOT NULL,
    status          text NOT NULL CHECK (status IN ('active', 'entered_in_error')),
    version         bigint NOT NULL CHECK (version >= 1),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

-- A patient's timeline, newest first, paged by (recorded_at, id): one index range per page.
CREATE INDEX records_timeline ON records (patient_id, recorded_at, id);
-- The same order across every patient, and the records of one appointment.
CREATE INDEX records_by_recorded_at ON records (recorded_at, id);
CREATE INDEX records_by_appointment ON records (appointment_id) WHERE appointment_id IS NOT NULL;

-- Every version of every record, written in the same transaction as the change.
CREATE TABLE record_versions (
    record_id        uuid NOT NULL REFERENCES records (id),
    version          bigint NOT NULL CHECK (version >= 1),
    change           text NOT NULL CHECK (change IN ('created', 'amended', 'entered_in_error')),
    changed_by_id    text NOT NULL,
    changed_by_role  text NOT NULL,
    changed_at       timestamptz NOT NULL,
    state            jsonb NOT NULL             -- the MedicalRecord as it was after the change
                     CHECK (jsonb_typeof(state) = 'object'),
    PRIMARY KEY (record_id, version)
);

-- A medical record is never silently overwritten: its versions are append-only.
CREATE FUNCTION record_versions_are_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'record versions are append-only'
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE TRIGGER record_versions_are_never_changed
BEFORE UPDATE OR DELETE ON record_versions
FOR EACH ROW EXECUTE FUNCTION record_versions_are_append_only();

CREATE TRIGGER record_versions_are_never_truncated
BEFORE TRUNCATE ON record_versions
FOR EACH STATEMENT EXECUTE FUNCTION record_versions_are_append_only();

-- Events committed with their change and not yet acknowledged by JetStream (kit::outbox). The
-- payload is text, not jsonb: it is published byte for byte as it was serialised.
CREATE TABLE outbox (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    uuid NOT NULL UNIQUE,
    subject     text NOT NULL,
    payload     text NOT NULL,
    created_at  timestamptz NOT NULL
);

-- The read-model consumer's position, stored with the rows it changed (kit::read_model).
CREATE TABLE read_model_position (
    consumer         text PRIMARY KEY,
    stream_sequence  bigint NOT NULL CHECK (stream_sequence >= 0)
);

-- The patients and staff members records refer to (kit::directory), from their events. The
-- read-model takes what the owning services publish: no CHECK on role or status.
CREATE TABLE directory_patients (
    id       uuid PRIMARY KEY,
    name     text NOT NULL,
    deleted  boolean NOT NULL,
    version  bigint NOT NULL
);

CREATE TABLE directory_staff (
    id       uuid PRIMARY KEY,
    name     text NOT NULL,
    role     text NOT NULL,
    deleted  boolean NOT NULL,
    version  bigint NOT NULL
);

-- The appointments a record may belong to, from the appointment events.
CREATE TABLE known_appointments (
    id          uuid PRIMARY KEY,
    patient_id  uuid NOT NULL,
    status      text NOT NULL,
    version     bigint NOT NULL
);

-- Poison events (kit::read_model): an event the read-model cannot apply is parked here with its
-- error and payload, the consumer's position moves past it, and the consumer goes on.
CREATE TABLE read_model_parked (
    consumer         text NOT NULL,
    stream_sequence  bigint NOT NULL,
    subject          text NOT NULL,
    event_id         text,               -- when the payload is an envelope (not always a UUID)
    error            text NOT NULL,
    payload          bytea NOT NULL,     -- as received, byte for byte
    parked_at        timestamptz NOT NULL,
    PRIMARY KEY (consumer, stream_sequence)
);
