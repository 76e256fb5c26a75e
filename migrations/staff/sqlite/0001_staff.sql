-- The staff service's own database (SQLite). It also holds the login accounts.

CREATE TABLE staff (
    id              TEXT PRIMARY KEY,      -- UUID v7
    name            TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('doctor', 'nurse', 'receptionist', 'admin')),
    specialization  TEXT,
    phone           TEXT,
    email           TEXT,
    username        TEXT,                  -- set when this staff member can log in
    password_hash   TEXT,                  -- argon2id PHC string; never leaves this service
    version         INTEGER NOT NULL CHECK (version >= 1),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    deleted_at      TEXT,
    CHECK ((username IS NULL) = (password_hash IS NULL))
);

-- A username belongs to one active staff member; a deleted member's name may be reused.
CREATE UNIQUE INDEX staff_username_active ON staff (username) WHERE deleted_at IS NULL;

CREATE TABLE staff_name_words (
    word      TEXT NOT NULL,
    staff_id  TEXT NOT NULL REFERENCES staff (id),
    PRIMARY KEY (word, staff_id)
) WITHOUT ROWID;

CREATE INDEX staff_name_words_by_staff ON staff_name_words (staff_id);

-- Events committed with their change and not yet acknowledged by JetStream (kit::outbox).
CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT NOT NULL UNIQUE,
    subject     TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
