use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use userd_ports::error::StoreError;

use crate::connection::{Database, DbConnection};
use crate::data_migrations::{
    DataMigrationReport, UsernameClash, outstanding_clashes, run_pending,
};
use crate::errors::OpenError;

const POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// An arbitrary constant: the PostgreSQL advisory lock that serializes migrations of
/// several userd processes starting at once against one database.
const MIGRATION_LOCK: i64 = 0x7573_6572_645f_6d67; // "userd_mg"

/// What start-up's migrations did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// SQL migrations applied.
    pub applied: usize,
    pub data: DataMigrationReport,
}

impl Database {
    /// Applies pending SQL migrations, then pending data migrations. Blocking: call at
    /// start-up.
    pub fn migrate(&self) -> Result<MigrationReport, OpenError> {
        let mut conn = self.connection().map_err(OpenError::Unreachable)?;
        let now_us = now_micros();
        match &mut conn.conn {
            DbConnection::Postgres(pg) => {
                diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
                    .execute(pg)
                    .map_err(|e| OpenError::Migration(Box::new(e)))?;
                let report = pg
                    .run_pending_migrations(POSTGRES)
                    .map(|done| done.len())
                    .map_err(OpenError::Migration)
                    .and_then(|applied| {
                        let data = run_pending(&mut conn.conn, now_us)
                            .map_err(|e| OpenError::Migration(Box::new(e)))?;
                        Ok(MigrationReport { applied, data })
                    });
                let unlocked = match &mut conn.conn {
                    DbConnection::Postgres(pg) => pg
                        .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
                        .map_err(|e| OpenError::Migration(Box::new(e))),
                    DbConnection::Sqlite(_) => Ok(()),
                };
                let report = report?;
                unlocked?;
                Ok(report)
            }
            DbConnection::Sqlite(sqlite) => {
                let applied = sqlite
                    .run_pending_migrations(SQLITE)
                    .map(|done| done.len())
                    .map_err(OpenError::Migration)?;
                let data = run_pending(&mut conn.conn, now_us)
                    .map_err(|e| OpenError::Migration(Box::new(e)))?;
                Ok(MigrationReport { applied, data })
            }
        }
    }

    /// Applies the SQL migrations up to and including `last_version`, and nothing else:
    /// for tests that write data as an older release did, then upgrade.
    #[doc(hidden)]
    pub fn migrate_sql_through(&self, last_version: &str) -> Result<(), OpenError> {
        fn through<C: MigrationHarness<B>, B: diesel::backend::Backend>(
            conn: &mut C,
            source: EmbeddedMigrations,
            last: &str,
        ) -> Result<(), OpenError> {
            let pending = conn
                .pending_migrations(source)
                .map_err(OpenError::Migration)?;
            for migration in pending {
                // Versions are the folder names' dates, compared without their dashes.
                let version = migration.name().version().to_string().replace('-', "");
                if version <= last.replace('-', "") {
                    conn.run_migration(&*migration)
                        .map_err(OpenError::Migration)?;
                }
            }
            Ok(())
        }
        let mut conn = self.connection().map_err(OpenError::Unreachable)?;
        match &mut conn.conn {
            DbConnection::Postgres(pg) => through(pg, POSTGRES, last_version),
            DbConnection::Sqlite(sqlite) => through(sqlite, SQLITE, last_version),
        }
    }

    /// Usernames that lost a clash when comparison changed, still waiting for an
    /// operator (see [`UsernameClash`]).
    pub fn username_clashes(&self) -> Result<Vec<UsernameClash>, StoreError> {
        let mut conn = self.connection()?;
        outstanding_clashes(&mut conn.conn)
    }
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}
