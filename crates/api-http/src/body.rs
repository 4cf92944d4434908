//! Request bodies: read with a size limit, parsed as JSON with the errors of docs/api.md.

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut, Payload};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Bodies above this are refused with 413.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// How much of an oversized body is still read (and thrown away) before answering 413.
/// A client still sending when the connection closes sees a broken pipe instead of the
/// answer; past this bound, protecting the server matters more.
const MAX_DRAINED_BYTES: usize = 8 * 1024 * 1024;

/// Reads the whole body, refusing more than [`MAX_BODY_BYTES`] without buffering it.
pub(crate) async fn read_body(req: &HttpRequest, mut payload: Payload) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(length) = declared.filter(|length| *length > MAX_BODY_BYTES) {
        if length <= MAX_DRAINED_BYTES {
            drain(payload, 0).await;
        }
        return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::invalid(
                "UNREADABLE_BODY",
                format!("the request body could not be read: {e}"),
            )
        })?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            drain(payload, body.len() + chunk.len()).await;
            return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Reads and discards what is left of a body, up to [`MAX_DRAINED_BYTES`] in all.
async fn drain(mut payload: Payload, mut seen: usize) {
    while seen <= MAX_DRAINED_BYTES {
        match payload.next().await {
            Some(Ok(chunk)) => seen += chunk.len(),
            Some(Err(_)) | None => return,
        }
    }
}

/// Parses a JSON object body; an empty body reads as `{}` (every request object is
/// optional).
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let body: &[u8] = match first {
        None => b"{}",
        Some(b'{') => body,
        // Derived deserializers would take an array as a struct in positional form.
        Some(_) => {
            return Err(
                match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                    Ok(_) => ApiError::invalid(
                        "INVALID_REQUEST_BODY",
                        "invalid request body: expected a JSON object",
                    ),
                    Err(e) => ApiError::invalid(
                        "MALFORMED_JSON",
                        format!("the request body is not valid JSON: {e}"),
                    ),
                },
            );
        }
    };
    serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => {
                ApiError::invalid("INVALID_REQUEST_BODY", format!("invalid request body: {e}"))
            }
            Category::Syntax | Category::Eof | Category::Io => ApiError::invalid(
                "MALFORMED_JSON",
                format!("the request body is not valid JSON: {e}"),
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Named {
        name: Option<String>,
    }

    #[test]
    fn empty_bodies_are_empty_objects() {
        assert!(parse_json::<Named>(b"").is_ok());
        assert!(parse_json::<Named>(b"  \n").is_ok());
    }

    #[test]
    fn syntax_and_type_errors_are_told_apart() {
        assert_eq!(
            parse_json::<Named>(b"{").unwrap_err().reason(),
            "MALFORMED_JSON"
        );
        assert_eq!(
            parse_json::<Named>(br#"{"name": 5}"#).unwrap_err().reason(),
            "INVALID_REQUEST_BODY"
        );
        assert_eq!(
            parse_json::<Named>(b"[]").unwrap_err().reason(),
            "INVALID_REQUEST_BODY"
        );
        assert_eq!(
            parse_json::<Named>(br#"["x"]"#).unwrap_err().reason(),
            "INVALID_REQUEST_BODY"
        );
        assert_eq!(
            parse_json::<Named>(b"[x").unwrap_err().reason(),
            "MALFORMED_JSON"
        );
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert!(parse_json::<serde_json::Value>(deep.as_bytes()).is_err());
    }
}
