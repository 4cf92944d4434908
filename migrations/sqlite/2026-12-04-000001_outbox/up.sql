-- Messages to users (codes by e-mail or SMS), written in the same transaction as the
-- event that causes them and delivered by a worker. A message is pending until it is
-- sent (sent_at_us) or given up on (failed_at_us); a worker holds it while
-- claimed_until_us lies ahead, so no two workers send it at the same moment.
CREATE TABLE outbox (
    id                 TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL,
    channel            TEXT NOT NULL,
    recipient          TEXT NOT NULL,
    subject            TEXT NOT NULL,
    -- The text holds a code in clear until the message is delivered; then it is emptied.
    body               TEXT NOT NULL,
    created_at_us      BIGINT NOT NULL,
    next_attempt_at_us BIGINT NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    claimed_until_us   BIGINT,
    sent_at_us         BIGINT,
    failed_at_us       BIGINT,
    last_error         TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at_us)
    WHERE sent_at_us IS NULL AND failed_at_us IS NULL;
