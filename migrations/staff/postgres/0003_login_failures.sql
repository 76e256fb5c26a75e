-- Failed-login limits (staff_service::login_limits): one row per login attempt counted as a
-- failure, as in sqlite/0003. An attempt is recorded before its password is checked and deleted
-- again when the password was right.
-- Differences from SQLite: `id` is a bigint identity; `address` is `inet`. On PostgreSQL the
-- count-and-record must run under a lock (an advisory transaction lock per username and address)
-- to keep the bound SQLite's single writer gives; that is the store's job, not this table's.
CREATE TABLE login_failures (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- trimmed, lower case, as logins are looked up; NULL once a successful login forgave it
    -- (the row still counts for its address)
    username    text,
    -- the client's IP address as the gateway saw it; NULL when unknown
    address     inet,
    -- Unix time in milliseconds: the limits compare and subtract times, nothing displays them
    failed_at   bigint NOT NULL
);

CREATE INDEX login_failures_by_username ON login_failures (username, failed_at) WHERE username IS NOT NULL;
CREATE INDEX login_failures_by_address ON login_failures (address, failed_at) WHERE address IS NOT NULL;
-- Rows older than the window are deleted a few at a time by each recorded attempt.
CREATE INDEX login_failures_by_age ON login_failures (failed_at);
