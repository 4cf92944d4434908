//! A use case's error as an RPC error: the gRPC code of docs/api.md's table, the same
//! message, and the same `google.rpc.ErrorInfo` (reason, domain, metadata) as a detail.

use connectrpc::{ConnectError, ErrorCode, ErrorDetail};
use userd_ports::ServiceError;
use userd_ports::error::ErrorKind;

use crate::proto::google::rpc::ErrorInfo;

pub(crate) const DOMAIN: &str = "userd";

fn code_of(kind: ErrorKind) -> ErrorCode {
    match kind {
        ErrorKind::InvalidArgument => ErrorCode::InvalidArgument,
        ErrorKind::FailedPrecondition => ErrorCode::FailedPrecondition,
        ErrorKind::Unauthenticated => ErrorCode::Unauthenticated,
        ErrorKind::PermissionDenied => ErrorCode::PermissionDenied,
        ErrorKind::NotFound => ErrorCode::NotFound,
        ErrorKind::AlreadyExists => ErrorCode::AlreadyExists,
        ErrorKind::Aborted => ErrorCode::Aborted,
        ErrorKind::ResourceExhausted => ErrorCode::ResourceExhausted,
        ErrorKind::Internal => ErrorCode::Internal,
        ErrorKind::Unimplemented => ErrorCode::Unimplemented,
        ErrorKind::Unavailable => ErrorCode::Unavailable,
        ErrorKind::DeadlineExceeded => ErrorCode::DeadlineExceeded,
    }
}

/// An RPC error with its reason and metadata.
pub(crate) fn rpc_error(
    code: ErrorCode,
    reason: &str,
    message: impl Into<String>,
    metadata: impl IntoIterator<Item = (String, String)>,
) -> ConnectError {
    let info = ErrorInfo {
        reason: reason.to_owned(),
        domain: DOMAIN.to_owned(),
        metadata: metadata.into_iter().collect(),
        ..Default::default()
    };
    ConnectError::new(code, message)
        .with_detail(ErrorDetail::from_message("google.rpc.ErrorInfo", &info))
}

impl From<ErrorShape> for ConnectError {
    fn from(shape: ErrorShape) -> ConnectError {
        shape.0
    }
}

/// A `ServiceError` turned into its RPC form; logged here when it hides a cause.
pub(crate) struct ErrorShape(pub ConnectError);

impl From<ServiceError> for ErrorShape {
    fn from(error: ServiceError) -> ErrorShape {
        if matches!(error.kind(), ErrorKind::Internal | ErrorKind::Unavailable) {
            tracing::error!(error = %chain(&error), "request failed");
        }
        ErrorShape(rpc_error(
            code_of(error.kind()),
            error.reason(),
            error.public_message(),
            error
                .metadata()
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value)),
        ))
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// The error for a use case's failure.
pub(crate) fn service_error(error: ServiceError) -> ConnectError {
    ErrorShape::from(error).0
}
