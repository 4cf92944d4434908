//! pgbench scripts doing the database work of userd's scenarios: the statements userd
//! issues (as its statement log shows), with values of the same size. Their throughput is
//! the limit userd's is measured against.

/// The flow scenario, one iteration per pgbench transaction: create (with an email and
/// an organization-specific username), get, patch, lock, unlock, delete; statement for
/// statement what userd sends (PostgreSQL's `log_statement = all` shows them): BEGIN and
/// the username lock in one round trip (a pipeline here), the creation, COMMIT, then a
/// read by id before each change and each change as one statement. `:org` is the
/// organization the users are created in. (`":true` would read as a pgbench variable,
/// hence the space in the JSON literals.)
pub const FLOW: &str = r#"\set n random(1, 9000000000000)
\set t random(1700000000000000, 1800000000000000)
\startpipeline
BEGIN;
SELECT pg_advisory_xact_lock((:n)::bigint);
\endpipeline
WITH taken AS (SELECT 1 FROM usernames u JOIN unnest(ARRAY['pgb' || (:n)::text], ARRAY[true]) AS c(username_key, specific) ON u.username_key = c.username_key WHERE NOT c.specific OR NOT u.organization_specific OR u.org_id = (:org)::text LIMIT 1), created AS (INSERT INTO users (id, id_key, org_id, schema_id, data, email, email_key, email_verified, phone, phone_verified, usernames, lifecycle, locked, state, created_at_us, changed_at_us, sequence) SELECT 'pgb' || (:n)::text, 'pgb' || (:n)::text, (:org)::text, NULL, '{"familyName":"Lovelace","givenName":"Ada","n":' || (:n)::text || '}', 'pgb' || (:n)::text || '@example.com', 'pgb' || (:n)::text || '@example.com', true, NULL, false, '[{"id":"pgbu' || (:n)::text || '","username":"pgb' || (:n)::text || '","organizationSpecific": true}]', 'ACTIVE', false, 'USER_STATE_ACTIVE', (:t)::bigint, (:t)::bigint, 1 WHERE NOT EXISTS (SELECT 1 FROM taken) RETURNING id, org_id), names AS (INSERT INTO usernames (id, user_id, org_id, username, username_key, organization_specific) SELECT n.id, created.id, created.org_id, n.username, n.username_key, n.specific FROM created, unnest(ARRAY['pgbu' || (:n)::text], ARRAY['pgb' || (:n)::text], ARRAY['pgb' || (:n)::text], ARRAY[true]) AS n(id, username, username_key, specific)) INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, org_id, actor_id, payload, created_at_us) SELECT 'user', 'pgb' || (:n)::text, 1, 'user.created', (:org)::text, 'bench-admin', '{"orgId":"' || (:org)::text || '","data":{"familyName":"Lovelace","givenName":"Ada","n":' || (:n)::text || '},"contact":{"email":{"address":"pgb' || (:n)::text || '@example.com","verified": true}},"usernames":[{"id":"pgbu' || (:n)::text || '","username":"pgb' || (:n)::text || '","organizationSpecific": true}]}', (:t)::bigint FROM created;
COMMIT;
SELECT "users"."id", "users"."id_key", "users"."org_id", "users"."schema_id", "users"."data", "users"."email", "users"."email_key", "users"."email_verified", "users"."phone", "users"."phone_verified", "users"."usernames", "users"."lifecycle", "users"."locked", "users"."state", "users"."created_at_us", "users"."changed_at_us", "users"."sequence" FROM "users" WHERE ("users"."id" = 'pgb' || (:n)::text) LIMIT 1;
SELECT "users"."id", "users"."id_key", "users"."org_id", "users"."schema_id", "users"."data", "users"."email", "users"."email_key", "users"."email_verified", "users"."phone", "users"."phone_verified", "users"."usernames", "users"."lifecycle", "users"."locked", "users"."state", "users"."created_at_us", "users"."changed_at_us", "users"."sequence" FROM "users" WHERE ("users"."id" = 'pgb' || (:n)::text) LIMIT 1;
WITH moved AS (UPDATE users SET id_key = 'pgb' || (:n)::text, org_id = (:org)::text, schema_id = NULL, data = '{"givenName":"Augusta","n":' || (:n)::text || '}', email = 'pgb' || (:n)::text || '@example.com', email_key = 'pgb' || (:n)::text || '@example.com', email_verified = true, phone = NULL, phone_verified = false, usernames = '[{"id":"pgbu' || (:n)::text || '","username":"pgb' || (:n)::text || '","organizationSpecific": true}]', lifecycle = 'ACTIVE', locked = false, state = 'USER_STATE_ACTIVE', created_at_us = (:t)::bigint, changed_at_us = (:t)::bigint + 1, sequence = 2 WHERE id = 'pgb' || (:n)::text AND sequence = 1 RETURNING id) INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, org_id, actor_id, payload, created_at_us) SELECT 'user', 'pgb' || (:n)::text, 2, 'user.updated', (:org)::text, 'bench-admin', '{"data":{"givenName":"Augusta","n":' || (:n)::text || '}}', (:t)::bigint + 1 FROM moved;
SELECT "users"."id", "users"."id_key", "users"."org_id", "users"."schema_id", "users"."data", "users"."email", "users"."email_key", "users"."email_verified", "users"."phone", "users"."phone_verified", "users"."usernames", "users"."lifecycle", "users"."locked", "users"."state", "users"."created_at_us", "users"."changed_at_us", "users"."sequence" FROM "users" WHERE ("users"."id" = 'pgb' || (:n)::text) LIMIT 1;
WITH moved AS (UPDATE users SET id_key = 'pgb' || (:n)::text, org_id = (:org)::text, schema_id = NULL, data = '{"givenName":"Augusta","n":' || (:n)::text || '}', email = 'pgb' || (:n)::text || '@example.com', email_key = 'pgb' || (:n)::text || '@example.com', email_verified = true, phone = NULL, phone_verified = false, usernames = '[{"id":"pgbu' || (:n)::text || '","username":"pgb' || (:n)::text || '","organizationSpecific": true}]', lifecycle = 'ACTIVE', locked = true, state = 'USER_STATE_LOCKED', created_at_us = (:t)::bigint, changed_at_us = (:t)::bigint + 2, sequence = 3 WHERE id = 'pgb' || (:n)::text AND sequence = 2 RETURNING id) INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, org_id, actor_id, payload, created_at_us) SELECT 'user', 'pgb' || (:n)::text, 3, 'user.locked', (:org)::text, 'bench-admin', '{}', (:t)::bigint + 2 FROM moved;
SELECT "users"."id", "users"."id_key", "users"."org_id", "users"."schema_id", "users"."data", "users"."email", "users"."email_key", "users"."email_verified", "users"."phone", "users"."phone_verified", "users"."usernames", "users"."lifecycle", "users"."locked", "users"."state", "users"."created_at_us", "users"."changed_at_us", "users"."sequence" FROM "users" WHERE ("users"."id" = 'pgb' || (:n)::text) LIMIT 1;
WITH moved AS (UPDATE users SET id_key = 'pgb' || (:n)::text, org_id = (:org)::text, schema_id = NULL, data = '{"givenName":"Augusta","n":' || (:n)::text || '}', email = 'pgb' || (:n)::text || '@example.com', email_key = 'pgb' || (:n)::text || '@example.com', email_verified = true, phone = NULL, phone_verified = false, usernames = '[{"id":"pgbu' || (:n)::text || '","username":"pgb' || (:n)::text || '","organizationSpecific": true}]', lifecycle = 'ACTIVE', locked = false, state = 'USER_STATE_ACTIVE', created_at_us = (:t)::bigint, changed_at_us = (:t)::bigint + 3, sequence = 4 WHERE id = 'pgb' || (:n)::text AND sequence = 3 RETURNING id) INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, org_id, actor_id, payload, created_at_us) SELECT 'user', 'pgb' || (:n)::text, 4, 'user.unlocked', (:org)::text, 'bench-admin', '{}', (:t)::bigint + 3 FROM moved;
SELECT "users"."id", "users"."id_key", "users"."org_id", "users"."schema_id", "users"."data", "users"."email", "users"."email_key", "users"."email_verified", "users"."phone", "users"."phone_verified", "users"."usernames", "users"."lifecycle", "users"."locked", "users"."state", "users"."created_at_us", "users"."changed_at_us", "users"."sequence" FROM "users" WHERE ("users"."id" = 'pgb' || (:n)::text) LIMIT 1;
WITH moved AS (DELETE FROM users WHERE id = 'pgb' || (:n)::text AND sequence = 4 RETURNING id) INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, org_id, actor_id, payload, created_at_us) SELECT 'user', 'pgb' || (:n)::text, 5, 'user.deleted', (:org)::text, 'bench-admin', '{}', (:t)::bigint + 4 FROM moved;
"#;

