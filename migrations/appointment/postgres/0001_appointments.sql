-- The appointment service's own database (PostgreSQL, the scale-out mode): the tables of
-- migrations/appointment/sqlite 0001, 0003 and 0004 in one migration, since PostgreSQL starts
-- fresh. Deliberate differences from the SQLite schema:
-- - Native types: ids are uuid, times timestamptz (microseconds, as kit::events::format_timestamp
--   keeps), counts and versions bigint (SQLite's INTEGER, Rust's i64), `deleted` boolean.
-- - No overlap triggers: two exclusion constraints (btree_gist) make overlapping active
--   appointments of one doctor, or of one patient, impossible, whatever the transaction
--   isolation and however many service instances write (SQLite needs its single writer for that).
--   A refused write fails with SQLSTATE 23P01 (exclusion_violation) naming the constraint.
-- - end_at is checked to be start_at + duration_minutes (SQLite only says so in a comment).
-- - The outbox sequence is a bigint identity.
-- - read_model_parked keeps the payload as bytea, exactly as received (SQLite keeps lossy UTF-8
--   text; PostgreSQL text cannot hold a NUL byte, which a poison message may carry), and its
--   event_id stays text, since a poison payload's event_id need not be a UUID.

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE appointments (
    id                   uuid PRIMARY KEY,          -- UUID v7
    patient_id           uuid NOT NULL,
    doctor_id            uuid NOT NULL,             -- a staff member whose role is doctor
    start_at             timestamptz NOT NULL,
    end_at               timestamptz NOT NULL,      -- start_at + duration_minutes
    duration_minutes     bigint NOT NULL CHECK (duration_minutes BETWEEN 5 AND 480),
    reason               text,
    status               text NOT NULL
                         CHECK (status IN ('booked', 'checked_in', 'fulfilled', 'cancelled', 'noshow')),
    notes                text,
    cancellation_reason  text,
    version              bigint NOT NULL CHECK (version >= 1),
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    CHECK (end_at > start_at),
    CONSTRAINT appointments_end_is_start_plus_duration
        CHECK (end_at - start_at = make_interval(mins => duration_minutes::integer)),
    -- The invariant (DESIGN.md, "Invariants"): an active (booked or checked-in) appointment never
    -- overlaps another active one of the same doctor or of the same patient. Ranges are half-open
    -- ('[)', tstzrange's default), so back-to-back slots do not overlap. The service still checks
    -- first, in the same transaction, to name the appointment in the way; these refuse any write
    -- that did not, including two concurrent transactions that each checked before the other
    -- committed.
    CONSTRAINT appointments_doctor_never_double_booked
        EXCLUDE USING gist (doctor_id WITH =, tstzrange(start_at, end_at) WITH &&)
        WHERE (status IN ('booked', 'checked_in')),
    CONSTRAINT appointments_patient_never_double_booked
        EXCLUDE USING gist (patient_id WITH =, tstzrange(start_at, end_at) WITH &&)
        WHERE (status IN ('booked', 'checked_in'))
);

-- A doctor's or a patient's appointments around a time (the cascades, the lists); the lists
-- filter by those and by status, ordered by start then id. The overlap lookups can use the
-- exclusion constraints' GiST indexes.
CREATE INDEX appointments_by_doctor ON appointments (doctor_id, start_at);
CREATE INDEX appointments_by_patient ON appointments (patient_id, start_at);
CREATE INDEX appointments_by_start ON appointments (start_at, id);
CREATE INDEX appointments_by_status ON appointments (status, start_at);

-- Events committed with their change and not yet acknowledged by JetStream (kit::outbox). The
-- payload is text, not jsonb: it is published byte for byte as it was serialised.
CREATE TABLE outbox (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    uuid NOT NULL UNIQUE,
    subject     text NOT NULL,
    payload     text NOT NULL,
    created_at  timestamptz NOT NULL
);

-- The read-model of patients and staff (kit::directory), fed from HOSPITAL_EVENTS, and the
-- consumer's position, stored in the same transaction as each change it caused
-- (kit::read_model). The directory takes what the owning services publish: no CHECK on role.
CREATE TABLE read_model_position (
    consumer         text PRIMARY KEY,
    stream_sequence  bigint NOT NULL CHECK (stream_sequence >= 0)
);

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
