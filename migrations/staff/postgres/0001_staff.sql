-- The staff service's own database (PostgreSQL, the scale-out mode). It also holds the login
-- accounts. Deliberate differences from migrations/staff/sqlite:
-- - Native types: ids are uuid, times timestamptz, versions bigint.
-- - Search words are COLLATE "C" (code point order, as SQLite's binary comparison: see
--   kit::listing's prefix ranges).
-- - The outbox sequence is a bigint identity.

CREATE TABLE staff (
    id              uuid PRIMARY KEY,      -- UUID v7
    name            text NOT NULL,
    role            text NOT NULL CHECK (role IN ('doctor', 'nurse', 'receptionist', 'admin')),
    specialization  text,
    phone           text,
    email           text,
    username        text,                  -- set when this staff member can log in
    password_hash   text,                  -- argon2id PHC string; never leaves this service
    version         bigint NOT NULL CHECK (version >= 1),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    deleted_at      timestamptz,
    CONSTRAINT staff_username_has_password_hash
        CHECK ((username IS NULL) = (password_hash IS NULL))
);

-- A username belongs to one active staff member; a deleted member's name may be reused.
CREATE UNIQUE INDEX staff_username_active ON staff (username) WHERE deleted_at IS NULL;

CREATE TABLE staff_name_words (
    word      text COLLATE "C" NOT NULL,
    staff_id  uuid NOT NULL REFERENCES staff (id),
    PRIMARY KEY (word, staff_id)
);

CREATE INDEX staff_name_words_by_staff ON staff_name_words (staff_id);

-- Events committed with their change and not yet acknowledged by JetStream (kit::outbox). The
-- payload is text, not jsonb: it is published byte for byte as it was serialised.
CREATE TABLE outbox (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    uuid NOT NULL UNIQUE,
    subject     text NOT NULL,
    payload     text NOT NULL,
    created_at  timestamptz NOT NULL
);