/// The read scenario: a user by id, among `read_users` rows made by [`read_rows`].
pub fn read(read_users: usize) -> String {
    format!(
        "\\set k random(1, {read_users})\n\
         SELECT \"users\".\"id\", \"users\".\"id_key\", \"users\".\"org_id\", \"users\".\"schema_id\", \
         \"users\".\"data\", \"users\".\"email\", \"users\".\"email_key\", \"users\".\"email_verified\", \
         \"users\".\"phone\", \"users\".\"phone_verified\", \"users\".\"usernames\", \"users\".\"lifecycle\", \
         \"users\".\"locked\", \"users\".\"state\", \"users\".\"created_at_us\", \"users\".\"changed_at_us\", \
         \"users\".\"sequence\" FROM \"users\" WHERE (\"users\".\"id\" = 'pgread' || (:k)::text) LIMIT 1;\n"
    )
}

/// SQL that makes the rows the read script reads, like the users userd reads.
pub fn read_rows(org: &str, read_users: usize) -> String {
    format!(
        "INSERT INTO users (id, id_key, org_id, data, email, email_key, email_verified, phone_verified, \
         usernames, lifecycle, locked, state, created_at_us, changed_at_us, sequence) \
         SELECT 'pgread' || n, 'pgread' || n, '{org}', '{{\"n\":' || n || '}}', 'read' || n || '@example.com', \
         'read' || n || '@example.com', false, false, '[]', 'ACTIVE', false, 'USER_STATE_ACTIVE', n, n, 1 \
         FROM generate_series(1, {read_users}) AS n"
    )
}

/// The transactions per second pgbench reports.
pub fn parse_tps(output: &str) -> Option<f64> {
    output
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.trim_start_matches("tps = ").split_whitespace().next())
        .and_then(|v| v.parse().ok())
}
