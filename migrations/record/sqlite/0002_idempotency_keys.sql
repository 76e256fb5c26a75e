-- Safe retries (kit::idempotency): the reply of every keyed write, stored in the same
-- transaction as the change. One user's key never answers another user's request.
CREATE TABLE idempotency_keys (
    actor_id    TEXT NOT NULL,
    key         TEXT NOT NULL,
    -- create, update or delete
    action      TEXT NOT NULL,
    -- Blake2b-256 (hex) of the action and the exact request payload
    fingerprint TEXT NOT NULL,
    -- the JSON reply, byte for byte as first sent
    reply       TEXT NOT NULL,
    -- RFC 3339 UTC; keys are purged once older than the retention (at least 24 hours)
    created_at  TEXT NOT NULL,
    PRIMARY KEY (actor_id, key)
);

CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
