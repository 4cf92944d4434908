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
pub const FLOW: &str = include_str!("flow.pgbench");

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
