-- Safe retries (kit::idempotency): the reply of every keyed write, stored in the same
-- transaction as the change. One user's key never answers another user's request.
-- Differences from the SQLite table: created_at is timestamptz, and action and fingerprint are
-- checked to be what kit::idempotency writes. The reply stays text, not jsonb: it is replayed
-- byte for byte as first sent.
CREATE TABLE idempotency_keys (
    actor_id    text NOT NULL,
    key         text NOT NULL,
    action      text NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    -- Blake2b-256 (hex) of the action and the exact request payload
    fingerprint text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    -- the JSON reply, byte for byte as first sent
    reply       text NOT NULL,
    -- keys are purged once older than the retention (at least 24 hours)
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (actor_id, key)
);

CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
