-- Who issued each token, and the most it may carry (what its issuer held when issuing
-- it). A NULL ceiling means the token acts with its user's roles alone: userd issued it
-- (first start, recovery) or the user issued it for itself. Tokens that existed before
-- this migration get a ceiling computed by userd right after it (see
-- crates/store-diesel/src/data_migrations.rs).
ALTER TABLE personal_access_tokens ADD COLUMN issuer_id TEXT;
ALTER TABLE personal_access_tokens ADD COLUMN ceiling TEXT;

-- Data migrations userd runs in Rust after the SQL ones, once each.
CREATE TABLE data_migrations (
    name          TEXT PRIMARY KEY,
    applied_at_us BIGINT NOT NULL
);
