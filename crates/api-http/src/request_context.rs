//! Request ids and the one log line per request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use tracing::Instrument;

use crate::error::{ApiError, ErrorReason};
use crate::observability::Metrics;

pub(crate) const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request, as logged and returned in `X-Request-Id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

/// A client's id is kept when it is short and plain, so it cannot forge log lines.
fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A fresh request id: 24 hex digits, unique in this process and, by a random start,
/// across processes. Made without a system call: it runs for every request.
fn generate() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static START: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let start = *START.get_or_init(|| {
        let mut bytes = [0u8; 8];
        if getrandom::fill(&mut bytes).is_err() {
            // Without OS randomness, the clock and the process still set processes apart.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or_default();
            bytes = (nanos ^ u64::from(std::process::id()).rotate_left(32)).to_le_bytes();
        }
        u64::from_le_bytes(bytes)
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // splitmix64 of the counter: ids look random, never repeat within 2^64 requests.
    let mut z = start.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    format!("{z:016x}{:08x}", (start >> 32) as u32)
}

/// Answers 504 (code 4) when a routed request runs longer than the configured limit.
///
/// It wraps each resource rather than the whole application: only after routing may the
/// request be shared, which building the timeout's answer needs.
pub(crate) async fn deadline(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let Some(limit) = req
        .app_data::<web::Data<RequestSettings>>()
        .map(|s| s.timeout)
    else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let request = req.request().clone();
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(outcome) => outcome.map(ServiceResponse::map_into_left_body),
        // The handler is dropped; work it handed to the database may still finish, which
        // is what DEADLINE_EXCEEDED tells the client.
        Err(_) => Ok(ServiceResponse::new(
            request,
            ApiError::deadline_exceeded(limit).error_response(),
        )
        .map_into_right_body()),
    }
}

/// The path template of a routed resource, kept in its data for the log and metrics.
pub(crate) struct RouteTemplate(pub &'static str);

/// Per-application settings the middlewares need.
pub(crate) struct RequestSettings {
    pub metrics: Arc<Metrics>,
    pub timeout: Duration,
}

/// Requests refused whatever their route: paths or query strings whose escapes are not
/// UTF-8. (Conflicting framing never gets here: see [`crate::connection`].)
fn refuse_before_routing(req: &ServiceRequest) -> Option<ApiError> {
    if !escapes_are_utf8(req.path()) {
        return Some(ApiError::invalid(
            "INVALID_PATH",
            "the path's percent-escapes do not decode to UTF-8",
        ));
    }
    if !escapes_are_utf8(req.query_string()) {
        return Some(ApiError::invalid(
            "INVALID_QUERY",
            "the query string's percent-escapes do not decode to UTF-8",
        ));
    }
    None
}

/// Whether `text` decodes, percent-escapes and all, to valid UTF-8.
fn escapes_are_utf8(text: &str) -> bool {
    if !text.contains('%') {
        return true;
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    std::str::from_utf8(&decoded).is_ok()
}

pub(crate) async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| acceptable(id))
        .map_or_else(generate, str::to_owned);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let metrics = req
        .app_data::<web::Data<RequestSettings>>()
        .map(|s| Arc::clone(&s.metrics));
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        user_id = tracing::field::Empty,
    );
    let mut response = if let Some(refusal) = refuse_before_routing(&req) {
        let (request, _) = req.into_parts();
        ServiceResponse::new(request, refusal.error_response()).map_into_right_body()
    } else {
        match next.call(req).instrument(span.clone()).await {
            Ok(response) => response.map_into_left_body(),
            Err(error) => {
                tracing::warn!(parent: &span, error = %error, "request failed before a response");
                return Err(error);
            }
        }
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let status = response.status().as_u16();
    // The template the resource was registered with; matching the path again to find
    // it would cost a regex run per request.
    let route = match response.request().app_data::<RouteTemplate>() {
        Some(RouteTemplate(template)) => std::borrow::Cow::Borrowed(*template),
        None => response.request().match_pattern().map_or(
            std::borrow::Cow::Borrowed("unmatched"),
            std::borrow::Cow::Owned,
        ),
    };
    let elapsed = started.elapsed();
    if let Some(metrics) = &metrics {
        metrics.observe(&route, method.as_str(), status, elapsed.as_secs_f64());
    }
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    match response.response().extensions().get::<ErrorReason>() {
        Some(ErrorReason(reason)) => {
            tracing::info!(parent: &span, %route, status, latency_ms, reason, "request served")
        }
        None => tracing::info!(parent: &span, %route, status, latency_ms, "request served"),
    }
    Ok(response)
}
