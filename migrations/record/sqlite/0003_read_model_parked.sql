-- Poison events (kit::read_model): an event the read-model cannot apply (not an envelope, data
-- that does not decode, or a failure repeated on every delivery) is parked here with its error
-- and payload, the consumer's position moves past it, and the consumer goes on. Nothing is
-- silently dropped: `hospital events stats` and `hospital verify` list these rows, and
-- `hospital replay` retries them (a rebuild re-applies everything and re-parks what still fails).
CREATE TABLE read_model_parked (
    consumer         TEXT NOT NULL,
    stream_sequence  INTEGER NOT NULL,
    subject          TEXT NOT NULL,
    event_id         TEXT,               -- when the payload is an envelope
    error            TEXT NOT NULL,
    payload          TEXT NOT NULL,      -- as received (lossy UTF-8)
    parked_at        TEXT NOT NULL,
    PRIMARY KEY (consumer, stream_sequence)
);
