//! Every error leaves as a `google.rpc.Status` JSON body.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use userd_ports::{ErrorKind, ServiceError};

/// The gRPC status code of each kind.
pub fn grpc_code(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::InvalidArgument => 3,
        ErrorKind::DeadlineExceeded => 4,
        ErrorKind::NotFound => 5,
        ErrorKind::AlreadyExists => 6,
        ErrorKind::PermissionDenied => 7,
        ErrorKind::ResourceExhausted => 8,
        ErrorKind::FailedPrecondition => 9,
        ErrorKind::Aborted => 10,
        ErrorKind::Unimplemented => 12,
        ErrorKind::Internal => 13,
        ErrorKind::Unavailable => 14,
        ErrorKind::Unauthenticated => 16,
    }
}

/// The HTTP status of each kind (the gRPC-gateway table).
pub fn http_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidArgument | ErrorKind::FailedPrecondition => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::AlreadyExists | ErrorKind::Aborted => StatusCode::CONFLICT,
        ErrorKind::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
    }
}

/// An error answer: a service error, or one the transport itself produced. Boxed, so
/// results that carry it stay small.
#[derive(Debug)]
pub struct ApiError(Box<Parts>);

#[derive(Debug)]
struct Parts {
    kind: ErrorKind,
    /// Set where HTTP defines its own status (413, 405, 412).
    status: Option<StatusCode>,
    reason: &'static str,
    message: String,
    metadata: Vec<(&'static str, String)>,
    allow: Option<String>,
    /// The service error behind it, kept for the log.
    source: Option<ServiceError>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError(Box::new(Parts {
            kind,
            status: None,
            reason,
            message: message.into(),
            metadata: Vec::new(),
            allow: None,
            source: None,
        }))
    }

    pub fn invalid(reason: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::InvalidArgument, reason, message)
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.0.metadata.push(("field", field.into()));
        self
    }

    fn with_status(mut self, status: StatusCode) -> Self {
        self.0.status = Some(status);
        self
    }

    pub fn payload_too_large(limit: usize) -> Self {
        ApiError::invalid(
            "REQUEST_TOO_LARGE",
            format!("the request body exceeds the limit of {limit} bytes"),
        )
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    }

    pub fn route_not_found(path: &str) -> Self {
        ApiError::new(
            ErrorKind::NotFound,
            "ROUTE_NOT_FOUND",
            format!("no route matches the path {path}"),
        )
    }

    pub fn method_not_allowed(method: &str, allow: &str) -> Self {
        let mut error = ApiError::new(
            ErrorKind::Unimplemented,
            "METHOD_NOT_ALLOWED",
            format!("the method {method} is not allowed on this path; allowed: {allow}"),
        )
        .with_status(StatusCode::METHOD_NOT_ALLOWED);
        error.0.allow = Some(allow.to_owned());
        error
    }

    pub fn deadline_exceeded(limit: std::time::Duration) -> Self {
        ApiError::new(
            ErrorKind::DeadlineExceeded,
            "DEADLINE_EXCEEDED",
            format!(
                "the request did not finish within {} ms; a write may still have taken effect",
                limit.as_millis()
            ),
        )
    }

    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    pub fn reason(&self) -> &'static str {
        self.0.reason
    }
}

/// The reason of an error answer, left on the response for the request log.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ErrorReason(pub &'static str);

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        // HTTP has its own status for a failed If-Match.
        let status = matches!(error, ServiceError::VersionMismatch { .. })
            .then_some(StatusCode::PRECONDITION_FAILED);
        ApiError(Box::new(Parts {
            kind: error.kind(),
            status,
            reason: error.reason(),
            message: error.public_message(),
            metadata: error.metadata(),
            allow: None,
            source: Some(error),
        }))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.0.message, self.0.reason)
    }
}

/// The error body of docs/api.md: a `google.rpc.Status` with one `google.rpc.ErrorInfo`.
pub(crate) fn status_json(
    kind: ErrorKind,
    reason: &str,
    message: &str,
    metadata: &[(&'static str, String)],
) -> String {
    let mut info = serde_json::json!({
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "userd",
    });
    if !metadata.is_empty() {
        info["metadata"] = metadata
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone())))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    serde_json::json!({"code": grpc_code(kind), "message": message, "details": [info]}).to_string()
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.status.unwrap_or_else(|| http_status(self.0.kind))
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let this = &self.0;
        if let Some(source) = &this.source
            && status.is_server_error()
        {
            // The request span carries the request id; the cause chain stays here.
            let mut chain = String::new();
            let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(source);
            while let Some(inner) = cause {
                chain.push_str(": ");
                chain.push_str(&inner.to_string());
                cause = inner.source();
            }
            tracing::error!(reason = this.reason, error = %source, cause = %chain, "request failed");
        }
        let body = status_json(this.kind, this.reason, &this.message, &this.metadata);
        let mut response = HttpResponse::build(status)
            .content_type(header::ContentType::json())
            .body(body);
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(allow) = this
            .allow
            .as_deref()
            .and_then(|a| HeaderValue::from_str(a).ok())
        {
            headers.insert(header::ALLOW, allow);
        }
        // For the request log line.
        response.extensions_mut().insert(ErrorReason(this.reason));
        response
    }
}
