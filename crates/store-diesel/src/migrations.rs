use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::connection::{Database, DbConnection};
use crate::errors::OpenError;

const POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// An arbitrary constant: the PostgreSQL advisory lock that serializes migrations of
/// several userd processes starting at once against one database.
const MIGRATION_LOCK: i64 = 0x7573_6572_645f_6d67; // "userd_mg"

impl Database {
    /// Applies pending migrations; returns how many ran. Blocking: call at start-up.
    pub fn migrate(&self) -> Result<usize, OpenError> {
        let mut conn = self.connection().map_err(OpenError::Unreachable)?;
        let migrate = |message: String| OpenError::Migration(message);
        match &mut conn.conn {
            DbConnection::Postgres(pg) => {
                diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
                    .execute(pg)
                    .map_err(|e| migrate(e.to_string()))?;
                let applied = pg
                    .run_pending_migrations(POSTGRES)
                    .map(|done| done.len())
                    .map_err(|e| migrate(e.to_string()));
                let unlocked = pg
                    .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
                    .map_err(|e| migrate(e.to_string()));
                let applied = applied?;
                unlocked?;
                Ok(applied)
            }
            DbConnection::Sqlite(sqlite) => sqlite
                .run_pending_migrations(SQLITE)
                .map(|done| done.len())
                .map_err(|e| migrate(e.to_string())),
        }
    }
}
