-- The patient service's own database (SQLite).

CREATE TABLE patients (
    id          TEXT PRIMARY KEY,          -- UUID v7: id order is registration order
    mrn         TEXT NOT NULL UNIQUE,      -- medical record number, generated, never changes
    name        TEXT NOT NULL,
    birth_date  TEXT NOT NULL,             -- YYYY-MM-DD
    sex         TEXT NOT NULL CHECK (sex IN ('female', 'male', 'other', 'unknown')),
    phone       TEXT,
    email       TEXT,
    address     TEXT,
    version     INTEGER NOT NULL CHECK (version >= 1),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT                       -- soft delete: the row and its history stay
);

-- Name search: every word of a patient's name, case-folded, so that a prefix search on any word
-- is an index range scan however many patients there are.
CREATE TABLE patient_name_words (
    word        TEXT NOT NULL,
    patient_id  TEXT NOT NULL REFERENCES patients (id),
    PRIMARY KEY (word, patient_id)
) WITHOUT ROWID;

CREATE INDEX patient_name_words_by_patient ON patient_name_words (patient_id);

-- Events committed with their change and not yet acknowledged by JetStream (kit::outbox).
CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT NOT NULL UNIQUE,
    subject     TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
