use diesel::result::{DatabaseErrorKind, Error as DieselError};
use userd_ports::error::StoreError;

/// The database could not be opened or prepared at start-up.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("invalid database URL: {0}")]
    Url(String),
    #[error("cannot create the database directory {path}")]
    Directory {
        path: String,
        #[source]
        cause: std::io::Error,
    },
    #[error("cannot reach the database")]
    Unreachable(#[source] StoreError),
    #[error("migrations failed")]
    Migration(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Maps a diesel error that the calling query does not handle itself.
///
/// Lost connections and lock timeouts are [`StoreError::Unavailable`]: the client may
/// retry. Everything else is internal; its text goes to the log, never to a client.
pub(crate) fn store_error(error: DieselError) -> StoreError {
    if is_unavailable(&error) {
        return StoreError::Unavailable(Box::new(error));
    }
    StoreError::Internal(Box::new(error))
}

fn is_unavailable(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => true,
            _ => {
                let message = info.message();
                // SQLite: another writer held the lock for longer than busy_timeout.
                message.contains("database is locked")
                    // PostgreSQL: the server is shutting down or restarting.
                    || message.contains("terminating connection")
                    || message.contains("the database system is")
                    || message.contains("server closed the connection")
                    || message.contains("no connection to the server")
                    || message.contains("canceling statement due to statement timeout")
            }
        },
        DieselError::BrokenTransactionManager => true,
        _ => false,
    }
}

/// Which unique key a violation hit, when the caller needs to tell them apart.
pub(crate) fn violated_key(error: &DieselError) -> Option<String> {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => Some(
            // PostgreSQL names the constraint; SQLite lists the columns in the message.
            info.constraint_name()
                .map(str::to_owned)
                .unwrap_or_else(|| info.message().to_owned()),
        ),
        _ => None,
    }
}

pub(crate) fn is_foreign_key_violation(error: &DieselError) -> bool {
    matches!(
        error,
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)
    )
}
