-- The patient service's own database (PostgreSQL, the scale-out mode). Deliberate differences
-- from migrations/patient/sqlite:
-- - Native types: ids are uuid (their order is still registration order: UUID v7 compares
--   byte by byte), birth_date is a date, times timestamptz, versions bigint.
-- - The MRN is checked to be ten digits (SQLite only keeps it unique).
-- - Search words are COLLATE "C": kit::listing finds a prefix with `word >= p AND word < p ||
--   U+10FFFF`, which needs code point order, as SQLite's binary comparison gives; a language
--   collation would order (and so match) differently.
-- - The outbox sequence is a bigint identity.

CREATE TABLE patients (
    id          uuid PRIMARY KEY,          -- UUID v7: id order is registration order
    mrn         text NOT NULL UNIQUE       -- medical record number, generated, never changes
                CHECK (mrn ~ '^[0-9]{10}$'),
    name        text NOT NULL,
    birth_date  date NOT NULL,
    sex         text NOT NULL CHECK (sex IN ('female', 'male', 'other', 'unknown')),
    phone       text,
    email       text,
    address     text,
    version     bigint NOT NULL CHECK (version >= 1),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    deleted_at  timestamptz                -- soft delete: the row and its history stay
);

-- Name search: every word of a patient's name, case-folded, so that a prefix search on any word
-- is an index range scan however many patients there are.
CREATE TABLE patient_name_words (
    word        text COLLATE "C" NOT NULL,
    patient_id  uuid NOT NULL REFERENCES patients (id),
    PRIMARY KEY (word, patient_id)
);

CREATE INDEX patient_name_words_by_patient ON patient_name_words (patient_id);

-- Events committed with their change and not yet acknowledged by JetStream (kit::outbox). The
-- payload is text, not jsonb: it is published byte for byte as it was serialised.
CREATE TABLE outbox (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    uuid NOT NULL UNIQUE,
    subject     text NOT NULL,
    payload     text NOT NULL,
    created_at  timestamptz NOT NULL
);
