//! `userd rebuild-projection`: the current-state tables as the fold of the event log.

use std::io::Write;

use crate::RebuildArgs;
use crate::serve::{StartError, prepare_database};
use crate::settings::Settings;

pub fn rebuild_projection(settings: &Settings, args: &RebuildArgs) -> Result<(), StartError> {
    let database = prepare_database(settings)?;
    let runtime = actix_web::rt::System::new();
    let mut out = std::io::stdout().lock();
    if args.check {
        let drift = runtime
            .block_on(database.verify_projection())
            .map_err(StartError::Rebuild)?;
        writeln!(
            out,
            "users in the log: {}; rows missing: {:?}; rows of deleted or unknown users: {:?}; \
             rows that differ: {:?}",
            drift.users_replayed, drift.missing, drift.unexpected, drift.different
        )
        .map_err(StartError::Print)?;
        if drift.is_clean() {
            return Ok(());
        }
        return Err(StartError::Drift);
    }
    let report = runtime
        .block_on(database.rebuild_projection())
        .map_err(StartError::Rebuild)?;
    tracing::info!(
        users_replayed = report.users_replayed,
        rows_written = report.rows_written,
        rows_removed = report.rows_removed,
        "rebuilt the current-state tables from the event log"
    );
    writeln!(
        out,
        "users in the log: {}; rows written: {}; rows removed: {}",
        report.users_replayed, report.rows_written, report.rows_removed
    )
    .map_err(StartError::Print)
}
