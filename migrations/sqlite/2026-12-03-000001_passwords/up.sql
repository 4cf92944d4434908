-- Passwords and lockout (see docs/api.md, "Passwords, sessions and lockout"), as part of
-- each user's current state. `lock_cause` is NULL when unlocked, else 'admin' (`_lock`,
-- never ends by itself) or 'lockout' (failed password checks); a lockout with a duration
-- ends at `locked_until_us`, and `state` keeps reading LOCKED until the expiry is first
-- acted on: readers compare `locked_until_us` with the time they read at.
ALTER TABLE users ADD COLUMN lock_cause TEXT CHECK (lock_cause IN ('admin', 'lockout'));
ALTER TABLE users ADD COLUMN locked_until_us BIGINT;
ALTER TABLE users ADD COLUMN password_hash TEXT;
ALTER TABLE users ADD COLUMN password_changed_at_us BIGINT;
ALTER TABLE users ADD COLUMN password_change_required BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN failed_password_checks BIGINT NOT NULL DEFAULT 0;
-- The outstanding password-reset code: its SHA-256 only, its end, the wrong tries.
ALTER TABLE users ADD COLUMN password_code_hash TEXT;
ALTER TABLE users ADD COLUMN password_code_expires_at_us BIGINT;
ALTER TABLE users ADD COLUMN password_code_failures BIGINT NOT NULL DEFAULT 0;
-- Sessions begun before this are over (the last lock, deactivation or password change).
ALTER TABLE users ADD COLUMN sessions_valid_from_us BIGINT NOT NULL DEFAULT 0;
-- As the fold of the log computes it: the last such event, else the creation.
UPDATE users SET sessions_valid_from_us = COALESCE(
    (SELECT MAX(e.created_at_us) FROM events e
      WHERE e.aggregate_type = 'user' AND e.aggregate_id = users.id
        AND e.event_type IN ('user.locked', 'user.deactivated',
                             'user.password.set', 'user.password.removed')),
    created_at_us);

-- Every lock before this migration was set with `_lock`.
UPDATE users SET lock_cause = 'admin' WHERE locked;

-- Login settings (lockout, password complexity) per organization; `scope` is the
-- organization's id, or '' for the instance's own, which organizations fall back to.
-- `value` is a versioned JSON object (crates/store-diesel/src/stored.rs).
CREATE TABLE login_settings (
    scope         TEXT NOT NULL,
    kind          TEXT NOT NULL,
    value         TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    changed_at_us BIGINT NOT NULL,
    PRIMARY KEY (scope, kind)
);

-- Login sessions (the v2 SessionService). Only a hash of a session's token is kept. A
-- session ends with its user's row; whether a lock, a deactivation or a new password
-- has ended it is read from the user at each use.
CREATE TABLE sessions (
    id                      TEXT PRIMARY KEY,
    user_id                 TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id                  TEXT NOT NULL,
    login_name              TEXT NOT NULL,
    token_hash              TEXT NOT NULL,
    created_at_us           BIGINT NOT NULL,
    changed_at_us           BIGINT NOT NULL,
    expires_at_us           BIGINT,
    user_verified_at_us     BIGINT NOT NULL,
    password_verified_at_us BIGINT
);
CREATE INDEX sessions_by_user ON sessions (user_id);
