-- userd schema, SQLite.
--
-- Ids and JSON are TEXT and times are BIGINT microseconds since the Unix epoch (UTC):
-- the same column types on both backends, so one diesel schema serves both.

-- The single row naming this userd instance, the owner of organizations.
CREATE TABLE instance (
    id            TEXT PRIMARY KEY,
    created_at_us BIGINT NOT NULL
);

CREATE TABLE organizations (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    changed_at_us BIGINT NOT NULL
);

-- The append-only event log. One stream per aggregate; the primary key makes two writers
-- of the same sequence collide, which is the optimistic-concurrency check.
CREATE TABLE events (
    aggregate_type TEXT NOT NULL,
    aggregate_id   TEXT NOT NULL,
    sequence       BIGINT NOT NULL CHECK (sequence > 0),
    event_type     TEXT NOT NULL,
    org_id         TEXT NOT NULL,
    actor_id       TEXT,
    payload        TEXT NOT NULL,
    created_at_us  BIGINT NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only');
END;

-- Current state of every live user: the fold of its events. Deleted users have no row.
-- The *_key columns hold the Unicode-lowercased value, computed by userd, for
-- case-insensitive search that behaves the same on both backends.
CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    id_key         TEXT NOT NULL,
    org_id         TEXT NOT NULL REFERENCES organizations (id),
    schema_id      TEXT,
    data           TEXT NOT NULL,
    email          TEXT,
    email_key      TEXT,
    email_verified BOOLEAN NOT NULL,
    phone          TEXT,
    phone_verified BOOLEAN NOT NULL,
    usernames      TEXT NOT NULL,
    lifecycle      TEXT NOT NULL CHECK (lifecycle IN ('ACTIVE', 'INACTIVE')),
    locked         BOOLEAN NOT NULL,
    state          TEXT NOT NULL,
    created_at_us  BIGINT NOT NULL,
    changed_at_us  BIGINT NOT NULL,
    sequence       BIGINT NOT NULL
);

-- The default order (creation date, then id), within an organization and overall.
CREATE INDEX users_by_org_creation ON users (org_id, created_at_us, id);
CREATE INDEX users_by_creation ON users (created_at_us, id);
-- Text filters (equality and prefix), within an organization and overall.
CREATE INDEX users_by_org_email ON users (org_id, email);
CREATE INDEX users_by_org_email_key ON users (org_id, email_key);
CREATE INDEX users_by_email ON users (email);
CREATE INDEX users_by_email_key ON users (email_key);
CREATE INDEX users_by_phone ON users (phone);
CREATE INDEX users_by_id_key ON users (id_key);
CREATE INDEX users_by_schema ON users (schema_id);
CREATE INDEX users_by_state ON users (state, created_at_us);

-- Usernames of live users, for uniqueness and search. `username_key` is the
-- Unicode-lowercased form.
CREATE TABLE usernames (
    id                    TEXT PRIMARY KEY,
    user_id               TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id                TEXT NOT NULL,
    username              TEXT NOT NULL,
    username_key          TEXT NOT NULL,
    organization_specific BOOLEAN NOT NULL
);

CREATE UNIQUE INDEX usernames_unique_in_org ON usernames (org_id, username_key);
CREATE INDEX usernames_by_key ON usernames (username_key);
CREATE INDEX usernames_by_name ON usernames (username);
CREATE INDEX usernames_by_user ON usernames (user_id);

-- Roles held on the whole instance, and roles held in one organization. `roles` is a
-- comma-separated list of role names.
CREATE TABLE instance_members (
    user_id       TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    roles         TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    changed_at_us BIGINT NOT NULL
);

CREATE TABLE org_members (
    org_id        TEXT NOT NULL REFERENCES organizations (id),
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    roles         TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    changed_at_us BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);

CREATE INDEX org_members_by_user ON org_members (user_id);

-- Personal access tokens, kept only as the SHA-256 of the secret. Rows outlive their
-- user so the audit trail of who held which token stays.
CREATE TABLE personal_access_tokens (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE,
    expires_at_us BIGINT,
    revoked_at_us BIGINT,
    created_at_us BIGINT NOT NULL
);

CREATE INDEX personal_access_tokens_by_user ON personal_access_tokens (user_id);
