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

-- Every lock before this migration was set with `_lock`.
UPDATE users SET lock_cause = 'admin' WHERE locked;
